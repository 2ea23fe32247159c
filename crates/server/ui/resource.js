// One resource's panel: what it is, its live and desired manifests, the diff between them
// (unified or side by side) and its events. Secrets arrive from the server with their values
// replaced, so nothing secret reaches the page.
import { h, replace, facts, table, time, toast } from './dom.js';
import { get, api, enc, query } from './api.js';
import { toYaml, sortKeys } from './yaml.js';
import { diffLines, changed, unified, sideBySide } from './diff.js';
import { healthBadge, syncBadge } from './status.js';
import { confirmDialog } from './dialogs.js';

const TABS = [['summary', 'Summary'], ['live', 'Live manifest'], ['desired', 'Desired manifest'], ['diff', 'Diff'], ['events', 'Events']];

export const parseJson = (text) => { try { return text ? JSON.parse(text) : null; } catch { return null; } };

// The two sides of a managed resource's diff as Argo CD's UI compares them: the normalised
// live state against what applying the desired state would make it (predicted), else the
// desired state as written.
export function diffSides(entry) {
  const live = parseJson(entry.normalizedLiveState) || parseJson(entry.liveState);
  const desired = parseJson(entry.predictedLiveState) || parseJson(entry.targetState);
  return [live ? toYaml(sortKeys(live)) : '', desired ? toYaml(sortKeys(desired)) : ''];
}

export function diffView(before, after, mode) {
  const ops = diffLines(before, after);
  if (!changed(ops)) return h('p', { class: 'empty' }, 'No differences.');
  return mode === 'split' ? sideBySide(ops) : unified(ops);
}

export async function resourcePanel(container, { app, node, managed, tab = 'summary', canDelete, onTab, onClose }) {
  const name = app.metadata.name;
  const params = { namespace: node.namespace, resourceName: node.name, version: node.version, group: node.group || '', kind: node.kind };
  const body = h('div', { class: 'panel-body' });
  const tabs = h('div', { role: 'tablist', class: 'tabs', 'aria-label': 'Resource views' },
    TABS.filter(([id]) => managed || !['desired', 'diff'].includes(id)).map(([id, label]) => h('button', {
      type: 'button', role: 'tab', id: `rtab-${id}`, 'aria-selected': String(tab === id), 'aria-controls': 'resource-body',
      onclick: () => onTab(id),
    }, label)));
  body.id = 'resource-body';
  body.setAttribute('role', 'tabpanel');
  const del = canDelete ? h('button', {
    type: 'button', class: 'danger small',
    onclick: () => confirmDialog(`Delete ${node.kind} ${node.name}?`, 'The object is deleted in the cluster; if Git still has it, the next sync creates it again.', 'Delete',
      async () => { await api('DELETE', `/api/v1/applications/${enc(name)}/resource${query(params)}`); toast(`${node.kind} ${node.name} deleted`); onClose(); }, { danger: true }),
  }, 'Delete') : null;
  replace(container,
    h('div', { class: 'panel-head' },
      h('div', {}, h('div', { class: 'muted' }, node.kind), h('h2', { id: 'panel-title' }, node.name)),
      h('div', { class: 'panel-actions' }, del, h('button', { type: 'button', class: 'close', 'aria-label': 'Close', onclick: onClose }, '✕'))),
    tabs, body);
  replace(body, h('p', { class: 'loading' }, 'Loading…'));
  const liveText = async () => {
    const r = await get(`/api/v1/applications/${enc(name)}/resource${query(params)}`);
    return toYaml(parseJson(r.manifest));
  };
  try {
    if (tab === 'summary') {
      replace(body, facts([
        ['Kind', node.kind], ['Name', node.name], ['Namespace', node.namespace], ['API group', node.group || 'core'],
        ['Sync status', node.syncStatus ? syncBadge(node.syncStatus) : (managed ? '' : 'not managed directly (owned)')],
        ['Health', node.health ? [healthBadge(node.health.status), ' ', node.health.message || ''] : ''],
        ['Requires pruning', node.requiresPruning ? 'yes' : ''],
        ['Created', time(node.createdAt)],
        ['Images', (node.images || []).join(', ')],
        ['Info', (node.info || []).map((i) => `${i.name}: ${i.value}`).join(', ')],
        ['Owners', (node.parentRefs || []).map((p) => `${p.kind}/${p.name}`).join(', ')],
      ]));
    } else if (tab === 'live') {
      replace(body, h('pre', { class: 'code', tabindex: 0, 'aria-label': 'Live manifest' }, await liveText()));
    } else if (tab === 'desired' || tab === 'diff') {
      const entry = managed;
      if (tab === 'desired') {
        const target = parseJson(entry.targetState);
        replace(body, target ? h('pre', { class: 'code', tabindex: 0, 'aria-label': 'Desired manifest' }, toYaml(target)) : h('p', { class: 'empty' }, 'Git does not have this resource (it would be pruned).'));
      } else {
        const [before, after] = diffSides(entry);
        const output = h('div');
        const mode = (m) => { replace(output, diffView(before, after, m)); localStorage.setItem('tiphys.diffMode', m); };
        const current = localStorage.getItem('tiphys.diffMode') || 'unified';
        const toggle = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Diff layout' },
          [['unified', 'Unified'], ['split', 'Side by side']].map(([m, label]) => h('button', {
            type: 'button', 'aria-pressed': String(current === m),
            onclick: (e) => { toggle.querySelectorAll('button').forEach((b) => b.setAttribute('aria-pressed', String(b === e.currentTarget))); mode(m); },
          }, label)));
        replace(body, toggle, output);
        mode(current);
      }
    } else if (tab === 'events') {
      const events = await get(`/api/v1/applications/${enc(name)}/events${query({ resourceName: node.name, resourceNamespace: node.namespace, resourceUID: node.uid })}`);
      replace(body, eventsTable(events.items || []));
    }
  } catch (e) {
    replace(body, h('p', { class: 'error', role: 'alert' }, e.message));
  }
}

export function eventsTable(items) {
  const sorted = [...items].sort((a, b) => (b.lastTimestamp || b.eventTime || '').localeCompare(a.lastTimestamp || a.eventTime || ''));
  return table('Events', ['Type', 'Reason', 'Message', 'Count', 'Last seen'],
    sorted.map((e) => [h('span', { class: e.type === 'Warning' ? 'warn-text' : '' }, e.type), e.reason, e.message, e.count || 1, time(e.lastTimestamp || e.eventTime || (e.metadata && e.metadata.creationTimestamp))]),
    { empty: 'No events.' });
}
