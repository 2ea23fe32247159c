// One application: its state and operation, the resource tree (or a list), history and
// rollback, details, events, the diff of everything out of sync, and the actions the user may
// take. It follows the app's stream and its tree's stream, so it is always current.
import { h, replace, facts, table, time, ago, shortSha, toast, debounce } from './dom.js';
import { get, api, enc, stream, canI } from './api.js';
import { healthBadge, syncBadge, phaseBadge } from './status.js';
import { drawTree, treeNodes, nodeKey } from './tree.js';
import { resourcePanel, eventsTable, diffSides, diffView } from './resource.js';
import { syncDialog, deleteDialog, confirmDialog, checkbox, dialog, yamlDialog, field } from './dialogs.js';
import { toYaml } from './yaml.js';
import { setQuery, navigate } from './main.js';
import { favourites, toggleFavourite } from './apps.js';

// Where a pause of auto-sync is recorded (tiphys_model::pause).
const PAUSED_UNTIL = 'tiphys.io/auto-sync-paused-until';
const PAUSED_REASON = 'tiphys.io/auto-sync-paused-reason';
const PAUSED_BY = 'tiphys.io/auto-sync-paused-by';

const TABS = [['tree', 'Tree'], ['list', 'List'], ['diff', 'Diff'], ['history', 'History and rollback'], ['details', 'Details'], ['events', 'Events']];

// What a revision says of itself, asked once per revision: a commit's message and author
// (git), a chart version's description and maintainers, an OCI manifest's annotations.
const revisionInfos = new Map();
function revisionInfo(name, source, revision) {
  const repo = (source && source.repoURL) || '';
  const kind = source && source.chart ? 'chartdetails'
    : repo.startsWith('oci://') ? 'ocimetadata'
      : /^[0-9a-f]{40}$/.test(revision || '') ? 'metadata' : null;
  if (!kind || !revision) return Promise.resolve(null);
  const key = `${kind} ${repo} ${revision}`;
  if (!revisionInfos.has(key)) {
    revisionInfos.set(key, get(`/api/v1/applications/${enc(name)}/revisions/${enc(revision)}/${kind}`)
      .then((info) => info && { ...info, kind }).catch(() => null));
  }
  return revisionInfos.get(key);
}

function revisionLine(info) {
  if (!info) return '';
  if (info.kind === 'chartdetails') {
    const maintainers = info.maintainers || [];
    return h('span', { class: 'commit' }, info.description || '', maintainers.length ? ` (maintainers: ${maintainers.join(', ')})` : '');
  }
  if (info.kind === 'ocimetadata') {
    return h('span', { class: 'commit' }, info.version ? `Version ${info.version}` : 'Artifact', info.authors ? ` by ${info.authors}` : '', info.createdAt ? [' ', time(info.createdAt)] : '');
  }
  return h('span', { class: 'commit' }, h('q', {}, (info.message || '').split('\n')[0]), ` by ${info.author || 'unknown'} `, time(info.date));
}

