// A line diff (longest common subsequence, after trimming the common ends) and its two
// views: unified, and side by side.
import { h } from './dom.js';

export function diffLines(before, after) {
  const a = before.split('\n');
  const b = after.split('\n');
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length; let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
  const n = endA - start; const m = endB - start;
  const ops = [];
  for (let i = 0; i < start; i++) ops.push({ op: ' ', a: i + 1, b: i + 1, text: a[i] });
  if (n * m > 25_000_000) {
    // Too large to align: show the middle as removed then added.
    for (let i = start; i < endA; i++) ops.push({ op: '-', a: i + 1, text: a[i] });
    for (let j = start; j < endB; j++) ops.push({ op: '+', b: j + 1, text: b[j] });
  } else {
    const width = m + 1;
    const lcs = new Uint32Array((n + 1) * width);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i * width + j] = a[start + i] === b[start + j]
          ? lcs[(i + 1) * width + j + 1] + 1
          : Math.max(lcs[(i + 1) * width + j], lcs[i * width + j + 1]);
      }
    }
    let i = 0; let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[start + i] === b[start + j]) {
        ops.push({ op: ' ', a: start + i + 1, b: start + j + 1, text: a[start + i] }); i++; j++;
      } else if (j < m && (i === n || lcs[i * width + j + 1] >= lcs[(i + 1) * width + j])) {
        ops.push({ op: '+', b: start + j + 1, text: b[start + j] }); j++;
      } else {
        ops.push({ op: '-', a: start + i + 1, text: a[start + i] }); i++;
      }
    }
  }
  for (let i = endA, j = endB; i < a.length; i++, j++) ops.push({ op: ' ', a: i + 1, b: j + 1, text: a[i] });
  return ops;
}

export const changed = (ops) => ops.some((o) => o.op !== ' ');

// Unchanged runs longer than 2 × context lines are folded.
function folded(ops, context) {
  const keep = ops.map(() => false);
  ops.forEach((o, i) => {
    if (o.op === ' ') return;
    for (let k = Math.max(0, i - context); k <= Math.min(ops.length - 1, i + context); k++) keep[k] = true;
  });
  const out = [];
  let hidden = 0;
  ops.forEach((o, i) => {
    if (keep[i] || context < 0) {
      if (hidden) out.push({ fold: hidden });
      hidden = 0;
      out.push(o);
    } else hidden++;
  });
  if (hidden) out.push({ fold: hidden });
  return out;
}

const CLASS = { '+': 'add', '-': 'del', ' ': 'same' };

export function unified(ops, { context = 3 } = {}) {
  return h('pre', { class: 'diff unified', 'aria-label': 'Unified diff' },
    folded(ops, context).map((o) => (o.fold
      ? h('div', { class: 'fold' }, `⋯ ${o.fold} unchanged lines`)
      : h('div', { class: CLASS[o.op] },
        h('span', { class: 'ln', 'aria-hidden': 'true' }, o.a || ''),
        h('span', { class: 'ln', 'aria-hidden': 'true' }, o.b || ''),
        h('span', { class: 'sign' }, o.op), o.text))));
}

export function sideBySide(ops, { context = 3 } = {}) {
  const rows = [];
  const pending = { del: [], add: [] };
  const flush = () => {
    const count = Math.max(pending.del.length, pending.add.length);
    for (let k = 0; k < count; k++) rows.push([pending.del[k], pending.add[k]]);
    pending.del = []; pending.add = [];
  };
  for (const o of folded(ops, context)) {
    if (o.fold) { flush(); rows.push({ fold: o.fold }); } else if (o.op === '-') pending.del.push(o);
    else if (o.op === '+') pending.add.push(o);
    else { flush(); rows.push([o, o]); }
  }
  flush();
  const cell = (o, side) => (o
    ? [h('td', { class: 'ln', 'aria-hidden': 'true' }, side === 'a' ? o.a : o.b), h('td', { class: CLASS[o.op] }, o.text)]
    : [h('td', { class: 'ln' }), h('td', { class: 'none' })]);
  return h('div', { class: 'table-wrap' }, h('table', { class: 'diff split', 'aria-label': 'Side-by-side diff' },
    h('thead', {}, h('tr', {}, h('th', { colspan: 2, scope: 'col' }, 'Live'), h('th', { colspan: 2, scope: 'col' }, 'Desired'))),
    h('tbody', {}, rows.map((r) => (r.fold
      ? h('tr', {}, h('td', { colspan: 4, class: 'fold' }, `⋯ ${r.fold} unchanged lines`))
      : h('tr', {}, cell(r[0], 'a'), cell(r[1], 'b')))))));
}
