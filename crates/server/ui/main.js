// The page's shell: who is logged in, the navigation, and which view a path shows. Every view
// has its own URL (filters, tabs and the selected resource live in the query), so any screen
// can be bookmarked or linked.
import { h, replace, toast } from './dom.js';
import { get, whenLoggedOut, forgetPermissions } from './api.js';
import { appsView } from './apps.js';
import { appView } from './app.js';
import { appsetsView, appsetView } from './appsets.js';
import { settingsView, userView } from './settings.js';
import { loginView } from './login.js';

const session = { user: null, settings: {} };
let cleanup = null;

const routes = [
  [/^\/login$/, () => loginView],
  [/^\/(applications)?$/, () => appsView],
  [/^\/applications\/([^/]+)\/([^/]+)$/, (m) => (main, ctx) => appView(main, { ...ctx, name: decodeURIComponent(m[2]) })],
  [/^\/applications\/([^/]+)$/, (m) => (main, ctx) => appView(main, { ...ctx, name: decodeURIComponent(m[1]) })],
  [/^\/applicationsets$/, () => appsetsView],
  [/^\/applicationsets\/([^/]+)$/, (m) => (main, ctx) => appsetView(main, { ...ctx, name: decodeURIComponent(m[1]) })],
  [/^\/settings(?:\/([^/]+))?(?:\/([^/]+))?$/, (m) => (main, ctx) => settingsView(main, { ...ctx, section: m[1], item: m[2] && decodeURIComponent(m[2]) })],
  [/^\/user-info$/, () => userView],
];

export function navigate(path, { replace: replacing = false } = {}) {
  if (path === location.pathname + location.search) return;
  history[replacing ? 'replaceState' : 'pushState']({}, '', path);
  render();
}

// The query of the current URL changed by a view (filters, tabs) without a new history entry
// for each keystroke.
export function setQuery(params, { push = false } = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else if (v !== undefined && v !== null && v !== '' && v !== false) q.append(k, v);
  }
  const s = q.toString();
  const url = location.pathname + (s ? `?${s}` : '');
  history[push ? 'pushState' : 'replaceState']({}, '', url);
}

function nav() {
  const top = document.getElementById('top');
  if (!session.user || !session.user.loggedIn) {
    replace(top, h('a', { href: '/', class: 'brand' }, 'Tiphys'));
    return;
  }
  const here = location.pathname;
  const link = (href, text) => h('a', { href, 'aria-current': here.startsWith(href) ? 'page' : undefined }, text);
  const groups = session.user.groups || [];
  replace(top,
    h('a', { href: '/applications', class: 'brand', 'aria-label': 'Tiphys home' }, h('img', { src: '/assets/favicon.svg', alt: '', width: 22, height: 22 }), ' Tiphys'),
    h('nav', { 'aria-label': 'Main' }, link('/applications', 'Applications'), link('/applicationsets', 'ApplicationSets'), link('/settings', 'Settings')),
    h('div', { class: 'user' },
      h('a', { href: '/user-info', class: 'who', title: groups.length ? `Groups: ${groups.join(', ')}` : 'No groups' },
        h('span', { class: 'username' }, session.user.username),
        groups.length ? h('span', { class: 'groups' }, ` (${groups.join(', ')})`) : ''),
      h('button', { type: 'button', class: 'link', onclick: logout }, 'Log out')));
  if (session.settings.uiBannerContent) {
    top.append(h('div', { class: 'banner', role: 'note' }, session.settings.uiBannerContent));
  }
}

// The server ends the session everywhere and sends the browser on: back here, or through
// the identity provider's logout after a single sign-on.
function logout() {
  session.user = { loggedIn: false };
  forgetPermissions();
  location.assign('/auth/logout');
}

export async function refreshSession() {
  session.user = await get('/api/v1/session/userinfo').catch(() => ({ loggedIn: false }));
  forgetPermissions();
}

async function render() {
  if (cleanup) { try { cleanup(); } catch { /* a view's own cleanup failing must not stop the next */ } }
  cleanup = null;
  const main = document.getElementById('main');
  const path = location.pathname.replace(/\/+$/, '') || '/';
  if ((!session.user || !session.user.loggedIn) && path !== '/login') {
    navigate(`/login?return_url=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
    return;
  }
  nav();
  const ctx = { session, query: new URLSearchParams(location.search) };
  for (const [pattern, view] of routes) {
    const m = path.match(pattern);
    if (!m) continue;
    replace(main, h('p', { class: 'loading', role: 'status' }, 'Loading…'));
    try {
      cleanup = await view(m)(main, ctx);
    } catch (e) {
      replace(main, h('div', { class: 'error', role: 'alert' }, h('h1', {}, 'Something went wrong'), h('p', {}, e.message)));
    }
    return;
  }
  replace(main, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '/applications' }, 'Back to the applications')));
}

// Links inside the page change the view without reloading it.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/auth/')) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', render);
whenLoggedOut(() => {
  if (location.pathname !== '/login') {
    session.user = { loggedIn: false };
    toast('Your session has ended; please log in again.', 'error');
    render();
  }
});

(async () => {
  const settings = get('/api/v1/settings').catch(() => ({}));
  await refreshSession();
  session.settings = await settings;
  await render();
})();
