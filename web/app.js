/* segmentd dashboard: polls the JSON API and draws spaces, clusters, the
 * 2-D map, drift checks and alerts. No dependencies; every value from the
 * server is inserted as text (never as HTML). */
'use strict';

const POLL_MS = 5000;
const KEY_ITEM = 'segmentd.api_key';
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b',
  '#e377c2', '#17becf', '#bcbd22', '#393b79', '#ad494a', '#637939'];
const SVG_NS = 'http://www.w3.org/2000/svg';
const state = { space: null, spaces: [], editing: false, timer: null };

const $ = (sel) => document.querySelector(sel);
const color = (id) => (id === null || id === undefined ? '#b0b5bf' : PALETTE[id % PALETTE.length]);
const pct = (x) => (x * 100).toFixed(1) + '%';
const num = (x, d) => (x === null || x === undefined ? '—' : Number(x).toFixed(d));

/* fetch with the API key of this tab (sessionStorage) as a Bearer token;
 * resolves to the parsed JSON, rejects with a readable Error. */
async function api(path, opts = {}) {
  const headers = Object.assign({ Accept: 'application/json' }, opts.headers || {});
  const key = sessionStorage.getItem(KEY_ITEM);
  if (key) headers.Authorization = 'Bearer ' + key;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method: opts.method || 'GET', headers, body: opts.body,
    cache: 'no-store', credentials: 'omit' });
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) {
    const msg = body && body.error ? body.error.message : res.statusText;
    const err = new Error(`${opts.method || 'GET'} ${path}: ${res.status} ${msg}`);
    err.status = res.status;
    throw err;
  }
  return body;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function showError(err) {
  const p = $('#error');
  if (!err) { p.hidden = true; p.textContent = ''; return; }
  let msg = err.message;
  if (err.status === 401) msg += ' — enter an API key above';
  if (err.status === 403) msg += ' — this key lacks the scope (rename needs admin)';
  p.textContent = msg;
  p.hidden = false;
}

function renderSpaces() {
  const box = $('#spaces');
  box.replaceChildren(...state.spaces.map((s) => {
    const b = el('button', { class: 'space', type: 'button', 'data-space': s.name,
      'aria-pressed': String(s.name === state.space) },
      el('b', {}, s.name),
      `${s.entity} · ${s.points} points · ${s.assigned} assigned`, el('br'),
      s.model_version ? `model v${s.model_version} · ${s.algorithm} · k=${s.k}` : 'no model yet');
    b.addEventListener('click', () => { state.space = s.name; refresh(); });
    return b;
  }));
}

function labelCell(space, c) {
  const td = el('td', { class: 'label' }, el('span', { class: 'swatch' }), c.label);
  td.firstChild.style.background = color(c.id);
  if (c.label_source === 'manual') td.append(el('span', { class: 'muted' }, ' (manual)'));
  const btn = el('button', { class: 'link rename', type: 'button', 'data-cluster': c.id }, 'rename');
  btn.addEventListener('click', () => editLabel(td, space, c));
  td.append(btn);
  return td;
}

function editLabel(td, space, c) {
  state.editing = true;
  const input = el('input', { type: 'text', maxlength: '200', 'aria-label': 'new label' });
  input.value = c.label;
  const form = el('form', { class: 'label-edit' }, input, el('button', { type: 'submit' }, 'save'),
    el('button', { type: 'button', class: 'link' }, 'cancel'));
  form.lastChild.addEventListener('click', () => { state.editing = false; refresh(); });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api(`/v1/spaces/${encodeURIComponent(space)}/clusters/${c.id}`,
        { method: 'PATCH', body: JSON.stringify({ label: input.value }) });
      showError(null);
    } catch (err) { showError(err); }
    state.editing = false;
    refresh();
  });
  td.replaceChildren(form);
  input.focus();
}

function renderClusters(list) {
  $('#clusters-meta').textContent = `${list.space} · model v${list.model_version} · ${list.clusters.length} clusters`;
  const rows = list.clusters.map((c) => el('tr', { 'data-cluster': c.id },
    el('td', { class: 'num' }, c.id), labelCell(list.space, c),
    el('td', { class: 'num' }, c.size), el('td', { class: 'num' }, pct(c.share)),
    el('td', { class: 'num' }, num(c.stability, 2)), el('td', { class: 'num' }, num(c.cohesion, 3)),
    el('td', {}, (c.top_terms || c.top_features || []).join(', ')),
    el('td', { class: 'reps' }, c.representatives.slice(0, 3)
      .map((r) => (r.text === null ? r.id : r.text)).join(' · '))));
  $('#clusters tbody').replaceChildren(...rows);
}

/* Scales the map's coordinates into the 400 x 400 view box. */
function mapScale(map) {
  const xs = map.points.map((p) => p.x).concat(map.centroids.map((c) => c.x));
  const ys = map.points.map((p) => p.y).concat(map.centroids.map((c) => c.y));
  const lo = [Math.min(...xs), Math.min(...ys)], hi = [Math.max(...xs), Math.max(...ys)];
  const span = Math.max(hi[0] - lo[0], hi[1] - lo[1]) || 1;
  return (x, y) => [12 + ((x - lo[0]) / span) * 376, 388 - ((y - lo[1]) / span) * 376];
}

