// ApplicationSets: the list, one set's generators, conditions and generated apps, and a
// preview of what an edited spec would generate (the server runs the generators; nothing is
// written).
import { h, replace, table, time, facts, toast } from './dom.js';
import { get, api, enc, canI } from './api.js';
import { healthBadge, syncBadge } from './status.js';
import { toYaml } from './yaml.js';
import { appPath } from './apps.js';
import { confirmDialog } from './dialogs.js';
import { navigate } from './main.js';

const generatorKinds = (spec) => (spec.generators || []).map((g) => Object.keys(g).join('+')).join(', ');

function conditionsOf(set) {
  return (set.status && set.status.conditions) || [];
}

export async function appsetsView(main) {
  const list = await get('/api/v1/applicationsets');
  const items = list.items || [];
  replace(main, h('div', { class: 'page-head' }, h('h1', {}, 'ApplicationSets')),
    table('ApplicationSets', ['Name', 'Generators', 'Project', 'Conditions', 'Created'], items.map((s) => [
      h('a', { href: `/applicationsets/${enc(s.metadata.name)}` }, s.metadata.name),
      generatorKinds(s.spec),
      (s.spec.template && s.spec.template.spec && s.spec.template.spec.project) || '',
      conditionsOf(s).filter((c) => c.status === 'True').map((c) => h('span', { class: ['pill', /Error/.test(c.type) ? 'bad' : 'ok'] }, c.type)),
      time(s.metadata.creationTimestamp),
    ]), { empty: 'No ApplicationSets.' }));
  return null;
}

export async function appsetView(main, { name }) {
  const set = await get(`/api/v1/applicationsets/${enc(name)}`);
  const generated = await get(`/api/ui/applications?appset=${enc(name)}&limit=500`);
  const canDelete = await canI('applicationsets', 'delete', `${(set.spec.template && set.spec.template.spec && set.spec.template.spec.project) || 'default'}/${name}`);
  const editable = { apiVersion: 'argoproj.io/v1alpha1', kind: 'ApplicationSet', metadata: { name: set.metadata.name, namespace: set.metadata.namespace }, spec: set.spec };
  const editor = h('textarea', { class: 'code', rows: 20, spellcheck: 'false', 'aria-label': 'ApplicationSet to preview (YAML)' });
  editor.value = toYaml(editable);
  const previewOut = h('div', { 'aria-live': 'polite' });
  const existing = new Map(generated.items.map((a) => [a.name, a]));
  async function preview() {
    replace(previewOut, h('p', { class: 'loading' }, 'Generating…'));
    try {
      // The edited YAML goes as it is, under the request's one field.
      const body = `applicationSet:\n${editor.value.split('\n').map((l) => `  ${l}`).join('\n')}\n`;
      const result = await api('POST', '/api/v1/applicationsets/generate', body, { contentType: 'application/yaml' });
      const apps = result.applications || [];
      const names = new Set(apps.map((a) => a.metadata.name));
      const rows = apps.map((a) => {
        const src = a.spec.source || (a.spec.sources || [])[0] || {};
        return [a.metadata.name, existing.has(a.metadata.name) ? 'exists' : h('strong', {}, 'new'), a.spec.project, `${src.repoURL || ''} ${src.path || src.chart || ''} @ ${src.targetRevision || 'HEAD'}`, `${a.spec.destination.name || a.spec.destination.server}/${a.spec.destination.namespace || ''}`];
      });
      for (const [gone] of existing) if (!names.has(gone)) rows.push([gone, h('strong', { class: 'warn-text' }, 'no longer generated'), '', '', '']);
      replace(previewOut, h('p', {}, `${apps.length} applications would be generated.`),
        table('Preview', ['Name', 'Change', 'Project', 'Source', 'Destination'], rows, { empty: 'Nothing would be generated.' }));
    } catch (e) {
      replace(previewOut, h('p', { class: 'error', role: 'alert' }, e.message));
    }
  }
  replace(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '/applicationsets' }, 'ApplicationSets'), ' / ', name),
    h('div', { class: 'page-head' }, h('h1', {}, name),
      h('div', { class: 'actions' }, h('button', {
        type: 'button', class: 'danger', disabled: !canDelete, title: canDelete ? undefined : 'You do not have permission to do this',
        onclick: () => confirmDialog(`Delete ApplicationSet ${name}?`, 'Its generated applications are deleted with it unless its policy preserves them.', 'Delete',
          async () => { await api('DELETE', `/api/v1/applicationsets/${enc(name)}`); toast(`${name} deleted`); navigate('/applicationsets'); }, { danger: true }),
      }, 'Delete'))),
    facts([['Generators', generatorKinds(set.spec)], ['Sync policy', set.spec.syncPolicy ? JSON.stringify(set.spec.syncPolicy) : ''], ['Created', time(set.metadata.creationTimestamp)]]),
    h('h2', {}, 'Conditions'),
    table('Conditions', ['Type', 'Status', 'Reason', 'Message', 'Since'], conditionsOf(set).map((c) => [c.type, c.status, c.reason || '', c.message || '', time(c.lastTransitionTime)]), { empty: 'No conditions reported.' }),
    h('h2', {}, `Generated applications (${generated.total})`),
    table('Generated applications', ['Name', 'Health', 'Sync', 'Destination'], generated.items.map((a) => [
      h('a', { href: appPath(a) }, a.name), healthBadge(a.health), syncBadge(a.sync), `${a.cluster}/${a.destNamespace}`]), { empty: 'None yet.' }),
    h('h2', {}, 'Preview a change'),
    h('p', { class: 'muted' }, 'Edit the spec and see which applications it would generate. Nothing is saved.'),
    editor,
    h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', onclick: preview }, 'Preview')),
    previewOut);
  return null;
}
