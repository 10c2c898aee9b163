'use strict';
/* Live answers of a real segmentd checked against api/openapi.yaml:
 * - the spec and src/http_router.c list the same routes (implemented
 *   operations = routed ones; planned ones are not routed), and each
 *   route's scope column is the operation's `security`;
 * - a representative set of requests for every route, success and error
 *   (400/404/405/409/413/415/422/429/503), each answer's status,
 *   Content-Type, required headers and body validated with Ajv against the
 *   documented response schema, each request's query and (for 2xx) body
 *   against the operation;
 * - a server with API keys: every route without a key (401 on the scoped
 *   ones, with WWW-Authenticate) and with a key lacking its scope (403);
 * - every route answered at least one success, and each listed error
 *   status was seen. */
const assert = require('node:assert/strict');
const path = require('node:path');
const { startServer, request, run } = require('./lib/fixture');
const { Spec, routerRoutes } = require('./lib/openapi');

const ROOT = path.join(__dirname, '..', '..');
const spec = new Spec(path.join(ROOT, 'api', 'openapi.yaml'));
const routes = routerRoutes(path.join(ROOT, 'src', 'http_router.c'));
const seen = new Map(); /* "METHOD template" -> statuses */
const statuses = new Set();
let checked = 0; /* answers validated */
const norm = (p) => p.replace(/\{[^}]*\}/g, '{}');

function checkRouteTable() {
  const routed = new Set(routes.map((r) => `${r.method} ${r.pattern}`));
  const specOps = [];
  for (const [p, item] of Object.entries(spec.doc.paths)) {
    for (const m of ['get', 'post', 'put', 'patch', 'delete']) {
      if (item[m]) specOps.push({ key: `${m.toUpperCase()} ${norm(p)}`, status: item[m]['x-segmentd-status'] });
    }
  }
  for (const op of specOps) {
    assert.ok(['implemented', 'planned'].includes(op.status), `${op.key}: x-segmentd-status`);
    assert.equal(routed.has(op.key), op.status === 'implemented',
      `${op.key} is ${op.status} in the spec but ${routed.has(op.key) ? '' : 'not '}routed`);
  }
  for (const r of routed) assert.ok(specOps.some((o) => o.key === r), `${r} is routed but not in the spec`);
  assert.ok(routes.length >= 20, 'parsed the routing table');
  for (const r of routes) { /* the router's scope column = the operation's security */
    const template = spec.pathOf(r.pattern.replace(/\{\}/g, 'x'));
    const op = spec.doc.paths[template][r.method.toLowerCase()];
    const security = op.security || spec.doc.security || [];
    const scopes = security.flatMap((s) => s.bearer || []);
    assert.deepEqual(scopes, scopeOf(r) ? [scopeOf(r)] : [], `${r.method} ${r.pattern}: ${r.access} vs security`);
  }
}

/* The scope a route needs with keys set (null: open), /metrics at its
 * default --metrics-scope (read). */
function scopeOf(route) {
  return { SD_ACCESS_READ: 'read', SD_ACCESS_INGEST: 'ingest', SD_ACCESS_ADMIN: 'admin',
    SD_ACCESS_METRICS: 'read' }[route.access] || null;
}

/* One request: the status must be `want`; the answer must match the spec. */
async function call(base, method, url, want, opts = {}) {
  const what = `${method} ${url} -> ${want}`;
  const req = spec.checkRequest(method, url, opts.body, what);
  const res = await request(base, method, url, opts);
  assert.equal(res.status, want, `${what}: got ${res.status} ${res.text.slice(0, 300)}`);
  spec.checkResponse(method, url, res, what);
  checked++;
  if (req && res.status < 300) spec.checkRequestBody(req, method, opts.body, what);
  if (res.status === 405) {
    const template = spec.pathOf(new URL(url, 'http://x').pathname);
    const allow = spec.methodsOf(template).flatMap((m) => (m === 'get' ? ['GET', 'HEAD'] : [m.toUpperCase()]));
    assert.deepEqual(res.headers.get('allow').split(', ').sort(), allow.sort(), `${what}: Allow`);
  }
  const template = spec.pathOf(new URL(url, 'http://x').pathname);
  const key = `${method === 'HEAD' ? 'GET' : method} ${template ? norm(template) : url}`;
  if (!seen.has(key)) seen.set(key, new Set());
  seen.get(key).add(res.status);
  statuses.add(res.status);
  return res;
}