function renderMap(map) {
  const box = $('#map');
  const ex = map.axes_explained.map((v) => pct(v)).join(' / ');
  $('#map-meta').textContent = `${map.points.length} points · axes explain ${ex}`;
  if (!map.points.length && !map.centroids.length) { box.replaceChildren(); return; }
  const at = mapScale(map);
  const dots = map.points.map((p) => {
    const [x, y] = at(p.x, p.y);
    const c = svg('circle', { class: 'pt', cx: x.toFixed(1), cy: y.toFixed(1), r: 2.5,
      fill: color(p.cluster), 'fill-opacity': 0.75, 'data-cluster': p.cluster === null ? '' : p.cluster });
    c.append(svg('title', {}));
    c.firstChild.textContent = `${p.id} → ${p.cluster === null ? 'no cluster' : 'cluster ' + p.cluster}`;
    return c;
  });
  const cents = map.centroids.flatMap((c) => {
    const [x, y] = at(c.x, c.y);
    const right = x > 300;
    const t = svg('text', { x: (right ? x - 8 : x + 8).toFixed(1), y: (y + 3).toFixed(1),
      'text-anchor': right ? 'end' : 'start' });
    t.textContent = c.label;
    return [svg('circle', { class: 'centroid', cx: x.toFixed(1), cy: y.toFixed(1), r: 6,
      fill: color(c.id) }), t];
  });
  box.replaceChildren(...dots, ...cents);
}

function renderDrift(drift) {
  const badge = $('#drift-status');
  badge.textContent = `drift: ${drift.status} (${drift.open_alerts} open)`;
  badge.className = 'badge ' + drift.status;
  const rows = drift.spaces.flatMap((s) => (s.checks.length ? s.checks : [null]).map((c) => (c
    ? el('tr', {}, el('td', {}, s.space), el('td', {}, c.kind), el('td', {}, c.method),
      el('td', { class: 'num' }, c.cluster === undefined ? '' : c.cluster),
      el('td', { class: 'num' }, num(c.value, 4)), el('td', { class: 'num' }, num(c.threshold, 4)),
      el('td', { class: c.drifted ? 'drifted' : '' },
        !c.evaluated ? 'waiting' : c.drifted ? `drifted (${c.severity})` : 'ok'),
      el('td', {}, c.message))
    : el('tr', {}, el('td', {}, s.space), el('td', { colspan: '7', class: 'muted' },
      s.checked_at_ms === null ? 'not checked since the start' : 'no checks (no model)')))));
  $('#drift tbody').replaceChildren(...rows);
  $('#baselines').replaceChildren(...drift.spaces.filter((s) => s.baseline).map((s) => {
    const b = s.baseline;
    const pinned = b.pinned_at ? `, pinned ${b.pinned_at}${b.pinned_by ? ` by ${b.pinned_by}` : ''}` : '';
    return el('li', { 'data-space': s.space },
      `${s.space} baseline: ${b.source}, ${b.points} points${b.complete ? '' : ' (collecting)'}${pinned}`);
  }));
}

function renderAlerts(list) {
  const items = list.alerts.map((a) => el('li', { class: `${a.severity}${a.cleared_at ? ' cleared' : ''}` },
    el('b', {}, `${a.severity} · ${a.space} · ${a.kind}`),
    el('span', { class: 'muted' }, ` ${a.created_at}${a.cleared_at ? ' · cleared ' + a.cleared_at : ' · open'}`),
    el('br'), a.message));
  if (!items.length) items.push(el('li', { class: 'muted' }, 'no alerts'));
  $('#alerts').replaceChildren(...items);
  const times = list.alerts.map((a) => Date.parse(a.created_at));
  const lo = Math.min(...times), span = Math.max(...times) - lo || 1;
  $('#timeline').replaceChildren(svg('line', { x1: 8, y1: 20, x2: 392, y2: 20, stroke: '#ccd1da' }),
    ...list.alerts.map((a, i) => svg('circle', { class: 'alert-dot', cy: 20, r: 5,
      cx: (times.length === 1 ? 200 : 8 + ((times[i] - lo) / span) * 384).toFixed(1),
      fill: a.severity === 'critical' ? '#c62828' : a.severity === 'warning' ? '#b26a00' : '#59606e' })));
}

async function refreshSpace() {
  if (!state.space) return;
  const s = encodeURIComponent(state.space);
  const [clusters, map] = await Promise.all([api(`/v1/spaces/${s}/clusters`),
    api(`/v1/spaces/${s}/map?limit=2000`)]);
  if (!state.editing) renderClusters(clusters);
  renderMap(map);
}

async function refresh() {
  clearTimeout(state.timer);
  if (document.hidden) { /* a background tab does not poll */
    state.timer = setTimeout(refresh, POLL_MS);
    return;
  }
  try {
    const [spaces, drift, alerts] = await Promise.all([api('/v1/spaces'), api('/v1/drift'),
      api('/v1/alerts?limit=50')]);
    state.spaces = spaces.spaces;
    if (!state.spaces.some((s) => s.name === state.space)) {
      const trained = state.spaces.find((s) => s.model_version > 0);
      state.space = (trained || state.spaces[0] || {}).name || null;
    }
    renderSpaces();
    renderDrift(drift);
    renderAlerts(alerts);
    await refreshSpace();
    $('#updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    document.body.dataset.loaded = 'true';
    showError(null);
  } catch (err) {
    showError(err);
  }
  state.timer = setTimeout(refresh, POLL_MS);
}

function setupKey() {
  const input = $('#api-key');
  input.value = sessionStorage.getItem(KEY_ITEM) || '';
  $('#key-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (input.value) sessionStorage.setItem(KEY_ITEM, input.value);
    else sessionStorage.removeItem(KEY_ITEM);
    refresh();
  });
  $('#key-clear').addEventListener('click', () => {
    sessionStorage.removeItem(KEY_ITEM);
    input.value = '';
    refresh();
  });
}

document.addEventListener('DOMContentLoaded', () => { setupKey(); refresh(); });
