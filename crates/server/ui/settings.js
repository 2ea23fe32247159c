// Settings: projects (roles, destinations, sync windows), clusters and repositories with
// their connection state, accounts and tokens — each as far as the user may see it.
import { h, replace, table, facts, time, toast } from './dom.js';
import { get, api, enc, canI } from './api.js';
import { dialog, field, confirmDialog, checkbox } from './dialogs.js';

const SECTIONS = [['projects', 'Projects'], ['clusters', 'Clusters'], ['repos', 'Repositories'], ['accounts', 'Accounts']];

function connection(state) {
  const status = (state && state.status) || 'Unknown';
  const tone = status === 'Successful' ? 'ok' : status === 'Failed' ? 'bad' : 'unknown';
  return h('span', { class: ['badge', tone], title: (state && state.message) || status }, status);
}

export async function settingsView(main, { section, item }) {
  const current = section || 'projects';
  const body = h('div');
  replace(main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Settings')),
    h('nav', { class: 'subnav', 'aria-label': 'Settings sections' }, SECTIONS.map(([id, label]) => h('a', { href: `/settings/${id}`, 'aria-current': current === id ? 'page' : undefined }, label))),
    body);
  const draw = { projects: item ? project : projects, clusters, repos, accounts }[current];
  if (!draw) { replace(body, h('p', {}, 'No such section.')); return null; }
  try {
    await draw(body, item);
  } catch (e) {
    replace(body, h('p', { class: 'error', role: 'alert' }, e.message));
  }
  return null;
}

async function projects(body) {
  const list = (await get('/api/v1/projects')).items || [];
  replace(body, table('Projects', ['Name', 'Description', 'Source repositories', 'Destinations', 'Roles'], list.map((p) => [
    h('a', { href: `/settings/projects/${enc(p.metadata.name)}` }, p.metadata.name),
    p.spec.description || '',
    (p.spec.sourceRepos || []).join(', '),
    (p.spec.destinations || []).map((d) => `${d.name || d.server}/${d.namespace}`).join(', '),
    (p.spec.roles || []).map((r) => r.name).join(', '),
  ]), { empty: 'No projects you may see.' }));
}

async function project(body, name) {
  const [p, now] = await Promise.all([get(`/api/v1/projects/${enc(name)}`), get(`/api/v1/projects/${enc(name)}/syncwindows`).catch(() => ({ windows: [] }))]);
  const activeNow = new Set((now.windows || []).map((w) => JSON.stringify(w)));
  const spec = p.spec;
  const kinds = (list) => (list || []).map((k) => `${k.group || 'core'}/${k.kind}`).join(', ');
  replace(body,
    h('h2', {}, `Project ${name}`),
    facts([['Description', spec.description], ['Source repositories', (spec.sourceRepos || []).join(', ')],
      ['Source namespaces', (spec.sourceNamespaces || []).join(', ')],
      ['Cluster resources allowed', kinds(spec.clusterResourceWhitelist)], ['Cluster resources denied', kinds(spec.clusterResourceBlacklist)],
      ['Namespaced resources denied', kinds(spec.namespaceResourceBlacklist)],
      ['Orphaned resources', spec.orphanedResources ? `monitored${spec.orphanedResources.warn ? ', warn' : ''}` : 'not monitored']]),
    h('h3', {}, 'Destinations'),
    table('Destinations', ['Server', 'Name', 'Namespace'], (spec.destinations || []).map((d) => [d.server || '', d.name || '', d.namespace || '']), { empty: 'No destinations: nothing can be deployed.' }),
    h('h3', {}, 'Roles'),
    table('Roles', ['Role', 'Description', 'Policies', 'Groups', 'Tokens'], (spec.roles || []).map((r) => [
      r.name, r.description || '', h('pre', { class: 'code small' }, (r.policies || []).join('\n')), (r.groups || []).join(', '),
      (r.jwtTokens || []).map((t) => h('div', {}, `issued ${new Date(t.iat * 1000).toISOString()}${t.exp ? `, expires ${new Date(t.exp * 1000).toISOString()}` : ''}`)),
    ]), { empty: 'No roles.' }),
    h('h3', {}, 'Sync windows'),
    table('Sync windows', ['Status', 'Kind', 'Schedule', 'Duration', 'Applications', 'Namespaces', 'Clusters', 'Manual sync', 'Time zone'], (spec.syncWindows || []).map((w, id) => [
      (now.errors || []).some((e) => e.id === id) ? h('span', { class: 'badge bad' }, 'error') : activeNow.has(JSON.stringify(w)) ? h('span', { class: 'badge warn' }, 'active') : 'inactive',
      w.kind, h('code', {}, w.schedule), w.duration, (w.applications || []).join(', '), (w.namespaces || []).join(', '), (w.clusters || []).join(', '), w.manualSync ? 'allowed' : 'no', w.timeZone || 'UTC',
    ]), { empty: 'No sync windows: syncs are allowed at any time.' }));
}

async function clusters(body) {
  const list = (await get('/api/v1/clusters')).items || [];
  replace(body, table('Clusters', ['Name', 'Server', 'Connection', 'Version', 'Namespaces', 'Project'], list.map((c) => [
    c.name, c.server, connection(c.connectionState || (c.info && c.info.connectionState)), c.serverVersion || (c.info && c.info.serverVersion) || '',
    (c.namespaces || []).join(', ') || 'all', c.project || '',
  ]), { empty: 'No clusters you may see.' }));
}