async function ops(base) {
  await call(base, 'GET', '/healthz', 200);
  await call(base, 'HEAD', '/healthz', 200);
  await call(base, 'GET', '/readyz', 200);
  await call(base, 'GET', '/v1/info', 200);
  await call(base, 'GET', '/metrics', 200);
  await call(base, 'POST', '/metrics', 405);
  await call(base, 'GET', '/no/such/route', 404);
  await call(base, 'OPTIONS', '/v1/spaces', 405);
  const page = await call(base, 'GET', '/', 200);
  await call(base, 'HEAD', '/', 200);
  await call(base, 'GET', '/', 304, { headers: { 'If-None-Match': page.headers.get('etag') } });
  await call(base, 'PUT', '/', 405);
  await call(base, 'GET', '/assets/app.js', 200);
  await call(base, 'GET', '/assets/app.css', 200);
  await call(base, 'GET', '/assets/missing.js', 404);
}

async function ingest(base) {
  const ev = { events: [{ event_id: 'oa-e1', user_id: 'oa-u1', type: 'checkout',
    ts: '2026-11-27T10:00:00Z', properties: { device: 'ios', price: 19.9, promo: true } }] };
  await call(base, 'POST', '/v1/events', 200, { body: ev });
  await call(base, 'POST', '/v1/events', 200, { body: ev }); /* a duplicate */
  await call(base, 'POST', '/v1/events', 400, { raw: '{"events": [', headers: { 'Content-Type': 'application/json' } });
  await call(base, 'POST', '/v1/events', 415, { raw: 'events', headers: { 'Content-Type': 'text/plain' } });
  await call(base, 'POST', '/v1/events', 422, { body: { events: [] } });
  await call(base, 'POST', '/v1/events', 422, { body: { events: [{ event_id: 'oa-e2', type: 'x' }] } });
  const big = JSON.stringify({ events: [{ event_id: 'x', user_id: 'u', type: 'x'.repeat(1100000) }] });
  await call(base, 'POST', '/v1/events', 413, { raw: big, headers: { 'Content-Type': 'application/json' } });
  await call(base, 'GET', '/v1/events', 405);
  await call(base, 'POST', '/v1/texts', 200, { body: { texts: [{ text_id: 'oa-t1', user_id: 'oa-u1',
    text: 'how do i get a refund for my card payment', ts: 1795771604805 }] } });
  await call(base, 'POST', '/v1/texts', 422, { body: { texts: [{ text_id: 'oa-t2', text: '' }] } });
}

async function users(base) {
  await call(base, 'GET', '/v1/users/du000001', 200);
  await call(base, 'GET', '/v1/users/nobody-here', 404);
  await call(base, 'GET', '/v1/users/du000001/segment', 200);
  await call(base, 'GET', '/v1/users/du000001/segment?explain=true', 200);
  await call(base, 'GET', '/v1/users/du000001/segment?explain=maybe', 400);
  await call(base, 'GET', '/v1/users/nobody-here/segment', 404);
  await call(base, 'POST', '/v1/segments/lookup', 200, { body: { user_ids: ['du000001', 'du000002', 'nobody-here'] } });
  await call(base, 'POST', '/v1/segments/lookup', 422, { body: { user_ids: 'du000001' } });
  await call(base, 'POST', '/v1/assign', 200, { body: { text: 'where is my parcel delivery' } });
  await call(base, 'POST', '/v1/assign', 422, { body: { text: 3 } });
  await call(base, 'DELETE', '/v1/users/oa-u1', 200);
  await call(base, 'DELETE', '/v1/users/oa-u1', 404);
  await call(base, 'PUT', '/v1/users/du000001', 405);
}

