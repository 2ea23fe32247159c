// Modal dialogs on the native <dialog> element: focus moves in and back, Escape closes, and
// the rest of the page is inert while one is open.
import { h, toast } from './dom.js';
import { api, enc } from './api.js';

// Show a dialog with `body` and an OK button labelled `action`; `onSubmit` runs on OK and
// the dialog closes when it resolves (an error is shown in the dialog instead).
export function dialog({ title, body, action = 'OK', danger = false, onSubmit, wide = false }) {
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const ok = h('button', { type: 'submit', class: danger ? 'danger' : 'primary' }, action);
  const el = h('dialog', { class: wide ? 'wide' : '', 'aria-labelledby': 'dialog-title' });
  const close = () => { el.close(); el.remove(); };
  const form = h('form', {
    method: 'dialog',
    onsubmit: async (e) => {
      e.preventDefault();
      ok.disabled = true;
      error.hidden = true;
      try {
        await onSubmit();
        close();
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
        ok.disabled = false;
      }
    },
  },
  h('h2', { id: 'dialog-title' }, title),
  h('div', { class: 'dialog-body' }, body),
  error,
  h('div', { class: 'dialog-actions' },
    h('button', { type: 'button', onclick: close }, 'Cancel'), ok));
  el.append(form);
  el.addEventListener('cancel', () => el.remove());
  document.body.append(el);
  el.showModal();
  return el;
}

export function checkbox(label, { checked = false, name, hint } = {}) {
  const input = h('input', { type: 'checkbox', checked, name });
  const el = h('label', { class: 'check', title: hint }, input, ' ', label);
  el.input = input;
  return el;
}

let counter = 0;
export function field(label, input, hint) {
  const id = input.id || `field-${++counter}`;
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('small', { class: 'muted' }, hint) : null);
}

const SYNC_OPTIONS = [
  ['Validate=false', 'Skip schema validation'],
  ['CreateNamespace=true', 'Auto-create namespace'],
  ['PruneLast=true', 'Prune last'],
  ['ApplyOutOfSyncOnly=true', 'Apply out of sync only'],
  ['RespectIgnoreDifferences=true', 'Respect ignore differences'],
  ['ServerSideApply=true', 'Server-side apply'],
  ['Replace=true', 'Replace'],
];

const key = (r) => `${r.group || ''}/${r.kind}/${r.namespace || ''}/${r.name}`;

