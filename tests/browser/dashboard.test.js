'use strict';
/* The dashboard in headless Chromium against a real segmentd with planted
 * data: the page shows what the JSON API says (spaces, clusters, map
 * points, drift status, alerts), a rename in the page shows up through the
 * API, the page's fetches carry the API key entered in it, and no script
 * or CSP error happens. Saves a screenshot to $SD_SCREENSHOT. */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { chromium } = require('playwright-core');
const { startServer, request, run } = require('./lib/fixture');

const CHROMIUM = process.env.SD_CHROMIUM || '/usr/bin/chromium';
const FIXTURE_ARGS = ['--train-min', '200', '--drift-interval', '0', '--drift-sample', '200', '--drift-baseline', '200',
  '--drift-min-points', '50', '--emerging-min-size', '15'];

async function getJson(base, path) {
  const r = await request(base, 'GET', path);
  assert.equal(r.status, 200, `GET ${path}: ${r.text}`);
  return r.json;
}

/* The page's static answers: types, ETag revalidation, security headers. */
async function checkHeaders(base) {
  const page = await request(base, 'GET', '/');
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /^text\/html; charset=utf-8$/);
  const csp = page.headers.get('content-security-policy');
  assert.match(csp, /default-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(page.headers.get('cache-control'), 'no-cache');
  const etag = page.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]{20}"$/);
  const again = await request(base, 'GET', '/', { headers: { 'If-None-Match': etag } });
  assert.equal(again.status, 304);
  assert.equal(again.text, '');
  const js = await request(base, 'GET', '/assets/app.js');
  assert.match(js.headers.get('content-type'), /^text\/javascript/);
  const css = await request(base, 'GET', '/assets/app.css');
  assert.match(css.headers.get('content-type'), /^text\/css/);
  assert.notEqual(css.headers.get('etag'), js.headers.get('etag'));
}

/* What the page shows equals what the API answers. */
async function checkShown(page, base) {
  const spaces = (await getJson(base, '/v1/spaces')).spaces;
  assert.deepEqual(await page.$$eval('#spaces .space', (b) => b.map((x) => x.dataset.space)),
    spaces.map((s) => s.name));
  const space = await page.$eval('#spaces .space[aria-pressed="true"]', (b) => b.dataset.space);
  const clusters = (await getJson(base, `/v1/spaces/${space}/clusters`)).clusters;
  assert.ok(clusters.length >= 2, `the fixture's ${space} model has ${clusters.length} clusters`);
  const rows = await page.$$eval('#clusters tbody tr', (trs) => trs.map((tr) => ({
    id: Number(tr.dataset.cluster), label: tr.querySelector('td.label').firstChild.nextSibling.textContent,
    size: Number(tr.children[2].textContent) })));
  assert.deepEqual(rows, clusters.map((c) => ({ id: c.id, label: c.label, size: c.size })));
  const map = await getJson(base, `/v1/spaces/${space}/map?limit=2000`);
  assert.ok(map.points.length > 0);
  const dots = await page.$$eval('#map circle.pt', (cs) => cs.map((c) => ({
    fill: c.getAttribute('fill'), x: Number(c.getAttribute('cx')), y: Number(c.getAttribute('cy')) })));
  assert.equal(dots.length, map.points.length);
  assert.ok(new Set(dots.map((d) => d.fill)).size >= 2, 'points are coloured by cluster');
  assert.ok(dots.every((d) => d.x >= 0 && d.x <= 400 && d.y >= 0 && d.y <= 400), 'points inside the map');
  assert.ok(new Set(dots.map((d) => `${d.x},${d.y}`)).size > 1, 'points are spread out');
  assert.equal(await page.$$eval('#map circle.centroid', (cs) => cs.length), map.centroids.length);
  const drift = await getJson(base, '/v1/drift');
  assert.match(await page.textContent('#drift-status'), new RegExp(`drift: ${drift.status} `));
  for (const s of drift.spaces.filter((x) => x.baseline)) {
    const line = await page.textContent(`#baselines li[data-space="${s.space}"]`);
    /* the points may move between the page's poll and this read */
    assert.match(line, new RegExp(`^${s.space} baseline: ${s.baseline.source}, \\d+ points`),
      `baseline line of ${s.space}: ${line}`);
  }
  const alerts = (await getJson(base, '/v1/alerts?limit=50')).alerts;
  assert.ok(alerts.length >= 1, 'the fixture raised a drift alert');
  assert.equal(await page.$$eval('#alerts li', (l) => l.length), alerts.length);
  assert.equal(await page.$$eval('#timeline circle.alert-dot', (l) => l.length), alerts.length);
  assert.match(await page.textContent('#alerts li'), new RegExp(alerts[0].kind));
  return { space, cluster: clusters[0] };
}

