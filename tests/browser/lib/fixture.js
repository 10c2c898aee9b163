'use strict';
/* A real segmentd for the browser and OpenAPI tests: runs the harness's
 * sd_fixture ($SD_FIXTURE), which starts $SD_BIN on loopback with a
 * temporary database (port file), optionally loads planted data, and
 * prints "READY <port>". stop() closes its stdin: the fixture stops the
 * server (SIGTERM) and exits 0 only when every step worked. */
const { spawn } = require('node:child_process');
const readline = require('node:readline');

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run this test through ctest)`);
  return v;
}

/* Starts a fixture; data: load planted users and wait for models and a
 * drift alert; args: extra `segmentd serve` arguments; env: extra
 * environment variables of the fixture and its server (e.g.
 * SEGMENTD_API_KEYS; a server with keys cannot take --data: the fixture
 * sends none). */
function startServer({ data = false, args = [], env = {}, timeoutMs = 240000 } = {}) {
  const argv = (data ? ['--data'] : []).concat(args.length ? ['--', ...args] : []);
  const child = spawn(need('SD_FIXTURE'), argv, { stdio: ['pipe', 'pipe', 'inherit'],
    env: Object.assign({}, process.env, env) });
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve(sig ? 128 : code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('fixture: not ready in time')), timeoutMs);
    exited.then((code) => reject(new Error(`fixture exited early (status ${code})`)));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^READY (\d+)$/.exec(line);
      if (!m) return;
      clearTimeout(timer);
      const base = `http://127.0.0.1:${m[1]}`;
      resolve({
        base,
        async stop() {
          child.stdin.end();
          const code = await exited;
          if (code !== 0) throw new Error(`fixture: server stop failed (status ${code})`);
        },
        kill() { child.kill('SIGKILL'); },
      });
    });
  });
}

/* One HTTP request; the answer with its parsed JSON body (null if none). */
async function request(base, method, path, { body, headers = {}, raw } = {}) {
  const h = Object.assign({}, headers);
  let payload = raw;
  if (body !== undefined) {
    payload = JSON.stringify(body);
    if (!h['Content-Type']) h['Content-Type'] = 'application/json';
  }
  const res = await fetch(base + path, { method, headers: h, body: payload });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
  return { status: res.status, headers: res.headers, text, json };
}

/* Runs main(), prints a failure and sets the exit status. */
function run(name, main) {
  const t0 = Date.now();
  main().then(() => {
    console.log(`${name}: ok (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }, (err) => {
    console.error(`${name}: FAILED: ${err && err.stack ? err.stack : err}`);
    process.exitCode = 1;
  });
}

module.exports = { startServer, request, run };