async function spaces(base) {
  await call(base, 'GET', '/v1/spaces', 200);
  const list = (await call(base, 'GET', '/v1/spaces/intents/clusters', 200)).json;
  await call(base, 'GET', '/v1/spaces/segments/clusters', 200);
  await call(base, 'GET', '/v1/spaces/nowhere/clusters', 404);
  const id = list.clusters[0].id;
  await call(base, 'GET', `/v1/spaces/intents/clusters/${id}`, 200);
  await call(base, 'GET', '/v1/spaces/intents/clusters/99999', 404);
  await call(base, 'GET', '/v1/spaces/intents/clusters/abc', 404);
  const page = (await call(base, 'GET', `/v1/spaces/intents/clusters/${id}/members?limit=5`, 200)).json;
  if (page.next_cursor) {
    await call(base, 'GET', `/v1/spaces/intents/clusters/${id}/members?limit=5&cursor=${encodeURIComponent(page.next_cursor)}`, 200);
  }
  await call(base, 'GET', `/v1/spaces/intents/clusters/${id}/members?limit=0`, 400);
  await call(base, 'GET', '/v1/spaces/segments/map?limit=50', 200);
  await call(base, 'GET', '/v1/spaces/intents/map', 200);
  await call(base, 'GET', '/v1/spaces/intents/map?limit=abc', 400);
  await call(base, 'PATCH', `/v1/spaces/intents/clusters/${id}`, 200, { body: { label: 'Refunds', description: 'money back' } });
  await call(base, 'PATCH', `/v1/spaces/intents/clusters/${id}`, 200, { body: { label: null } });
  await call(base, 'PATCH', `/v1/spaces/intents/clusters/${id}`, 422, { body: { label: 'x'.repeat(201) } });
  await call(base, 'PATCH', `/v1/spaces/intents/clusters/${id}`, 422, { body: {} });
  await call(base, 'PATCH', `/v1/spaces/intents/clusters/${id}`, 400, { raw: '{', headers: { 'Content-Type': 'application/json' } });
  await call(base, 'PATCH', '/v1/spaces/intents/clusters/99999', 404, { body: { label: 'x' } });
  await call(base, 'DELETE', `/v1/spaces/intents/clusters/${id}`, 405);
  await call(base, 'GET', '/v1/spaces/intents/assignments', 200);
  await call(base, 'GET', '/v1/spaces/nowhere/assignments', 404);
}