/* checkShown, again after the page's next poll while the server's data
 * still moves (a model's re-assignment may be finishing). */
async function checkShownEventually(page, base) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await checkShown(page, base);
    } catch (err) {
      if (attempt === 3 || !(err instanceof assert.AssertionError)) throw err;
      console.log(`page and API differ (attempt ${attempt}), waiting for the next poll: ${err.message}`);
      const before = await page.textContent('#updated');
      await page.waitForFunction((b) => document.querySelector('#updated').textContent !== b, before,
        { timeout: 20000 });
    }
  }
}

/* Renames a cluster in the page; the API then has the manual label. */
async function checkRename(page, base, space, cluster) {
  const label = `checkout fans ${Date.now() % 10000}`;
  await page.click(`#clusters tr[data-cluster="${cluster.id}"] button.rename`);
  await page.fill(`#clusters tr[data-cluster="${cluster.id}"] input`, label);
  await page.click(`#clusters tr[data-cluster="${cluster.id}"] button[type="submit"]`);
  await page.waitForFunction(([id, l]) => {
    const td = document.querySelector(`#clusters tr[data-cluster="${id}"] td.label`);
    return td && td.textContent.includes(l) && td.textContent.includes('(manual)');
  }, [cluster.id, label]);
  const after = await getJson(base, `/v1/spaces/${space}/clusters/${cluster.id}`);
  assert.equal(after.label, label);
  assert.equal(after.label_source, 'manual');
}

/* Authorization headers of the API calls the page makes while `action`
 * runs, up to its next GET /v1/alerts. */
async function authOfRequests(page, action) {
  const seen = [];
  const onReq = (req) => {
    if (!req.url().includes('/v1/')) return;
    seen.push(req.allHeaders().then((h) => h.authorization, (e) => `(no headers: ${e.message})`));
  };
  page.on('request', onReq);
  const polled = page.waitForRequest((r) => r.url().includes('/v1/alerts'));
  await action();
  await polled;
  page.off('request', onReq);
  return Promise.all(seen);
}

/* The key typed into the page goes out as a Bearer token on API calls
 * (sessionStorage), and is dropped again by "Forget". */
async function checkApiKey(page) {
  await page.fill('#api-key', 'sk-dashboard-test');
  await page.click('#key-form button[type="submit"]');
  await page.waitForFunction(() => sessionStorage.getItem('segmentd.api_key') === 'sk-dashboard-test');
  const withKey = await authOfRequests(page, () => page.click('#key-form button[type="submit"]'));
  assert.ok(withKey.length > 0 && withKey.every((a) => a === 'Bearer sk-dashboard-test'), String(withKey));
  await page.click('#key-clear');
  await page.waitForFunction(() => sessionStorage.getItem('segmentd.api_key') === null);
  assert.equal(await page.inputValue('#api-key'), '');
  const without = await authOfRequests(page, () => page.click('#key-form button[type="submit"]'));
  assert.ok(without.length > 0 && without.every((a) => a === undefined), String(without));
}

async function main() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (scripts/deps.sh)`);
  }
  const srv = await startServer({ data: true, args: FIXTURE_ARGS });
  let browser;
  try {
    await checkHeaders(srv.base);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const problems = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
    await page.goto(srv.base + '/');
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 30000 });
    const { space, cluster } = await checkShownEventually(page, srv.base);
    await checkRename(page, srv.base, space, cluster);
    await checkApiKey(page);
    const shot = process.env.SD_SCREENSHOT || 'dashboard.png';
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(fs.statSync(shot).size > 10000, 'screenshot written');
    console.log(`screenshot: ${shot}`);
    assert.deepEqual(problems, []);
  } finally {
    if (browser) await browser.close();
    await srv.stop();
  }
}

run('dashboard', main);