async function repos(body) {
  const [list, canCreate, canDelete] = await Promise.all([get('/api/v1/repositories'), canI('repositories', 'create', '*/*'), canI('repositories', 'delete', '*/*')]);
  const items = list.items || [];
  const add = h('button', { type: 'button', class: 'primary', disabled: !canCreate, title: canCreate ? undefined : 'You do not have permission to do this', onclick: () => addRepo(() => repos(body)) }, '+ Connect repository');
  replace(body, h('div', { class: 'actions' }, add),
    table('Repositories', ['Repository', 'Type', 'Name', 'Project', 'Connection', ''], items.map((r) => [
      r.repo, r.type || 'git', r.name || '', r.project || '', connection(r.connectionState),
      h('button', {
        type: 'button', class: 'danger small', disabled: !canDelete, 'aria-label': `Disconnect ${r.repo}`,
        onclick: () => confirmDialog('Disconnect repository?', r.repo, 'Disconnect', async () => {
          await api('DELETE', `/api/v1/repositories/${enc(r.repo)}`); toast('Repository disconnected'); repos(body);
        }, { danger: true }),
      }, 'Disconnect'),
    ]), { empty: 'No repositories connected. Public repositories work without one.' }));
}

function addRepo(done) {
  const url = h('input', { type: 'url', required: true, placeholder: 'https://git.example.com/team/repo.git' });
  const type = h('select', {}, h('option', { value: 'git' }, 'git'), h('option', { value: 'helm' }, 'helm'));
  const name = h('input', {});
  const project = h('input', {});
  const username = h('input', { autocomplete: 'off' });
  const password = h('input', { type: 'password', autocomplete: 'new-password' });
  const insecure = checkbox('Skip server verification (insecure)');
  dialog({
    title: 'Connect a repository',
    action: 'Connect',
    body: [field('Repository URL', url), field('Type', type), field('Name (optional)', name), field('Project (optional)', project),
      field('Username (optional)', username), field('Password (optional)', password, 'Stored in a Secret; never shown again.'), insecure],
    onSubmit: async () => {
      const repo = { repo: url.value, type: type.value };
      if (name.value) repo.name = name.value;
      if (project.value) repo.project = project.value;
      if (username.value) repo.username = username.value;
      if (password.value) repo.password = password.value;
      if (insecure.input.checked) repo.insecure = true;
      await api('POST', '/api/v1/repositories', repo);
      toast('Repository connected');
      done();
    },
  });
}

async function accounts(body) {
  const me = await get('/api/v1/session/userinfo');
  const list = (await get('/api/v1/account')).items || [];
  const rows = await Promise.all(list.map(async (a) => {
    const canToken = a.name === me.username || await canI('accounts', 'update', a.name);
    const tokens = (a.tokens || []).map((t) => h('div', { class: 'token' }, h('code', {}, t.id), ` issued ${new Date(t.issuedAt * 1000).toISOString()}`, t.expiresAt ? `, expires ${new Date(t.expiresAt * 1000).toISOString()}` : '',
      canToken ? [' ', h('button', {
        type: 'button', class: 'link', 'aria-label': `Revoke token ${t.id}`,
        onclick: () => confirmDialog('Revoke token?', `Token ${t.id} of ${a.name} stops working at once.`, 'Revoke', async () => {
          await api('DELETE', `/api/v1/account/${enc(a.name)}/token/${enc(t.id)}`); toast('Token revoked'); accounts(body);
        }, { danger: true }),
      }, 'revoke')] : null));
    const generate = canToken && (a.capabilities || []).includes('apiKey') ? h('button', { type: 'button', class: 'small', onclick: () => newToken(a.name, () => accounts(body)) }, 'Generate token') : null;
    return [a.name, a.enabled ? 'yes' : 'no', (a.capabilities || []).join(', '), [tokens, generate]];
  }));
  replace(body, table('Accounts', ['Name', 'Enabled', 'Capabilities', 'Tokens'], rows, { empty: 'No accounts you may see.' }));
}

function newToken(account, done) {
  const expires = h('input', { placeholder: 'e.g. 24h; empty for none' });
  const id = h('input', { placeholder: 'optional' });
  dialog({
    title: `New token for ${account}`,
    action: 'Generate',
    body: [field('Expires in', expires), field('Token ID', id)],
    onSubmit: async () => {
      const seconds = parseDuration(expires.value);
      const r = await api('POST', `/api/v1/account/${enc(account)}/token`, { name: account, expiresIn: seconds, id: id.value || undefined });
      done();
      const shown = h('textarea', { class: 'code', rows: 4, readonly: true, 'aria-label': 'New token' });
      shown.value = r.token;
      dialog({ title: 'Copy the token now', body: [h('p', {}, 'It is not shown again.'), shown], action: 'Done', onSubmit: async () => {} });
    },
  });
}

function parseDuration(text) {
  const m = (text || '').trim().match(/^(\d+)\s*([smhd]?)$/);
  if (!m) return 0;
  return Number(m[1]) * ({ s: 1, m: 60, h: 3600, d: 86400, '': 1 }[m[2]]);
}

export async function userView(main) {
  const me = await get('/api/v1/session/userinfo');
  const local = !me.iss || me.iss === 'argocd';
  const current = h('input', { type: 'password', autocomplete: 'current-password' });
  const next = h('input', { type: 'password', autocomplete: 'new-password' });
  replace(main, h('div', { class: 'page-head' }, h('h1', {}, 'User info')),
    facts([['Username', me.username], ['Issuer', me.iss], ['Groups', (me.groups || []).join(', ') || 'none']]),
    local ? h('form', {
      class: 'narrow',
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          await api('PUT', '/api/v1/account/password', { name: me.username, currentPassword: current.value, newPassword: next.value });
          toast('Password changed'); current.value = ''; next.value = '';
        } catch (err) { toast(err.message, 'error'); }
      },
    }, h('h2', {}, 'Change password'), field('Current password', current), field('New password', next), h('button', { type: 'submit', class: 'primary' }, 'Change password')) : null);
  return null;
}