export async function appView(main, { name, query }) {
  let app = await get(`/api/v1/applications/${enc(name)}`);
  const object = `${app.spec.project || 'default'}/${name}`;
  const [canSync, canUpdate, canDelete] = await Promise.all([
    canI('applications', 'sync', object), canI('applications', 'update', object), canI('applications', 'delete', object)]);
  const view = { tab: TABS.some(([t]) => t === query.get('view')) ? query.get('view') : 'tree', node: query.get('node'), resourceTab: query.get('resourceTab') || 'summary', filter: '', expanded: new Set() };
  let tree = null;
  let managed = null; // managed-resources, fetched when a view needs desired states

  const header = h('section', { class: 'app-header', 'aria-label': 'Application status' });
  const actions = h('div', { class: 'actions', role: 'toolbar', 'aria-label': 'Application actions' });
  const tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Application views' });
  const content = h('section', { class: 'tab-content', role: 'tabpanel', id: 'app-tab' });
  const panel = h('aside', { class: 'resource-panel', 'aria-labelledby': 'panel-title', hidden: true });
  const favourite = h('button', { type: 'button', class: ['star', favourites().has(name) && 'on'], 'aria-label': `Favourite ${name}`, 'aria-pressed': String(favourites().has(name)), onclick: (e) => { const on = toggleFavourite(name); e.currentTarget.classList.toggle('on', on); e.currentTarget.setAttribute('aria-pressed', String(on)); } }, '★');
  replace(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '/applications' }, 'Applications'), ' / ', name),
    h('div', { class: 'page-head' }, h('h1', {}, name, ' ', favourite), actions),
    header, tabs, content, panel);

  const save = () => setQuery({ view: view.tab === 'tree' ? '' : view.tab, node: view.node, resourceTab: view.node && view.resourceTab !== 'summary' ? view.resourceTab : '' });

  async function loadManaged(force = false) {
    if (!managed || force) managed = (await get(`/api/v1/applications/${enc(name)}/managed-resources`)).items || [];
    return managed;
  }

  // ---- header and actions ----
  function drawActions() {
    const running = app.status && app.status.operationState && app.status.operationState.phase === 'Running';
    const auto = !!(app.spec.syncPolicy && app.spec.syncPolicy.automated && app.spec.syncPolicy.automated.enabled !== false);
    const button = (label, onclick, { allowed = true, why = '', cls = '' } = {}) => h('button', {
      type: 'button', class: cls, onclick, disabled: !allowed, title: allowed ? undefined : why, 'aria-disabled': String(!allowed),
    }, label);
    const denied = 'You do not have permission to do this';
    replace(actions,
      button('Sync', () => syncDialog(app, () => {}), { allowed: canSync, why: denied, cls: 'primary' }),
      button('Refresh', () => refresh('normal')),
      button('Hard refresh', () => refresh('hard')),
      running ? button('Terminate', () => confirmDialog('Terminate the operation?', 'The running sync stops; what it already applied stays.', 'Terminate',
        async () => { await api('DELETE', `/api/v1/applications/${enc(name)}/operation`); toast('Terminating'); }, { danger: true }), { allowed: canSync, why: denied }) : null,
      app.metadata.annotations && app.metadata.annotations[PAUSED_UNTIL]
        ? button('Resume auto-sync', () => resume(), { allowed: canUpdate, why: denied })
        : auto ? button('Pause auto-sync', () => pauseDialog(), { allowed: canUpdate, why: denied }) : null,
      paused() ? null : button(auto ? 'Disable auto-sync' : 'Enable auto-sync', () => setAutoSync(!auto), { allowed: canUpdate, why: denied }),
      button('Edit', () => editSpec(), { allowed: canUpdate, why: denied }),
      button('Delete', () => deleteDialog(app, () => navigate('/applications')), { allowed: canDelete, why: denied, cls: 'danger' }));
  }

  async function refresh(kind) {
    try {
      app = await get(`/api/v1/applications/${enc(name)}?refresh=${kind}`);
      managed = null;
      toast(kind === 'hard' ? 'Hard refresh requested' : 'Refresh requested');
      drawAll();
    } catch (e) { toast(e.message, 'error'); }
  }

  function setAutoSync(enable) {
    const prune = checkbox('Prune resources Git no longer has', { checked: true });
    const selfHeal = checkbox('Self heal: undo changes made in the cluster', { checked: true });
    dialog({
      title: enable ? 'Enable auto-sync' : 'Disable auto-sync',
      body: enable ? [prune, selfHeal] : h('p', {}, 'Git changes will no longer be applied until someone syncs.'),
      action: enable ? 'Enable' : 'Disable',
      onSubmit: async () => {
        const spec = JSON.parse(JSON.stringify(app.spec));
        spec.syncPolicy = spec.syncPolicy || {};
        if (enable) spec.syncPolicy.automated = { prune: prune.input.checked, selfHeal: selfHeal.input.checked };
        else delete spec.syncPolicy.automated;
        await api('PUT', `/api/v1/applications/${enc(name)}/spec`, spec);
        toast(enable ? 'Auto-sync enabled' : 'Auto-sync disabled');
      },
    });
  }

  function paused() {
    const a = app.metadata.annotations || {};
    return a[PAUSED_UNTIL] ? { until: a[PAUSED_UNTIL], reason: a[PAUSED_REASON] || '', by: a[PAUSED_BY] || '' } : null;
  }

  // A time-limited pause: no auto-sync and no self-heal until it ends (drift is still shown).
  function pauseDialog() {
    const duration = h('select', {}, [['30m', '30 minutes'], ['1h', '1 hour'], ['2h', '2 hours'], ['4h', '4 hours'], ['8h', '8 hours'], ['24h', '24 hours']]
      .map(([v, t]) => h('option', { value: v, selected: v === '2h' }, t)));
    const reason = h('input', { placeholder: 'e.g. incident 4711: scaled by hand', required: true });
    dialog({
      title: `Pause auto-sync of ${name}`,
      action: 'Pause',
      body: [h('p', {}, 'Auto-sync and self-heal stop until the pause ends; then they resume by themselves and undo changes made meanwhile.'),
        field('For', duration), field('Reason (shown to the team)', reason)],
      onSubmit: async () => {
        await api('POST', `/api/v1/applications/${enc(name)}/pause`, { duration: duration.value, reason: reason.value });
        toast('Auto-sync paused');
      },
    });
  }

  async function resume() {
    try {
      await api('DELETE', `/api/v1/applications/${enc(name)}/pause`);
      toast('Auto-sync resumed');
    } catch (e) { toast(e.message, 'error'); }
  }

  function editSpec() {
    yamlDialog({
      title: `Edit ${name} (spec)`, action: 'Save', text: toYaml(app.spec),
      submit: async (text) => { await api('PUT', `/api/v1/applications/${enc(name)}/spec`, text, { contentType: 'application/yaml' }); toast('Saved'); },
    });
  }

  // Windows open and close by the clock, not with the app: asked at most every 30 seconds,
  // however often the app changes.
  let windowsAsked = 0;
  let windowsAnswer = null;
  function syncWindows() {
    if (!windowsAnswer || Date.now() - windowsAsked > 30_000) {
      windowsAsked = Date.now();
      windowsAnswer = get(`/api/v1/applications/${enc(name)}/syncwindows`);
    }
    return windowsAnswer;
  }

  async function drawHeader() {
    const status = app.status || {};
    const sync = status.sync || {};
    const health = status.health || {};
    const op = status.operationState;
    const source = app.spec.source || (app.spec.sources || [])[0] || {};
    const lastSynced = op && op.syncResult && op.syncResult.revision;
    const conditions = status.conditions || [];
    const auto = app.spec.syncPolicy && app.spec.syncPolicy.automated && app.spec.syncPolicy.automated.enabled !== false;
    const progress = op && op.syncResult ? `${(op.syncResult.resources || []).length} of ${(status.resources || []).length} resources` : '';
    const targetMeta = h('span');
    const syncedMeta = h('span');
    const windows = h('span', { class: 'muted' }, '…');
    replace(header,
      h('div', { class: 'status-cards' },
        h('div', { class: 'card' }, h('h2', {}, 'App health'), healthBadge(health.status, health.message), health.message ? h('p', { class: 'muted' }, health.message) : null),
        h('div', { class: 'card' }, h('h2', {}, 'Sync status'), syncBadge(sync.status), ' to ', h('code', {}, source.targetRevision || 'HEAD'),
          sync.revision ? [' (', h('code', { title: sync.revision }, shortSha(sync.revision)), ')'] : null,
          h('p', { class: 'muted' }, targetMeta),
          paused()
            ? h('p', { class: 'paused-note', role: 'note' }, h('span', { class: 'badge paused' }, '‖ Auto-sync paused'), ' until ', h('time', { datetime: paused().until }, `${new Date(paused().until).toLocaleString()} (${ago(paused().until)})`),
              paused().by ? ` by ${paused().by}` : '', paused().reason ? `: ${paused().reason}` : '')
            : h('p', { class: 'muted' }, 'Auto-sync ', h('strong', {}, auto ? 'enabled' : 'disabled'),
              auto ? ` (prune ${app.spec.syncPolicy.automated.prune ? 'on' : 'off'}, self-heal ${app.spec.syncPolicy.automated.selfHeal ? 'on' : 'off'})` : ''),
          h('p', { class: 'muted' }, 'Sync windows: ', windows)),
        h('div', { class: 'card' }, h('h2', {}, 'Last sync'),
          op ? [phaseBadge(op.phase, op.message), ' ', time(op.finishedAt || op.startedAt),
            lastSynced ? [' to ', h('code', { title: lastSynced }, shortSha(lastSynced))] : null,
            h('p', { class: 'muted' }, syncedMeta),
            op.phase === 'Running' ? h('p', {}, h('progress', { max: Math.max((status.resources || []).length, 1), value: (op.syncResult && (op.syncResult.resources || []).length) || 0, 'aria-label': 'Sync progress' }), ' ', progress) : null,
            h('p', { class: 'op-message' }, op.message || ''),
            op.operation && op.operation.initiatedBy ? h('p', { class: 'muted' }, 'Initiated by ', op.operation.initiatedBy.automated ? 'automated sync policy' : op.operation.initiatedBy.username || 'unknown') : null]
            : h('p', { class: 'muted' }, 'Never synced.'))),
      conditions.length ? h('ul', { class: 'conditions', 'aria-label': 'Conditions' },
        conditions.map((c) => h('li', { class: /Error/.test(c.type) ? 'bad' : 'warn' }, h('strong', {}, c.type), ': ', c.message))) : null);
    revisionInfo(name, source, sync.revision).then((m) => replace(targetMeta, revisionLine(m)));
    revisionInfo(name, source, lastSynced).then((m) => replace(syncedMeta, revisionLine(m)));
    syncWindows().then((w) => {
      const active = w.activeWindows || [];
      const assigned = w.assignedWindows || [];
      replace(windows, w.summary || (!assigned.length ? 'none' : `${active.length} active of ${assigned.length}; ${w.canSync ? 'sync allowed' : 'sync denied'}`));
    }).catch(() => replace(windows, 'unknown'));
  }

  function drawTabs() {
    replace(tabs, TABS.map(([id, label]) => h('button', {
      type: 'button', role: 'tab', id: `tab-${id}`, 'aria-selected': String(view.tab === id), 'aria-controls': 'app-tab', tabindex: view.tab === id ? 0 : -1,
      onclick: () => { view.tab = id; save(); drawTabs(); drawContent(); },
      onkeydown: (e) => {
        const i = TABS.findIndex(([t]) => t === id);
        const next = e.key === 'ArrowRight' ? TABS[(i + 1) % TABS.length] : e.key === 'ArrowLeft' ? TABS[(i + TABS.length - 1) % TABS.length] : null;
        if (next) { view.tab = next[0]; save(); drawTabs(); drawContent(); tabs.querySelector(`#tab-${next[0]}`).focus(); }
      },
    }, label)));
    content.setAttribute('aria-labelledby', `tab-${view.tab}`);
  }

  // ---- tab contents ----
  const treeBox = h('div', { class: 'tree-scroll', tabindex: 0, 'aria-label': 'Resource tree (scrollable)' });
  const treeFilter = h('input', { type: 'search', placeholder: 'Filter by name or kind', 'aria-label': 'Filter resources' });
  treeFilter.addEventListener('input', debounce(() => { view.filter = treeFilter.value.toLowerCase(); drawTreeNow(); }, 120));

  function select(node) {
    view.node = nodeKey(node);
    view.resourceTab = 'summary';
    save();
    drawPanel();
  }

  function drawTreeNow() {
    const nodes = treeNodes(app, tree);
    const count = drawTree(treeBox, app, nodes, {
      expanded: view.expanded, selected: view.node, filter: view.filter,
      onSelect: select,
      onExpand: (key) => { view.expanded.add(key); drawTreeNow(); },
    });
    treeBox.dataset.nodes = count;
  }

  function listView() {
    const nodes = treeNodes(app, tree).filter((n) => !view.filter || `${n.kind} ${n.name}`.toLowerCase().includes(view.filter));
    return table('Resources', ['Kind', 'Name', 'Namespace', 'Sync', 'Health', 'Message'], nodes.map((n) => h('tr', {},
      h('td', {}, n.kind),
      h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => select(n) }, n.name)),
      h('td', {}, n.namespace || ''),
      h('td', {}, n.syncStatus ? syncBadge(n.syncStatus) : ''),
      h('td', {}, n.health ? healthBadge(n.health.status) : ''),
      h('td', {}, (n.health && n.health.message) || ''))), { empty: 'No resources.' });
  }

  async function diffTab() {
    const items = await loadManaged(true);
    const changedItems = items.filter((i) => i.modified || (i.targetState === 'null') !== (i.liveState === 'null'));
    if (!changedItems.length) return h('p', { class: 'empty' }, 'Everything matches Git.');
    const mode = localStorage.getItem('tiphys.diffMode') || 'unified';
    return changedItems.map((i) => {
      const [before, after] = diffSides(i);
      return h('section', { class: 'diff-item' }, h('h3', {}, `${i.kind} ${i.namespace ? `${i.namespace}/` : ''}${i.name}`, i.requiresPruning ? ' (requires pruning)' : ''), diffView(before, after, mode));
    });
  }

  function historyTab() {
    const history = [...((app.status && app.status.history) || [])].reverse();
    const auto = !!(app.spec.syncPolicy && app.spec.syncPolicy.automated && app.spec.syncPolicy.automated.enabled !== false);
    const current = history[0] && history[0].id;
    const note = auto ? h('p', { class: 'muted' }, 'Rollback needs auto-sync disabled (it would put Git back at once).') : null;
    return [note, table('Deployment history', ['ID', 'Revision', 'Commit', 'Source', 'Deployed', ''], history.map((entry) => {
      const meta = h('span');
      const source = entry.source || (entry.sources || [])[0] || {};
      revisionInfo(name, source, entry.revision).then((m) => replace(meta, revisionLine(m)));
      return h('tr', {},
        h('td', {}, entry.id),
        h('td', {}, h('code', { title: entry.revision }, shortSha(entry.revision))),
        h('td', {}, meta),
        h('td', { class: 'wrap' }, `${source.path || source.chart || ''} @ ${source.targetRevision || 'HEAD'}`),
        h('td', {}, time(entry.deployedAt)),
        h('td', {}, entry.id === current ? h('span', { class: 'muted' }, 'current') : h('button', {
          type: 'button', disabled: auto || !canSync, title: auto ? 'Disable auto-sync first' : !canSync ? 'You do not have permission to do this' : undefined,
          onclick: () => rollback(entry),
        }, 'Rollback')));
    }), { empty: 'Nothing deployed yet.' })];
  }

  function rollback(entry) {
    const prune = checkbox('Prune');
    const dryRun = checkbox('Dry run');
    dialog({
      title: `Roll back ${name} to ${shortSha(entry.revision)} (ID ${entry.id})?`,
      body: [prune, dryRun],
      action: 'Rollback',
      onSubmit: async () => {
        await api('POST', `/api/v1/applications/${enc(name)}/rollback`, { id: entry.id, prune: prune.input.checked, dryRun: dryRun.input.checked });
        toast('Rollback started');
      },
    });
  }

  function detailsTab() {
    const spec = app.spec;
    const meta = app.metadata;
    const sources = spec.sources && spec.sources.length ? spec.sources : [spec.source || {}];
    return [
      facts([
        ['Project', h('a', { href: `/settings/projects/${enc(spec.project || 'default')}` }, spec.project || 'default')],
        ['Destination', `${spec.destination.name || spec.destination.server} / ${spec.destination.namespace || ''}`],
        ['Labels', Object.entries(meta.labels || {}).map(([k, v]) => h('span', { class: 'label' }, `${k}=${v}`))],
        ['Annotations', Object.entries(meta.annotations || {}).filter(([k]) => !k.startsWith('kubectl.kubernetes.io/')).map(([k, v]) => h('div', {}, h('code', {}, `${k}: ${v}`)))],
        ['Created', time(meta.creationTimestamp)],
        ['Sync options', ((spec.syncPolicy && spec.syncPolicy.syncOptions) || []).join(', ')],
        ['Retry', spec.syncPolicy && spec.syncPolicy.retry ? JSON.stringify(spec.syncPolicy.retry) : ''],
        ['Status badge', h('code', {}, `${location.origin}/api/badge?name=${enc(name)}`)],
      ]),
      sources.map((s, i) => h('section', { class: 'source' },
        h('h3', {}, sources.length > 1 ? `Source ${i + 1}` : 'Source'),
        facts([['Repository', s.repoURL], [s.chart ? 'Chart' : 'Path', s.chart || s.path], ['Target revision', s.targetRevision || 'HEAD'], ['Ref', s.ref]]),
        s.helm || s.kustomize || s.directory || s.plugin ? [h('h4', {}, 'Parameters'), h('pre', { class: 'code' }, toYaml({ helm: s.helm, kustomize: s.kustomize, directory: s.directory, plugin: s.plugin }))] : null)),
      spec.ignoreDifferences && spec.ignoreDifferences.length ? [h('h3', {}, 'Ignored differences'), h('pre', { class: 'code' }, toYaml(spec.ignoreDifferences))] : null,
    ];
  }

  let contentGeneration = 0;
  async function drawContent() {
    const mine = ++contentGeneration;
    const show = (...children) => { if (mine === contentGeneration) replace(content, ...children); };
    try {
      if (view.tab === 'tree') {
        if (!content.contains(treeBox)) replace(content, h('div', { class: 'tree-tools' }, treeFilter), treeBox);
        drawTreeNow();
      } else if (view.tab === 'list') {
        show(h('div', { class: 'tree-tools' }, treeFilter), listView());
      } else if (view.tab === 'diff') {
        show(h('p', { class: 'loading' }, 'Comparing…'));
        show(await diffTab());
      } else if (view.tab === 'history') {
        show(historyTab());
      } else if (view.tab === 'details') {
        show(detailsTab());
      } else if (view.tab === 'events') {
        const events = await get(`/api/v1/applications/${enc(name)}/events`);
        show(eventsTable(events.items || []));
      }
    } catch (e) {
      show(h('p', { class: 'error', role: 'alert' }, e.message));
    }
  }

  async function drawPanel() {
    if (!view.node) { panel.hidden = true; return; }
    const node = treeNodes(app, tree).find((n) => nodeKey(n) === view.node);
    if (!node) { panel.hidden = true; return; }
    panel.hidden = false;
    let entry = null;
    if (node.managed) {
      const items = await loadManaged(view.resourceTab === 'diff' || view.resourceTab === 'desired');
      entry = items.find((i) => nodeKey(i) === view.node) || { targetState: 'null', liveState: 'null' };
    }
    await resourcePanel(panel, {
      app, node, managed: entry, tab: view.resourceTab, canDelete,
      onTab: (t) => { view.resourceTab = t; save(); drawPanel(); },
      onClose: () => { view.node = null; save(); panel.hidden = true; drawTreeNow(); },
    });
    const close = panel.querySelector('.close');
    if (close && !panel.contains(document.activeElement)) close.focus();
  }
  panel.addEventListener('keydown', (e) => { if (e.key === 'Escape') { view.node = null; save(); panel.hidden = true; } });

  function drawAll() {
    drawActions();
    drawHeader();
    drawTabs();
    if (view.tab !== 'diff' && view.tab !== 'events') drawContent();
  }

  // ---- live ----
  let pending = false;
  const redraw = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; drawAll(); });
  };
  drawAll();
  if (view.tab === 'diff' || view.tab === 'events') drawContent();
  const appStream = stream(`/api/v1/stream/applications?name=${enc(name)}`, (event) => {
    if (!event || !event.application) return;
    if (event.type === 'DELETED') { toast(`${name} was deleted`); navigate('/applications'); return; }
    app = event.application;
    managed = null;
    redraw();
  });
  const treeStream = stream(`/api/v1/stream/applications/${enc(name)}/resource-tree`, (t) => {
    const first = tree === null;
    tree = t;
    if (view.tab === 'tree' || view.tab === 'list') redraw();
    if (first && view.node) drawPanel();
  });
  if (view.node) drawPanel();
  return () => { appStream.close(); treeStream.close(); };
}
