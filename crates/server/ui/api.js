// The REST API, as every other client calls it: same paths, same RBAC. The session is the
// HttpOnly cookie the server set at login; the page never sees or stores a token.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.error)) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
}

let onUnauthenticated = () => {};
export function whenLoggedOut(fn) { onUnauthenticated = fn; }

export async function api(method, path, body, { contentType = 'application/json' } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = contentType;
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : {}; } catch { parsed = { message: text }; }
  if (response.status === 401 && !path.startsWith('/api/v1/session')) onUnauthenticated();
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

export const get = (path) => api('GET', path);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else if (v !== undefined && v !== null && v !== '') q.append(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;

// Server-sent events: `onData` gets each message's JSON (Argo's streams wrap it in
// `result`). The browser reconnects by itself; `close()` ends it.
export function stream(path, onData) {
  const source = new EventSource(path, { withCredentials: true });
  source.onmessage = (e) => {
    try {
      const data = JSON.parse(e.data);
      onData(data.result !== undefined ? data.result : data);
    } catch { /* a keep-alive or a broken line: nothing to show */ }
  };
  return { close: () => source.close() };
}

// What the user may do, as the server decides it (`can-i`), asked once per page view.
const answers = new Map();
export function canI(resource, action, object) {
  const key = `${resource}/${action}/${object}`;
  if (!answers.has(key)) {
    answers.set(key, get(`/api/v1/account/can-i/${enc(resource)}/${enc(action)}/${object.split('/').map(enc).join('/')}`)
      .then((r) => r.value === 'yes').catch(() => false));
  }
  return answers.get(key);
}
export function forgetPermissions() { answers.clear(); }