// The sync dialog: revision, prune, dry run, force, sync options, retry and which resources.
export function syncDialog(app, onDone) {
  const resources = (app.status && app.status.resources) || [];
  const policyOptions = (app.spec.syncPolicy && app.spec.syncPolicy.syncOptions) || [];
  const revision = h('input', { value: (app.spec.source && app.spec.source.targetRevision) || 'HEAD', name: 'revision' });
  const prune = checkbox('Prune', { name: 'prune', hint: 'Delete live resources Git no longer has' });
  const dryRun = checkbox('Dry run', { name: 'dryRun' });
  const force = checkbox('Force', { name: 'force', hint: 'Delete and re-create resources that cannot be patched' });
  const options = SYNC_OPTIONS.map(([opt, label]) => [opt, checkbox(label, { checked: policyOptions.includes(opt), name: opt })]);
  const propagation = h('select', { name: 'prunePropagationPolicy' },
    ['foreground', 'background', 'orphan'].map((p) => h('option', { value: p }, p)));
  const retry = checkbox('Retry', { name: 'retry' });
  const retryLimit = h('input', { type: 'number', min: 1, value: 2, name: 'retryLimit', class: 'short' });
  const boxes = resources.map((r) => {
    const box = checkbox(`${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name}`, { checked: true, name: key(r) });
    box.classList.add(r.status === 'OutOfSync' ? 'outofsync' : 'insync');
    return [r, box];
  });
  const setAll = (pick) => boxes.forEach(([r, b]) => { b.input.checked = pick(r); });
  const body = [
    field('Revision', revision),
    h('fieldset', {}, h('legend', {}, 'Options'), prune, dryRun, force, options.map(([, b]) => b),
      field('Prune propagation policy', propagation), h('div', { class: 'inline' }, retry, ' limit ', retryLimit)),
    resources.length ? h('fieldset', { class: 'resources' }, h('legend', {}, `Resources (${resources.length})`),
      h('div', { class: 'inline' }, 'Select: ',
        h('button', { type: 'button', class: 'link', onclick: () => setAll(() => true) }, 'all'),
        h('button', { type: 'button', class: 'link', onclick: () => setAll((r) => r.status === 'OutOfSync') }, 'out of sync'),
        h('button', { type: 'button', class: 'link', onclick: () => setAll(() => false) }, 'none')),
      h('div', { class: 'resource-checks' }, boxes.map(([, b]) => b))) : null,
  ];
  return dialog({
    title: `Sync ${app.metadata.name}`,
    action: 'Synchronize',
    wide: true,
    body,
    onSubmit: async () => {
      const syncOptions = options.filter(([, b]) => b.input.checked).map(([o]) => o);
      if (propagation.value !== 'foreground') syncOptions.push(`PrunePropagationPolicy=${propagation.value}`);
      const chosen = boxes.filter(([, b]) => b.input.checked).map(([r]) => r);
      if (resources.length && !chosen.length) throw new Error('Choose at least one resource.');
      const request = {
        revision: revision.value,
        prune: prune.input.checked,
        dryRun: dryRun.input.checked,
        syncOptions: { items: syncOptions },
      };
      if (force.input.checked) request.strategy = { hook: { force: true } };
      if (chosen.length !== resources.length) {
        request.resources = chosen.map((r) => ({ group: r.group || '', kind: r.kind, name: r.name, namespace: r.namespace || '' }));
      }
      if (retry.input.checked) request.retryStrategy = { limit: Number(retryLimit.value) || 2 };
      await api('POST', `/api/v1/applications/${enc(app.metadata.name)}/sync`, request);
      toast(dryRun.input.checked ? 'Dry run started' : 'Sync started');
      if (onDone) onDone();
    },
  });
}

// Deleting an app: type its name, choose what happens to its resources.
export function deleteDialog(app, onDone) {
  const name = app.metadata.name;
  const typed = h('input', { name: 'confirm', autocomplete: 'off', placeholder: name });
  const policy = h('select', { name: 'propagation' },
    h('option', { value: 'foreground' }, 'Foreground: delete the resources, then the app'),
    h('option', { value: 'background' }, 'Background: delete the app, the resources after'),
    h('option', { value: 'non-cascading' }, 'Non-cascading: keep the resources'));
  return dialog({
    title: `Delete ${name}?`,
    action: 'Delete',
    danger: true,
    body: [field('Propagation policy', policy), field(`Type "${name}" to confirm`, typed)],
    onSubmit: async () => {
      if (typed.value !== name) throw new Error(`Type "${name}" to confirm.`);
      const q = policy.value === 'non-cascading' ? 'cascade=false' : `cascade=true&propagationPolicy=${policy.value}`;
      await api('DELETE', `/api/v1/applications/${enc(name)}?${q}`);
      toast(`Deleting ${name}`);
      if (onDone) onDone();
    },
  });
}

export function confirmDialog(title, text, action, run, { danger = false } = {}) {
  return dialog({ title, body: h('p', {}, text), action, danger, onSubmit: run });
}

// A YAML editor whose text goes to `path` as the request body (the server reads YAML).
export function yamlDialog({ title, action, text, submit }) {
  const editor = h('textarea', { class: 'code', rows: 24, spellcheck: 'false', 'aria-label': `${title} (YAML)` });
  editor.value = text;
  return dialog({ title, action, wide: true, body: editor, onSubmit: () => submit(editor.value) });
}
