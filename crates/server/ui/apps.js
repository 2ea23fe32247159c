// The applications list: tiles or a table, filtered, searched, counted and paged on the
// server (so 10,000 apps cost one page), kept live by a stream of which apps changed.
import { h, replace, time, shortSha, debounce, toast } from './dom.js';
import { get, api, query, stream, canI } from './api.js';
import { healthBadge, syncBadge, phaseBadge, HEALTH_STATES, SYNC_STATES } from './status.js';
import { setQuery } from './main.js';
import { yamlDialog } from './dialogs.js';

const FACETS = [
  ['favourites', 'Favourites'],
  ['sync', 'Sync status'],
  ['health', 'Health status'],
  ['autoSync', 'Auto-sync'],
  ['project', 'Projects'],
  ['cluster', 'Clusters'],
  ['namespace', 'Namespaces'],
  ['repo', 'Repositories'],
  ['label', 'Labels'],
];
const MULTI = ['project', 'sync', 'health', 'cluster', 'namespace', 'label', 'repo', 'autoSync'];
const PAGE_SIZE = { tiles: 60, table: 100 };
const SHOWN_VALUES = 12;

export function favourites() {
  try { return new Set(JSON.parse(localStorage.getItem('tiphys.favourites') || '[]')); } catch { return new Set(); }
}
export function toggleFavourite(name) {
  const f = favourites();
  if (f.has(name)) f.delete(name); else f.add(name);
  localStorage.setItem('tiphys.favourites', JSON.stringify([...f]));
  return f.has(name);
}

export const appPath = (s) => `/applications/${encodeURIComponent(s.namespace || 'argocd')}/${encodeURIComponent(s.name)}`;

function readState(q) {
  const state = { search: q.get('search') || '', view: q.get('view') === 'table' ? 'table' : 'tiles', page: Number(q.get('page')) || 0, sort: q.get('sort') || 'name', favourites: q.get('favourites') === 'true' };
  for (const f of MULTI) state[f] = q.getAll(f);
  return state;
}

function star(name, onChange) {
  const on = favourites().has(name);
  return h('button', {
    type: 'button', class: ['star', on && 'on'], 'aria-pressed': String(on), 'aria-label': `Favourite ${name}`, title: 'Favourite',
    onclick: (e) => {
      e.preventDefault(); e.stopPropagation();
      const now = toggleFavourite(name);
      e.currentTarget.classList.toggle('on', now);
      e.currentTarget.setAttribute('aria-pressed', String(now));
      if (onChange) onChange();
    },
  }, '★');
}

function autoSyncText(s) {
  if (s.pausedUntil) return h('span', { title: `until ${s.pausedUntil}` }, 'paused ', time(s.pausedUntil));
  return s.autoSync ? 'enabled' : 'disabled';
}

function destination(s) {
  const cluster = s.cluster === 'https://kubernetes.default.svc' ? 'in-cluster' : s.cluster;
  return `${cluster}/${s.destNamespace || ''}`;
}

function tile(s, onFavourite) {
  // The name is the link; its ::after covers the tile, so all of it is clickable while the
  // star stays a separate button (a button inside a link is not valid HTML).
  return h('article', { class: ['tile', `sync-${s.sync}`, `health-${s.health}`], 'data-app': s.name },
    h('div', { class: 'tile-head' }, h('a', { class: 'tile-link app-name', href: appPath(s) }, s.name), star(s.name, onFavourite)),
    h('div', { class: 'tile-status' }, healthBadge(s.health), syncBadge(s.sync), s.operation === 'Running' ? phaseBadge('Running') : null,
      s.pausedUntil ? h('span', { class: 'badge paused', title: `Auto-sync paused until ${s.pausedUntil}` }, '‖ paused') : null),
    h('dl', { class: 'tile-facts' },
      h('dt', {}, 'Project'), h('dd', {}, s.project),
      h('dt', {}, 'Repository'), h('dd', { title: s.repo }, s.repo),
      h('dt', {}, s.path ? 'Path' : 'Chart'), h('dd', {}, s.path || '—'),
      h('dt', {}, 'Revision'), h('dd', {}, `${s.targetRevision || 'HEAD'}${s.revision ? ` (${shortSha(s.revision)})` : ''}`),
      h('dt', {}, 'Destination'), h('dd', {}, destination(s)),
      h('dt', {}, 'Auto-sync'), h('dd', {}, autoSyncText(s)),
      s.lastSynced ? [h('dt', {}, 'Last sync'), h('dd', {}, time(s.lastSynced))] : null));
}

