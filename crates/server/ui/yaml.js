// JSON values written as YAML (block style), for showing manifests and prefilling editors.

const PLAIN = /^[A-Za-z_/][\w./@:-]*( [\w./@:-]+)*$/;
const RESERVED = /^(true|false|yes|no|on|off|null|~|y|n)$/i;

function scalar(s) {
  if (typeof s !== 'string') return JSON.stringify(s);
  if (s === '') return "''";
  if (PLAIN.test(s) && !RESERVED.test(s) && !/^[-?:,[\]{}#&*!|>'"%@`]/.test(s) && !/: |#/.test(s)) return s;
  if (/^[0-9.+-]/.test(s) && PLAIN.test(`x${s}`) && Number.isNaN(Number(s)) && !/^[-+.]/.test(s)) return s;
  return JSON.stringify(s);
}

function key(k) {
  return PLAIN.test(k) && !RESERVED.test(k) ? k : JSON.stringify(k);
}

function lines(value, indent) {
  const pad = ' '.repeat(indent);
  if (Array.isArray(value)) {
    if (!value.length) return null;
    const out = [];
    for (const item of value) {
      const inner = block(item, indent + 2);
      if (inner === null) out.push(`${pad}- ${inline(item, indent + 2)}`);
      else out.push(`${pad}- ${inner.slice(indent + 2)}`);
    }
    return out.join('\n');
  }
  const entries = Object.entries(value);
  if (!entries.length) return null;
  return entries.map(([k, v]) => {
    const inner = block(v, Array.isArray(v) ? indent : indent + 2);
    return inner === null ? `${pad}${key(k)}: ${inline(v, indent + 2)}` : `${pad}${key(k)}:\n${inner}`;
  }).join('\n');
}

// A multi-line block for objects and arrays with content, else null.
function block(value, indent) {
  if (value && typeof value === 'object') return lines(value, indent);
  return null;
}

function inline(value, indent) {
  if (Array.isArray(value)) return '[]';
  if (value && typeof value === 'object') return '{}';
  if (typeof value === 'string' && value.includes('\n')) {
    const pad = ' '.repeat(indent);
    const chomp = value.endsWith('\n') ? '' : '-';
    const body = value.replace(/\n$/, '').split('\n').map((l) => (l ? pad + l : '')).join('\n');
    if (!/^\s/.test(value)) return `|${chomp}\n${body}`;
  }
  return scalar(value === undefined ? null : value);
}

export function toYaml(value) {
  if (value === null || typeof value !== 'object') return `${inline(value, 0)}\n`;
  const text = lines(value, 0);
  return text === null ? `${inline(value, 0)}\n` : `${text}\n`;
}

// The same value with every object's keys in order, so two objects that differ only in key
// order print alike (as Go's YAML does, which Argo CD's diffs are read against).
export function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys(value[k])]));
  }
  return value;
}
