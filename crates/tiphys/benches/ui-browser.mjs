// The web UI's speed in headless Chromium, for benches/server.rs: with N apps, the list's
// first meaningful paint (a fresh browser context each time: cold HTTP cache), a filter
// change, and an app's resource tree with 1,000 resources — folded, then fully expanded. The
// peer, measured in the same page: fetching and parsing the full `GET /api/v1/applications`,
// what a UI that filters in the browser must do before it can paint anything.
//
// env: URL, TOKEN (an admin session), PLAYWRIGHT, CHROMIUM, BIG_APP. Prints one JSON line.
import { pathToFileURL } from 'node:url';

const { chromium } = await import(pathToFileURL(process.env.PLAYWRIGHT).href);
const { URL: url, TOKEN: token, BIG_APP: big } = process.env;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
async function fresh() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.addCookies([{ name: 'argocd.token', value: token, url }]);
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
  return { context, page };
}
// Milliseconds from the navigation's start until `selector` is in the page.
async function paint(page, path, selector) {
  await page.goto(`${url}${path}`, { waitUntil: 'commit' });
  return page.waitForFunction((s) => document.querySelector(s) && performance.now(), selector, { polling: 'raf' }).then((h) => h.jsonValue());
}
// Milliseconds from `act` in the page until `target`'s children next change, painted.
function change(page, target, act) {
  return page.evaluate(([t, a]) => new Promise((resolve) => {
    const el = document.querySelector(t);
    // Resolved after the frame that shows the change is painted.
    const obs = new MutationObserver(() => {
      obs.disconnect();
      requestAnimationFrame(() => setTimeout(() => resolve(performance.now() - start)));
    });
    obs.observe(el, { childList: true });
    const start = performance.now();
    document.querySelector(a).click();
  }), [target, act]);
}

const result = { firstPaint: [], peer: [], filter: [], treeFolded: [], treeExpanded: [], expandedNodes: 0 };
for (let i = 0; i < 5; i++) {
  const { context, page } = await fresh();
  result.firstPaint.push(await paint(page, '/applications', 'article.tile'));
  result.peer.push(await page.evaluate(async () => {
    const t = performance.now();
    const list = await (await fetch('/api/v1/applications')).json();
    if (!list.items.length) throw new Error('no apps');
    return performance.now() - t;
  }));
  for (const value of ['Degraded', 'Degraded', 'OutOfSync', 'OutOfSync']) {
    const facet = value === 'Degraded' ? 'health' : 'sync';
    result.filter.push(await change(page, '.results', `input[name="${facet}"][data-value="${value}"]`));
  }
  result.treeFolded.push(await paint(page, `/applications/argocd/${big}`, '.node.grouped'));
  result.treeExpanded.push(await change(page, '.tree-scroll', '.node.grouped'));
  result.expandedNodes = await page.locator('.node[data-kind="ConfigMap"]').count();
  await context.close();
}
await browser.close();
console.log(JSON.stringify({
  firstPaint: median(result.firstPaint), peer: median(result.peer), filter: median(result.filter),
  treeFolded: median(result.treeFolded), treeExpanded: median(result.treeExpanded), expandedNodes: result.expandedNodes,
}));