function row(s, onFavourite) {
  return h('tr', { 'data-app': s.name },
    h('td', {}, star(s.name, onFavourite)),
    h('td', {}, h('a', { href: appPath(s) }, s.name)),
    h('td', {}, s.project),
    h('td', {}, healthBadge(s.health)),
    h('td', {}, syncBadge(s.sync)),
    h('td', { class: 'wrap' }, s.repo, h('br'), h('small', {}, s.path)),
    h('td', {}, destination(s)),
    h('td', {}, autoSyncText(s)),
    h('td', {}, time(s.lastSynced)));
}

export async function appsView(main, { query: q }) {
  const state = readState(q);
  const searchBox = h('input', { type: 'search', placeholder: 'Search applications', 'aria-label': 'Search applications', value: state.search });
  // A disclosure, open on wide screens; on a phone the list comes first.
  const filters = h('div', { class: 'facets' });
  const filterBox = h('details', { class: 'filters', open: window.matchMedia('(min-width: 761px)').matches },
    h('summary', {}, 'Filters'), filters);
  const summary = h('div', { class: 'counts', role: 'status', 'aria-live': 'polite' });
  const results = h('div', { class: 'results' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  const viewToggle = h('div', { class: 'segmented', role: 'group', 'aria-label': 'View' });
  const sort = h('select', { 'aria-label': 'Sort by' },
    [['name', 'Name'], ['created', 'Newest'], ['synced', 'Last synced']].map(([v, t]) => h('option', { value: v, selected: state.sort === v }, t)));
  // Shown once the server says the user may create apps; the list does not wait for it.
  const newApp = h('button', { type: 'button', class: 'primary', hidden: true, onclick: () => createApp() }, '+ New app');
  canI('applications', 'create', '*/*').then((yes) => { newApp.hidden = !yes; });
  replace(main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Applications'), newApp),
    h('div', { class: 'toolbar' }, searchBox, viewToggle, sort, h('button', { type: 'button', onclick: () => clearFilters() }, 'Clear filters')),
    summary,
    h('div', { class: 'with-filters' }, h('aside', { 'aria-label': 'Filters' }, filterBox), h('section', { class: 'list', 'aria-label': 'Applications' }, results, pager)));

  let generation = 0;
  async function load() {
    const mine = ++generation;
    const params = { search: state.search, sort: state.sort, offset: state.page * PAGE_SIZE[state.view], limit: PAGE_SIZE[state.view] };
    for (const f of MULTI) params[f] = state[f];
    if (state.favourites) { params.favourites = 'true'; params.name = [...favourites()]; }
    let page;
    try {
      page = await get(`/api/ui/applications${query(params)}`);
    } catch (e) {
      if (mine === generation) replace(results, h('p', { class: 'error', role: 'alert' }, e.message));
      return;
    }
    if (mine !== generation) return;
    draw(page);
  }

  function save() {
    const params = { ...state };
    if (params.view === 'tiles') delete params.view;
    if (params.sort === 'name') delete params.sort;
    if (!params.page) delete params.page;
    setQuery(params);
  }

  function changed() {
    state.page = 0;
    save();
    load();
  }

  function clearFilters() {
    for (const f of MULTI) state[f] = [];
    state.search = ''; searchBox.value = ''; state.favourites = false;
    changed();
  }

  function facet(name, label, counts, omitted) {
    const chosen = state[name] || [];
    const values = Object.entries(counts || {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    if (name === 'sync') SYNC_STATES.forEach((s) => { if (!values.some(([v]) => v === s)) values.push([s, 0]); });
    if (name === 'health') HEALTH_STATES.forEach((s) => { if (!values.some(([v]) => v === s)) values.push([s, 0]); });
    const shown = values.filter(([v], i) => i < SHOWN_VALUES || chosen.includes(v));
    const box = h('fieldset', { class: 'facet' }, h('legend', {}, label));
    for (const [value, count] of shown) {
      const input = h('input', {
        type: 'checkbox', checked: chosen.includes(value), name, 'data-value': value,
        onchange: (e) => {
          state[name] = e.target.checked ? [...chosen, value] : chosen.filter((v) => v !== value);
          changed();
        },
      });
      const text = name === 'cluster' && value === 'https://kubernetes.default.svc' ? 'in-cluster' : value || '(none)';
      box.append(h('label', { class: 'check', title: value }, input, ' ', h('span', { class: 'facet-value' }, text), h('span', { class: 'count' }, count)));
    }
    const more = values.length - shown.length + (omitted || 0);
    if (more > 0) box.append(h('small', { class: 'muted' }, `${more} more: use search`));
    return box;
  }

  function draw(page) {
    // Filters.
    replace(filters, FACETS.map(([name, label]) => {
      if (name === 'favourites') {
        const input = h('input', { type: 'checkbox', checked: state.favourites, onchange: (e) => { state.favourites = e.target.checked; changed(); } });
        return h('fieldset', { class: 'facet' }, h('legend', {}, label), h('label', { class: 'check' }, input, ' Only favourites', h('span', { class: 'count' }, favourites().size)));
      }
      return facet(name, label, page.facets[name], page.facetsOmitted[name]);
    }));
    // Counts per status over the filtered list.
    const sync = page.facets.sync || {};
    const health = page.facets.health || {};
    replace(summary,
      h('span', {}, h('strong', {}, page.total), ` of ${page.visible} applications`),
      ['Synced', 'OutOfSync'].map((s) => h('span', { class: 'count-item' }, syncBadge(s), ' ', sync[s] || 0)),
      ['Healthy', 'Progressing', 'Degraded', 'Missing'].map((s) => h('span', { class: 'count-item' }, healthBadge(s), ' ', health[s] || 0)));
    // View toggle.
    replace(viewToggle, ['tiles', 'table'].map((v) => h('button', {
      type: 'button', 'aria-pressed': String(state.view === v),
      onclick: () => { state.view = v; changed(); },
    }, v === 'tiles' ? 'Tiles' : 'Table')));
    // Items.
    const refresh = state.favourites ? () => load() : null;
    if (!page.items.length) {
      replace(results, h('p', { class: 'empty' }, page.visible ? 'No applications match these filters.' : 'No applications yet.'));
    } else if (state.view === 'tiles') {
      replace(results, h('div', { class: 'tiles' }, page.items.map((s) => tile(s, refresh))));
    } else {
      replace(results, h('div', { class: 'table-wrap' }, h('table', { class: 'apps', 'aria-label': 'Applications' },
        h('thead', {}, h('tr', {}, ['', 'Name', 'Project', 'Health', 'Sync', 'Source', 'Destination', 'Auto-sync', 'Last sync'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, page.items.map((s) => row(s, refresh))))));
    }
    // Pages.
    const size = PAGE_SIZE[state.view];
    const pages = Math.max(1, Math.ceil(page.total / size));
    const go = (p) => { state.page = p; save(); load(); main.focus(); };
    replace(pager, pages > 1 ? [
      h('button', { type: 'button', disabled: state.page === 0, onclick: () => go(state.page - 1) }, '‹ Previous'),
      h('span', {}, ` Page ${state.page + 1} of ${pages} `),
      h('button', { type: 'button', disabled: state.page >= pages - 1, onclick: () => go(state.page + 1) }, 'Next ›'),
    ] : []);
  }

  searchBox.addEventListener('input', debounce(() => { state.search = searchBox.value; changed(); }, 150));
  sort.addEventListener('change', () => { state.sort = sort.value; changed(); });

  function createApp() {
    const template = 'apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  project: default\n  source:\n    repoURL: https://github.com/argoproj/argocd-example-apps\n    targetRevision: HEAD\n    path: guestbook\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: my-app\n  syncPolicy:\n    syncOptions:\n    - CreateNamespace=true\n';
    yamlDialog({
      title: 'New application', action: 'Create', text: template,
      submit: async (text) => {
        await api('POST', '/api/v1/applications', text, { contentType: 'application/yaml' });
        toast('Application created');
        load();
      },
    });
  }

  await load();
  // Live: a change to any visible app refetches the page, at most a few times a second.
  let timer = null;
  const live = stream('/api/ui/stream/applications', () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; load(); }, 500);
  });
  return () => { live.close(); clearTimeout(timer); };
}
