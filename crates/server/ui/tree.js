// The resource tree, left to right as Argo CD draws it: the application, its managed
// resources, what they own. Siblings of one kind beyond a handful fold into one group node
// (expand it to see them), so an app with a thousand Pods stays readable and fast. Nodes are
// absolutely placed buttons; the edges are one SVG path.
import { h } from './dom.js';

const NODE_W = 230; const NODE_H = 52; const GAP_X = 70; const GAP_Y = 14;
export const GROUP_AT = 8;

const ABBREVIATIONS = {
  Application: 'app', Deployment: 'deploy', ReplicaSet: 'rs', Pod: 'pod', Service: 'svc', ConfigMap: 'cm',
  Secret: 'secret', StatefulSet: 'sts', DaemonSet: 'ds', Job: 'job', CronJob: 'cj', Ingress: 'ing',
  Namespace: 'ns', ServiceAccount: 'sa', PersistentVolumeClaim: 'pvc', EndpointSlice: 'eps', Endpoints: 'ep',
  ControllerRevision: 'rev', HorizontalPodAutoscaler: 'hpa', Role: 'role', RoleBinding: 'rb',
  ClusterRole: 'crole', ClusterRoleBinding: 'crb', CustomResourceDefinition: 'crd', NetworkPolicy: 'netpol',
};
const abbreviation = (kind) => ABBREVIATIONS[kind] || kind.replace(/[a-z]/g, '').toLowerCase() || kind.slice(0, 4);

export const nodeKey = (n) => `${n.group || ''}/${n.kind}/${n.namespace || ''}/${n.name}`;

const SYMBOL = { Healthy: '♥', Progressing: '◔', Degraded: '✖', Suspended: '‖', Missing: '?', Unknown: '?' };

// Managed resources (with their sync status) and owned objects as one list of nodes.
export function treeNodes(app, tree) {
  const sync = new Map(((app.status && app.status.resources) || []).map((r) => [nodeKey(r), r]));
  const nodes = new Map();
  for (const r of (app.status && app.status.resources) || []) {
    nodes.set(nodeKey(r), { ...r, parentRefs: [], managed: true, syncStatus: r.status, requiresPruning: r.requiresPruning });
  }
  for (const n of (tree && tree.nodes) || []) {
    const key = nodeKey(n);
    const managed = sync.get(key);
    nodes.set(key, { ...n, managed: !!managed, syncStatus: managed && managed.status, requiresPruning: managed && managed.requiresPruning, health: n.health || (managed && managed.health) });
  }
  return [...nodes.values()];
}

// The visible tree: children per parent, with large same-kind sibling sets folded.
function shape(app, nodes, expanded) {
  const root = { key: '::app', kind: 'Application', name: app.metadata.name, root: true, health: app.status && app.status.health, syncStatus: app.status && app.status.sync && app.status.sync.status, children: [] };
  const byKey = new Map(nodes.map((n) => [nodeKey(n), { ...n, key: nodeKey(n), children: [] }]));
  for (const n of byKey.values()) {
    const parent = (n.parentRefs || []).map((p) => byKey.get(nodeKey(p))).find(Boolean);
    (parent || root).children.push(n);
  }
  const fold = (node) => {
    node.children.sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind.localeCompare(b.kind)));
    const kinds = new Map();
    node.children.forEach((c) => kinds.set(c.kind, (kinds.get(c.kind) || 0) + 1));
    const out = [];
    for (const [kind, count] of kinds) {
      const members = node.children.filter((c) => c.kind === kind);
      const groupKey = `${node.key}|${kind}`;
      if (count > GROUP_AT && !expanded.has(groupKey)) {
        const health = {};
        members.forEach((m) => { const s = (m.health && m.health.status) || 'Unknown'; health[s] = (health[s] || 0) + 1; });
        out.push({ key: groupKey, folded: true, kind, count, healthCounts: health, outOfSync: members.filter((m) => m.syncStatus === 'OutOfSync').length, children: [] });
      } else {
        members.forEach((m) => { fold(m); out.push(m); });
      }
    }
    node.children = out;
  };
  fold(root);
  return root;
}