async function models(base) {
  await call(base, 'POST', '/v1/spaces/segments/recluster', 200, { body: { k: 3, wait: true } });
  const job = (await call(base, 'POST', '/v1/spaces/intents/recluster', 202, { body: { algorithm: 'kmeans', k: 4, refit_encoder: false } })).json;
  await call(base, 'POST', '/v1/spaces/intents/recluster', 422, { body: { algorithm: 'astrology' } });
  await call(base, 'POST', '/v1/spaces/nowhere/recluster', 404, { body: {} });
  for (let i = 0; i < 300; i++) { /* until it ends (a running job would slow the stop) */
    const j = (await call(base, 'GET', `/v1/jobs/${job.job_id}`, 200)).json;
    if (['done', 'failed'].includes(j.state)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await call(base, 'GET', '/v1/jobs/999999', 404);
  const ev = (await call(base, 'GET', '/v1/spaces/intents/events?limit=2', 200)).json;
  if (ev.next_cursor !== undefined && ev.next_cursor !== null) {
    await call(base, 'GET', `/v1/spaces/intents/events?since=${encodeURIComponent(ev.next_cursor)}`, 200);
  }
  await call(base, 'GET', '/v1/spaces/intents/events?since=abc', 400);
  const labels = {};
  for (let u = 0; u < 40; u++) labels[`du${String(u).padStart(6, '0')}`] = `seg-${u % 4}`;
  await call(base, 'POST', '/v1/spaces/segments/evaluate', 200, { body: { labels } });
  await call(base, 'POST', '/v1/spaces/segments/evaluate', 422, { body: { labels: [] } });
}

async function drift(base) {
  await call(base, 'GET', '/v1/drift', 200);
  await call(base, 'GET', '/v1/drift?refresh=true', 200);
  await call(base, 'GET', '/v1/drift?refresh=maybe', 400);
  const page = (await call(base, 'GET', '/v1/alerts?limit=1', 200)).json;
  assert.ok(page.alerts.length === 1, 'the fixture raised an alert');
  if (page.next_cursor) await call(base, 'GET', `/v1/alerts?limit=1&cursor=${page.next_cursor}`, 200);
  await call(base, 'GET', '/v1/alerts?since=2026-01-01T00:00:00Z', 200);
  await call(base, 'GET', '/v1/alerts?limit=0', 400);
  await call(base, 'POST', '/v1/alerts', 405);
  await driftBaseline(base);
}

/* A space's drift baseline; "next" empties it, so "current" then finds
 * too few window points (409). */
async function driftBaseline(base) {
  const url = '/v1/spaces/segments/drift/baseline';
  const b = (await call(base, 'GET', url, 200)).json;
  assert.equal(b.space, 'segments');
  await call(base, 'GET', '/v1/spaces/nowhere/drift/baseline', 404);
  await call(base, 'POST', url, 422, { body: { source: 'later' } });
  await call(base, 'POST', url, 422, { body: { source: 'next', extra: 1 } });
  await call(base, 'POST', url, 400, { raw: '{"source":', headers: { 'Content-Type': 'application/json' } });
  const pinned = (await call(base, 'POST', url, 200, { body: { source: 'next' } })).json;
  assert.equal(pinned.source, 'next');
  assert.equal(pinned.complete, false);
  await call(base, 'POST', url, 409);
  await call(base, 'POST', url, 409, { body: {} });
  await call(base, 'DELETE', url, 405);
  assert.deepEqual((await call(base, 'GET', url, 200)).json, pinned);
}

/* checkout is one of the planted generator's event types
 * (tests/integration/harness_gen.c) and ingest() sent one too. */
async function outcomes(base) {
  await call(base, 'GET', '/v1/spaces/segments/outcomes?event_type=checkout', 200);
  await call(base, 'GET', '/v1/spaces/segments/outcomes?event_type=page_view&window_days=365', 200);
  await call(base, 'GET', '/v1/spaces/segments/outcomes?event_type=search&window_days=1', 200);
  await call(base, 'GET', '/v1/spaces/segments/outcomes', 400);
  await call(base, 'GET', '/v1/spaces/segments/outcomes?event_type=', 400);
  await call(base, 'GET', '/v1/spaces/segments/outcomes?event_type=never_ingested', 400);
  await call(base, 'GET', `/v1/spaces/segments/outcomes?event_type=${'x'.repeat(257)}`, 400);
  await call(base, 'GET', '/v1/spaces/segments/outcomes?event_type=checkout&window_days=0', 400);
  await call(base, 'GET', '/v1/spaces/segments/outcomes?event_type=checkout&window_days=366', 400);
  await call(base, 'GET', '/v1/spaces/segments/outcomes?event_type=checkout&window_days=abc', 400);
  await call(base, 'POST', '/v1/spaces/segments/outcomes', 405);
}

async function experiments(base) {
  const def = { name: 'oa-promo', variants: ['control', 'treatment'], weights: [0.5, 0.5],
    stratify: 'segments', outcome: { event_type: 'checkout', window_days: 7 } };
  await call(base, 'GET', '/v1/experiments', 200); /* none yet */
  await call(base, 'POST', '/v1/experiments', 201, { body: def });
  await call(base, 'POST', '/v1/experiments', 201, { body: { name: 'oa-three', /* defaults, unstratified */
    variants: ['a', 'b', 'c'], weights: [0.2, 0.3, 0.5], stratify: 'none', outcome: { event_type: 'search' } } });
  await call(base, 'POST', '/v1/experiments', 201, { body: { name: 'oa.min_1', variants: ['off', 'on'],
    outcome: { event_type: 'wishlist' } } });
  await call(base, 'POST', '/v1/experiments', 409, { body: def });
  const bad = [
    { ...def, name: 'has space' },
    { ...def, name: 'x'.repeat(65) },
    { ...def, variants: ['control'] },
    { ...def, variants: ['a', 'a'] },
    { ...def, weights: [0.5, 0.4] },
    { ...def, weights: [1] },
    { ...def, weights: [0, 1] },
    { ...def, stratify: 'cities' },
    { ...def, outcome: undefined },
    { ...def, outcome: { event_type: 'never_ingested' } },
    { ...def, outcome: { event_type: 'checkout', window_days: 400 } },
    { ...def, outcome: { event_type: 'checkout', extra: 1 } },
    { ...def, colour: 'blue' },
  ];
  for (const [i, body] of bad.entries()) {
    await call(base, 'POST', '/v1/experiments', 422, { body: { ...body, name: body.name === def.name ? `oa-bad-${i}` : body.name } });
  }
  await call(base, 'POST', '/v1/experiments', 400, { raw: '{"name": ', headers: { 'Content-Type': 'application/json' } });
  await call(base, 'POST', '/v1/experiments', 415, { raw: 'name=x', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  await call(base, 'PUT', '/v1/experiments', 405, { body: def });
  const list = (await call(base, 'GET', '/v1/experiments', 200)).json;
  assert.deepEqual(list.experiments.map((e) => e.name), ['oa-promo', 'oa-three', 'oa.min_1'], 'the created experiments');
  await call(base, 'GET', '/v1/experiments/oa-promo', 200);
  await call(base, 'HEAD', '/v1/experiments/oa-three', 200);
  await call(base, 'GET', '/v1/experiments/nope', 404);
  await call(base, 'GET', `/v1/experiments/${'x'.repeat(65)}`, 404);
  await call(base, 'PATCH', '/v1/experiments/oa-promo', 405, { body: {} });
  /* 80 planted users (20 a segment): at least 5 a arm in some segments, so
   * the heterogeneity test has numbers; the second answer is the read path */
  for (let u = 0; u < 80; u++) {
    const id = `du${String(u).padStart(6, '0')}`;
    await call(base, 'GET', `/v1/experiments/oa-promo/assignment/${id}`, 200);
    if (u % 2 === 0) await call(base, 'GET', `/v1/experiments/oa-three/assignment/${id}`, 200);
  }
  const again = (await call(base, 'GET', '/v1/experiments/oa-promo/assignment/du000001', 200)).json;
  await call(base, 'GET', '/v1/experiments/oa-promo/assignment/nobody-here', 404);
  await call(base, 'GET', '/v1/experiments/nope/assignment/du000001', 404);
  await call(base, 'POST', '/v1/experiments/oa-promo/assignment/du000001', 405);
  await call(base, 'GET', '/v1/experiments/oa-promo/results', 200);
  await call(base, 'GET', '/v1/experiments/oa-three/results', 200);
  await call(base, 'GET', '/v1/experiments/oa.min_1/results', 200); /* nobody assigned */
  await call(base, 'GET', '/v1/experiments/nope/results', 404);
  await call(base, 'DELETE', '/v1/experiments/oa-promo', 200);
  await call(base, 'DELETE', '/v1/experiments/oa-promo', 200); /* idempotent */
  await call(base, 'DELETE', '/v1/experiments/nope', 404);
  await call(base, 'GET', '/v1/experiments/oa-promo/assignment/du000200', 409); /* new user, stopped */
  const kept = (await call(base, 'GET', '/v1/experiments/oa-promo/assignment/du000001', 200)).json;
  assert.equal(kept.variant, again.variant, 'an assigned user keeps the variant after the stop');
  await call(base, 'GET', '/v1/experiments/oa-promo/results', 200);
  await call(base, 'GET', '/v1/experiments/oa-promo', 200);
  await call(base, 'POST', '/v1/experiments', 409, { body: def }); /* stopped names stay taken */
}

/* A server with an unreachable remote embedder and a one-job writer queue:
 * 503 from assign, 429 from concurrent ingest batches. */
async function overload() {
  const srv = await startServer({ args: ['--embedder', 'openai', '--embed-url', 'http://127.0.0.1:9',
    '--embed-model', 'm', '--dim', '8', '--queue-max', '1', '--train-min', '1000000'] });
  try {
    await call(srv.base, 'POST', '/v1/assign', 503, { body: { text: 'hello' } });
    await call(srv.base, 'GET', '/v1/spaces/intents/map', 200);
    await call(srv.base, 'GET', '/v1/spaces/intents/clusters', 200);
    for (let round = 0; round < 5 && !statuses.has(429); round++) {
      const batches = Array.from({ length: 16 }, (_, b) => ({ events: Array.from({ length: 500 },
        (_, j) => ({ event_id: `ov-${round}-${b}-${j}`, user_id: `ov-u${j}`, type: 'visit' })) }));
      const answers = await Promise.all(batches.map((body) => request(srv.base, 'POST', '/v1/events', { body })));
      for (const [i, res] of answers.entries()) {
        assert.ok([200, 429].includes(res.status), `concurrent ingest: ${res.status}`);
        spec.checkResponse('POST', '/v1/events', res, `POST /v1/events (concurrent ${i}) -> ${res.status}`);
        statuses.add(res.status);
        checked++;
      }
    }
  } finally {
    await srv.stop();
  }
}

/* A server with API keys (no data: the fixture sends no key): every scoped
 * route without a key (401) and with a key lacking its scope (403); open
 * routes without one. */
async function auth() {
  const keys = { ingest: 'oa-ingest-key-5f0c2a9e71', read: 'oa-read-key-51b8aa0e42d3' };
  const srv = await startServer({ env: { SEGMENTD_API_KEYS: `${keys.ingest}:ingest,${keys.read}:read` } });
  const bearer = (k) => ({ Authorization: `Bearer ${k}` });
  try {
    for (const r of routes) {
      const url = r.pattern.replace(/\{\}/g, 'x');
      const body = ['POST', 'PATCH'].includes(r.method) ? {} : undefined;
      const scope = scopeOf(r);
      if (!scope) {
        await call(srv.base, r.method, url, r.pattern === '/assets/{}' ? 404 : 200);
        continue;
      }
      await call(srv.base, r.method, url, 401, { body });
      await call(srv.base, r.method, url, 403, { body, headers: bearer(scope === 'ingest' ? keys.read : keys.ingest) });
    }
    await call(srv.base, 'GET', '/v1/experiments', 401, { headers: bearer('not-a-key-of-this-server') });
    await call(srv.base, 'GET', '/v1/experiments', 401, { headers: { Authorization: `Basic ${keys.read}` } });
    await call(srv.base, 'GET', '/v1/experiments', 200, { headers: bearer(keys.read) });
    await call(srv.base, 'GET', '/v1/info', 200, { headers: bearer(keys.read) });
    await call(srv.base, 'POST', '/v1/events', 200, { headers: bearer(keys.ingest),
      body: { events: [{ event_id: 'au-e1', user_id: 'au-u1', type: 'checkout' }] } });
    await call(srv.base, 'GET', '/v1/spaces/segments/outcomes?event_type=checkout', 200, { headers: bearer(keys.read) });
    await call(srv.base, 'POST', '/v1/experiments', 403, { headers: bearer(keys.read),
      body: { name: 'au', variants: ['a', 'b'], outcome: { event_type: 'checkout' } } });
    const res = await call(srv.base, 'GET', '/v1/experiments', 401);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="segmentd"', 'the 401 challenge');
  } finally {
    await srv.stop();
  }
}

function checkCoverage() {
  for (const r of routes) {
    const got = seen.get(`${r.method} ${r.pattern}`);
    assert.ok(got && [...got].some((s) => s < 400), `${r.method} ${r.pattern}: no success answer checked`);
  }
  for (const s of [400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 503]) assert.ok(statuses.has(s), `no ${s} answer checked`);
  console.log(`${checked} answers validated, statuses seen: ${[...statuses].sort().join(' ')}`);
  console.log([...seen.entries()].map(([k, v]) => `${k}: ${[...v].sort().join(' ')}`).join('\n'));
}

async function main() {
  checkRouteTable();
  let t = Date.now();
  const lap = (what) => { console.log(`${what}: ${((Date.now() - t) / 1000).toFixed(1)} s`); t = Date.now(); };
  const srv = await startServer({ data: true, args: ['--train-min', '200', '--drift-interval', '0',
    '--drift-sample', '200', '--drift-baseline', '200', '--drift-min-points', '50', '--emerging-min-size', '15', '--max-body', '1048576'] });
  try {
    lap('server with planted data');
    for (const step of [ops, ingest, users, spaces, models, drift, outcomes, experiments]) {
      await step(srv.base);
      lap(step.name);
    }
  } finally {
    await srv.stop();
  }
  lap('stop');
  await overload();
  lap('overload');
  await auth();
  lap('auth');
  checkCoverage();
}

run('openapi_responses', main);
