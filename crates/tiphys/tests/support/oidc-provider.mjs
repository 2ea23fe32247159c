// A real OpenID Connect provider for the SSO tests (npm `oidc-provider`), on 127.0.0.1.
//
// env: OIDC_PROVIDER_MODULE (the package's lib/index.js), PORT, REDIRECT_URI, PORT_FILE.
// Users (any password): alice (groups payments, developers), bob (groups developers).
// The "login page" is automatic: the user is the one the `test_user` cookie names — a test
// stands in for a person typing their name — and consent is given.
import { pathToFileURL } from 'node:url';
import { writeFileSync, renameSync } from 'node:fs';

const { default: Provider } = await import(pathToFileURL(process.env.OIDC_PROVIDER_MODULE).href);
const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const users = {
  alice: { email: 'alice@example.com', groups: ['payments', 'developers'] },
  bob: { email: 'bob@example.com', groups: ['developers'] },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'tiphys',
    client_secret: 'oidc-client-secret',
    redirect_uris: [process.env.REDIRECT_URI],
    // Where the provider's logout may send the browser back to: the server itself.
    post_logout_redirect_uris: [process.env.REDIRECT_URI.replace(/\/auth\/callback$/, '')],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: { openid: ['sub'], email: ['email'], groups: ['groups'], profile: ['name'] },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['tiphys-test-cookie-key'] },
  findAccount: async (ctx, id) => users[id] && {
    accountId: id,
    claims: async () => ({ sub: id, email: users[id].email, name: id, groups: users[id].groups }),
  },
});
provider.proxy = false;

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const user = ctx.cookies.get('test_user') || 'alice';
  if (!users[user]) {
    ctx.status = 403;
    ctx.body = `no such user ${user}`;
    return;
  }
  const grant = new provider.Grant({ accountId: user, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: user }, consent: { grantId } }, { mergeWithLastSubmission: false });
  ctx.respond = false;
});

provider.listen(port, '127.0.0.1', () => {
  writeFileSync(`${process.env.PORT_FILE}.tmp`, String(port));
  renameSync(`${process.env.PORT_FILE}.tmp`, process.env.PORT_FILE);
});