function place(root) {
  let row = 0;
  const placed = [];
  const edges = [];
  const visit = (node, depth) => {
    if (!node.children.length) {
      node.y = row++;
    } else {
      node.children.forEach((c) => visit(c, depth + 1));
      node.y = (node.children[0].y + node.children[node.children.length - 1].y) / 2;
      node.children.forEach((c) => edges.push([node, c]));
    }
    node.x = depth;
    placed.push(node);
  };
  visit(root, 0);
  return { placed, edges, rows: row, depth: Math.max(...placed.map((n) => n.x)) + 1 };
}

const left = (n) => n.x * (NODE_W + GAP_X);
const top = (n) => n.y * (NODE_H + GAP_Y);

function nodeElement(n, { onSelect, onExpand, selected, filter }) {
  const health = n.folded ? null : (n.health && n.health.status);
  const info = n.folded
    ? Object.entries(n.healthCounts).map(([s, c]) => `${SYMBOL[s] || '?'} ${c}`).join('  ') + (n.outOfSync ? `  ↻ ${n.outOfSync}` : '')
    : [(n.info || []).map((i) => i.value).join(' · '), n.requiresPruning ? 'requires pruning' : ''].filter(Boolean).join(' · ');
  const matches = !filter || `${n.kind} ${n.name || ''}`.toLowerCase().includes(filter);
  const label = n.folded
    ? `${n.count} ${n.kind} objects, grouped; expand`
    : `${n.kind} ${n.name}${health ? `, ${health}` : ''}${n.syncStatus ? `, ${n.syncStatus}` : ''}`;
  const el = h('button', {
    type: 'button',
    class: ['node', n.root && 'root', n.folded && 'grouped', health && `health-${health}`, n.syncStatus && `sync-${n.syncStatus}`, selected === n.key && 'selected', !matches && 'dim'],
    'aria-label': label,
    'data-kind': n.kind,
    'data-name': n.name || '',
    onclick: () => (n.folded ? onExpand(n.key) : onSelect(n)),
    style: { left: `${left(n)}px`, top: `${top(n)}px` },
  },
  h('span', { class: 'kind-icon', 'aria-hidden': 'true' }, abbreviation(n.kind)),
  h('span', { class: 'node-text' },
    h('span', { class: 'node-name' }, n.folded ? `${n.kind} × ${n.count}` : n.name),
    h('span', { class: 'node-kind' }, n.folded ? 'click to expand' : n.kind, info ? ` · ${info}` : '')),
  h('span', { class: 'node-badges', 'aria-hidden': 'true' },
    health ? h('span', { class: `sym health-${health}`, title: health }, SYMBOL[health] || '?') : null,
    n.syncStatus === 'OutOfSync' ? h('span', { class: 'sym sync-OutOfSync', title: 'OutOfSync' }, '↻') : null,
    n.syncStatus === 'Synced' ? h('span', { class: 'sym sync-Synced', title: 'Synced' }, '✔') : null));
  return el;
}

// Draw the tree into `container`; returns how many nodes were drawn.
export function drawTree(container, app, nodes, options) {
  const root = shape(app, nodes, options.expanded);
  const { placed, edges, rows, depth } = place(root);
  const width = depth * (NODE_W + GAP_X);
  const height = Math.max(rows, 1) * (NODE_H + GAP_Y);
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  svg.setAttribute('aria-hidden', 'true');
  svg.classList.add('edges');
  const path = document.createElementNS(NS, 'path');
  path.setAttribute('d', edges.map(([a, b]) => {
    const x1 = left(a) + NODE_W; const y1 = top(a) + NODE_H / 2;
    const x2 = left(b); const y2 = top(b) + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    return `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
  }).join(' '));
  svg.append(path);
  const canvas = h('div', { class: 'tree-canvas', role: 'group', 'aria-label': 'Resource tree', style: { width: `${width}px`, height: `${height}px` } }, svg);
  const fragment = document.createDocumentFragment();
  placed.forEach((n) => fragment.append(nodeElement(n, options)));
  canvas.append(fragment);
  container.replaceChildren(canvas);
  return placed.length;
}
