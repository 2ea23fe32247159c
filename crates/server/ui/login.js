// Logging in: a local account's password, or the identity provider (SSO) when argocd-cm
// configures one.
import { h } from './dom.js';
import { api } from './api.js';
import { navigate, refreshSession } from './main.js';

function returnUrl(query) {
  const target = query.get('return_url') || '/applications';
  // Only paths on this server: a login link must not send anyone elsewhere.
  return target.startsWith('/') && !target.startsWith('//') ? target : '/applications';
}

export async function loginView(main, { session, query }) {
  if (session.user && session.user.loggedIn) {
    navigate(returnUrl(query), { replace: true });
    return null;
  }
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const username = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', {
    class: 'login-form',
    onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      error.hidden = true;
      try {
        await api('POST', '/api/v1/session', { username: username.value, password: password.value });
        await refreshSession();
        navigate(returnUrl(query), { replace: true });
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
        submit.disabled = false;
        password.select();
      }
    },
  },
  h('label', { for: 'username' }, 'Username'), username,
  h('label', { for: 'password' }, 'Password'), password,
  error, submit);
  const sso = session.settings.oidcConfig;
  main.replaceChildren(h('section', { class: 'login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Tiphys'),
    h('p', { class: 'muted' }, 'GitOps continuous delivery'),
    session.settings.userLoginsDisabled ? null : form,
    sso ? h('div', { class: 'sso' },
      session.settings.userLoginsDisabled ? null : h('p', { class: 'or' }, 'or'),
      h('a', { class: 'button', href: `/auth/login?return_url=${encodeURIComponent(returnUrl(query))}` },
        `Log in via ${sso.name || 'SSO'}`)) : null));
  return null;
}
