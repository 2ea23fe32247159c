// The web UI in a real browser: headless Chromium (Debian's) driven by Playwright, against
// `tiphys up --demo` started by tests/ui.rs. Each step does what a person would and waits for
// what they would see; a step that does not see it within its deadline fails the run.
//
// env: URL, ADMIN_PASSWORD, KUBECONFIG, KUBECTL, DEMO_REPO, SCREENSHOTS, PLAYWRIGHT (the
// package's index.mjs), CHROMIUM, OIDC_ISSUER, SECRET_VALUE (a Secret's value that must never
// reach the browser).
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const { chromium } = await import(pathToFileURL(process.env.PLAYWRIGHT).href);
const { URL: url, ADMIN_PASSWORD: adminPassword, SCREENSHOTS: shots, SECRET_VALUE: secretValue } = process.env;
const DEADLINE = 90_000;
mkdirSync(shots, { recursive: true });

const kubectl = (...args) => execFileSync(process.env.KUBECTL, args, { env: process.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const git = (...args) => execFileSync('git', ['-C', process.env.DEMO_REPO, '-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { encoding: 'utf8' });
function step(name) { console.log(`step: ${name}`); }
function check(ok, message) { if (!ok) throw new Error(`check failed: ${message}`); }
async function until(what, fn, deadline = DEADLINE) {
  const end = Date.now() + deadline;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e.message; }
    if (Date.now() > end) throw new Error(`waited ${deadline} ms for ${what}; last: ${last}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const failures = [];
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
page.setDefaultTimeout(DEADLINE);
page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
page.on('console', (m) => { if (m.type() === 'error' && !/status of 40[13]/.test(m.text())) console.log(`console: ${m.text()}`); });
// Every answer the page gets, checked for the Secret's value (streams are followed elsewhere).
const leaks = [];
page.on('response', async (r) => {
  const type = r.headers()['content-type'] || '';
  if (type.includes('event-stream')) return;
  try {
    const body = await r.text();
    if (secretValue && (body.includes(secretValue) || body.includes(Buffer.from(secretValue).toString('base64')))) leaks.push(r.url());
  } catch { /* a navigation away cancelled the body */ }
});

async function login(user, password) {
  await page.goto(`${url}/applications`);
  await page.waitForURL(/\/login/);
  await page.fill('#username', user);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.waitForURL(/\/applications/);
  await page.locator('.top .username', { hasText: user }).waitFor();
}
async function logout() {
  await page.click('text=Log out');
  await page.waitForURL(/\/login/);
}
const headerSync = () => page.locator('.app-header .card').nth(1).locator('.badge').first().innerText();
const screenshot = (name) => page.screenshot({ path: `${shots}/${name}.png` });

try {
  step('log in as admin; the seed app is Synced and Healthy');
  await page.goto(`${url}/`);
  await page.waitForURL(/\/login/);
  await screenshot('login');
  await login('admin', adminPassword);
  const tile = page.locator('article.tile[data-app="payment-service"]');
  await until('payment-service Synced and Healthy', async () => {
    const text = await tile.innerText();
    return text.includes('Synced') && text.includes('Healthy') && text;
  });
  await screenshot('applications-tiles');

  step('set up a read-only account through the page (its cookie, its origin)');
  const changed = await page.evaluate(async ([pw]) => (await fetch('/api/v1/account/password', {
    method: 'PUT', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'viewer', currentPassword: pw, newPassword: 'viewer-pass-1' }),
  })).status, [adminPassword]);
  check(changed === 200, `setting viewer's password answered ${changed}`);

  step('filters, search and the table view');
  await page.fill('input[type=search]', 'orders');
  await page.locator('article.tile[data-app="orders"]').waitFor();
  await until('only orders listed', async () => (await page.locator('article.tile').count()) === 1);
  check((await page.locator('.counts').innerText()).includes('1 of 2'), 'counts show 1 of 2');
  await page.fill('input[type=search]', '');
  await page.check('input[name="project"][data-value="production"]');
  await until('only production apps', async () => (await page.locator('article.tile').count()) === 1 && (await page.locator('article.tile[data-app="payment-service"]').count()) === 1);
  check(new URL(page.url()).searchParams.getAll('project').includes('production'), 'the filter is in the URL (a deep link)');
  await page.click('button:text("Table")');
  await page.locator('table.apps tr[data-app="payment-service"]').waitFor();
  await screenshot('applications-table');
  await page.click('button:text("Clear filters")');
  await page.click('button:text("Tiles")');

  step('open the seed app: Deployment -> ReplicaSet -> Pods');
  await page.click('article.tile[data-app="payment-service"] .tile-link');
  await page.waitForURL(/\/applications\/argocd\/payment-service/);
  await page.locator('.node[data-kind="Deployment"]').waitFor();
  await page.locator('.node[data-kind="ReplicaSet"]').waitFor();
  await until('3 Pods in the tree', async () => (await page.locator('.node[data-kind="Pod"]').count()) === 3);
  await screenshot('application-tree');

  step('scale the Deployment with kubectl: the UI shows OutOfSync, then self-heal puts it back');
  await page.evaluate(() => {
    window.syncSeen = [];
    const record = () => {
      const badge = document.querySelectorAll('.app-header .card')[1]?.querySelector('.badge');
      if (badge && window.syncSeen.at(-1) !== badge.textContent) window.syncSeen.push(badge.textContent);
    };
    new MutationObserver(record).observe(document.querySelector('.app-header'), { childList: true, subtree: true, characterData: true });
    record();
  });
  kubectl('-n', 'payments', 'scale', 'deployment/payment-service', '--replicas=5');
  await until('the UI to show OutOfSync', async () => (await page.evaluate(() => window.syncSeen)).some((s) => s.includes('OutOfSync')));
  await until('self-heal back to Synced with 3 replicas', async () => (await headerSync()).includes('Synced') && !(await headerSync()).includes('OutOf')
    && kubectl('-n', 'payments', 'get', 'deployment/payment-service', '-o', 'jsonpath={.spec.replicas}') === '3');
  await until('3 Pods again', async () => (await page.locator('.node[data-kind="Pod"]').count()) === 3);

  step('the incident: pause auto-sync for 2h with a reason, scale by hand, the team sees it, resume heals');
  await page.click('.actions button:text-is("Pause auto-sync")');
  await page.selectOption('dialog[open] select', '2h');
  await page.fill('dialog[open] input', 'incident 4711: scaled by hand');
  await page.click('dialog[open] button[type=submit]');
  await page.locator('.paused-note', { hasText: 'incident 4711' }).waitFor();
  kubectl('-n', 'payments', 'scale', 'deployment/payment-service', '--replicas=6');
  await until('OutOfSync shown while paused', async () => (await headerSync()).includes('OutOfSync'));
  await until('6 Pods in the tree', async () => (await page.locator('.node[data-kind="Pod"]').count()) === 6);
  check(kubectl('-n', 'payments', 'get', 'deployment/payment-service', '-o', 'jsonpath={.spec.replicas}') === '6', 'the paused app is not healed');
  await screenshot('application-paused');
  await page.goto(`${url}/applications?search=payment`);
  await page.locator('article.tile[data-app="payment-service"] .badge.paused').waitFor();
  await page.click('article.tile[data-app="payment-service"] .tile-link');
  await page.click('.actions button:text-is("Resume auto-sync")');
  await until('healed after the resume', async () => (await headerSync()).includes('Synced') && !(await headerSync()).includes('OutOf')
    && kubectl('-n', 'payments', 'get', 'deployment/payment-service', '-o', 'jsonpath={.spec.replicas}') === '3');
  check(await page.locator('.paused-note').count() === 0, 'the pause note is gone');

  step('a resource panel: live manifest, desired manifest, diff');
  await page.click('.node[data-kind="Deployment"]');
  await page.locator('.resource-panel h2', { hasText: 'payment-service' }).waitFor();
  await page.click('#rtab-live');
  await page.locator('pre[aria-label="Live manifest"]', { hasText: 'kind: Deployment' }).waitFor();
  await page.click('#rtab-desired');
  await page.locator('pre[aria-label="Desired manifest"]', { hasText: 'replicas: 3' }).waitFor();
  check(page.url().includes('node=') && page.url().includes('resourceTab=desired'), 'the panel has a deep link');
  await page.keyboard.press('Escape');

  step('the manual app: sync from the dialog');
  await page.goto(`${url}/applications/argocd/orders`);
  await until('orders OutOfSync (never synced)', async () => (await headerSync()).includes('OutOfSync'));
  await page.click('.actions button:text-is("Sync")');
  await page.locator('dialog[open]').waitFor();
  await screenshot('sync-dialog');
  await page.click('dialog[open] button[type=submit]');
  await until('orders Synced', async () => (await headerSync()).includes('Synced') && !(await headerSync()).includes('OutOf'));
  kubectl('-n', 'orders', 'get', 'service/order-service');

  step('the Secret is shown, its value is not');
  await page.locator('.node[data-kind="Secret"]').waitFor();
  await page.click('.node[data-kind="Secret"]');
  await page.click('#rtab-live');
  await page.locator('pre[aria-label="Live manifest"]', { hasText: '++++++++' }).waitFor();
  await page.click('#rtab-diff');
  await page.locator('#resource-body').getByText(/No differences|Live/).first().waitFor();
  await page.click('.resource-panel .close');

  step('remove the Service in Git; refresh; sync with prune from the dialog');
  git('rm', '-q', 'apps/order-service/base/service.yaml');
  execFileSync('sed', ['-i', '/service.yaml/d', `${process.env.DEMO_REPO}/apps/order-service/base/kustomization.yaml`]);
  git('commit', '-qam', 'Drop the order Service');
  await page.click('.actions button:text-is("Refresh")');
  await until('the Service requires pruning', async () => (await page.locator('.node[data-kind="Service"]').innerText()).includes('requires pruning'));
  await page.click('button[role=tab]:text("Diff")');
  await page.locator('.diff-item h3', { hasText: 'Service' }).waitFor();
  await screenshot('application-diff');
  await page.click('.actions button:text-is("Sync")');
  await page.check('dialog[open] input[name="prune"]');
  await page.click('dialog[open] button[type=submit]');
  await until('the Service pruned', async () => {
    try { kubectl('-n', 'orders', 'get', 'service/order-service'); return false; } catch { return true; }
  });
  await until('orders Synced again', async () => (await headerSync()).includes('Synced') && !(await headerSync()).includes('OutOf'));

  step('history and rollback to the first deployment');
  await page.click('button[role=tab]:text("History and rollback")');
  await until('two deployments in history', async () => (await page.locator('table[aria-label="Deployment history"] tbody tr').count()) === 2);
  await screenshot('application-history');
  await page.click('table[aria-label="Deployment history"] tbody tr:last-child button:text("Rollback")');
  await page.click('dialog[open] button[type=submit]');
  await until('the Service back after the rollback', async () => {
    try { kubectl('-n', 'orders', 'get', 'service/order-service'); return true; } catch { return false; }
  });

  step('a phone-sized screen');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${url}/applications`);
  await page.locator('article.tile[data-app="payment-service"]').waitFor();
  await screenshot('phone-applications');
  await page.setViewportSize({ width: 1280, height: 800 });

  step('settings: projects and repositories');
  await page.goto(`${url}/settings/projects/production`);
  await page.locator('h2', { hasText: 'Project production' }).waitFor();
  await screenshot('settings-project');
  await page.goto(`${url}/settings/repos`);
  await page.locator('button:text("Connect repository")').waitFor();

  step('keyboard: Tab reaches the first tile link, Enter opens it');
  await page.goto(`${url}/applications?search=payment`);
  await page.locator('article.tile[data-app="payment-service"]').waitFor();
  let focused = '';
  for (let i = 0; i < 40 && !focused.includes('payment-service'); i++) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => (document.activeElement.classList.contains('tile-link') ? document.activeElement.textContent : ''));
  }
  check(focused === 'payment-service', 'a tile link is reachable by keyboard');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/applications\/argocd\/payment-service/);
  await logout();

  step('a read-only user sees Sync disabled, and the server refuses it anyway');
  await login('viewer', 'viewer-pass-1');
  await page.goto(`${url}/applications/argocd/payment-service`);
  const sync = page.locator('.actions button:text-is("Sync")');
  await sync.waitFor();
  check(await sync.isDisabled(), 'the Sync button is disabled for a read-only user');
  check(await page.locator('.actions button:text("Delete")').isDisabled(), 'Delete is disabled too');
  check(await page.locator('.actions button:text-is("Pause auto-sync")').isDisabled(), 'so is Pause');
  const pauseRefused = await page.evaluate(async () => (await fetch('/api/v1/applications/payment-service/pause', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"duration":"1h"}' })).status);
  check(pauseRefused === 403, `the server answered a read-only pause with ${pauseRefused}`);
  const refused = await page.evaluate(async () => (await fetch('/api/v1/applications/payment-service/sync', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })).status);
  check(refused === 403, `the server answered a read-only sync with ${refused}`);
  await screenshot('read-only-user');
  await logout();

  step('log in through the identity provider');
  await context.addCookies([{ name: 'test_user', value: 'alice', url: process.env.OIDC_ISSUER }]);
  await page.goto(`${url}/login`);
  await page.click('a:text("Log in via Test IdP")');
  await page.waitForURL(/\/applications/);
  await page.locator('.top .username', { hasText: 'alice' }).waitFor();
  check((await page.locator('.top .groups').innerText()).includes('payments'), 'the groups from the provider are shown');
  await page.locator('article.tile[data-app="payment-service"]').waitFor();
  check((await page.locator('article.tile[data-app="orders"]').count()) === 0, 'alice sees only what her role allows');
  await logout();

  step('an ApplicationSet: its generated apps, and a preview of a change');
  await login('admin', adminPassword);
  execFileSync(process.env.KUBECTL, ['apply', '-f', '-'], {
    env: process.env,
    input: `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: services
  namespace: argocd
spec:
  generators:
  - list:
      elements:
      - svc: inventory-service
  template:
    metadata:
      name: '{{svc}}-staging'
    spec:
      project: default
      source:
        repoURL: file://${process.env.DEMO_REPO}
        targetRevision: HEAD
        path: 'apps/{{svc}}/overlays/staging'
      destination:
        server: https://kubernetes.default.svc
        namespace: '{{svc}}'
`,
  });
  await page.goto(`${url}/applicationsets`);
  await page.click('a:text-is("services")');
  await until('the generated app listed', async () => {
    await page.reload();
    return (await page.locator('table[aria-label="Generated applications"]').innerText()).includes('inventory-service-staging');
  });
  const editor = page.locator('textarea[aria-label^="ApplicationSet to preview"]');
  const spec = await editor.inputValue();
  check(/- svc: inventory-service/.test(spec), `the preview editor holds the spec:\n${spec}`);
  await editor.fill(spec.replace(/(\n\s*)- svc: inventory-service/, '$1- svc: inventory-service$1- svc: order-service'));
  await page.click('button:text-is("Preview")');
  await page.locator('table[aria-label="Preview"]', { hasText: 'order-service-staging' }).waitFor();
  check((await page.locator('table[aria-label="Preview"] tr', { hasText: 'order-service-staging' }).innerText()).includes('new'), 'the new app is marked new');
  check((await page.locator('table[aria-label="Preview"] tr', { hasText: 'inventory-service-staging' }).innerText()).includes('exists'), 'the existing app is marked so');
  await screenshot('applicationset-preview');
  kubectl('-n', 'argocd', 'get', 'application', 'inventory-service-staging');
  let written = true;
  try { kubectl('-n', 'argocd', 'get', 'application', 'order-service-staging'); } catch { written = false; }
  check(!written, 'the preview wrote nothing');

  check(!leaks.length, `the Secret's value reached the browser in: ${leaks.join(', ')}`);
} catch (e) {
  await screenshot('failure').catch(() => {});
  failures.push(e.stack || String(e));
}
await browser.close();
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
console.log('all browser checks passed');
