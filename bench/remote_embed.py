#!/usr/bin/python3
"""Remote-embedder throughput of segmentd against the fake embedder.

For each fake model latency (--latencies, ms per request) and each
--embed-inflight N (--inflight), starts a fresh fake embedder
(tests/fake_embedder --dim D) and a fresh segmentd (--embedder openai,
--dim D, --embed-encoding E, --embed-batch 64, --train-min 1000000 so no
model training competes, fresh database in a temp dir), POSTs the texts to
/v1/texts in batches of 1,000 as fast as one keep-alive connection allows,
then polls GET /v1/info every 10 ms until embedder.queue.pending is 0.

  ingest texts/s   = texts / (first POST sent -> last POST answered)
  segmentd texts/s = texts / (first POST sent -> pending == 0)
  ceiling texts/s  = the same texts in the same batches of 64, POSTed
                     straight to a fresh fake embedder by N client threads
                     (one keep-alive http.client connection each, bodies
                     encoded beforehand, the same "encoding_format" as
                     segmentd asks for; replies read but not parsed): what
                     the embedder serves at that concurrency.
  max in-flight    = /_stats max_inflight of the fake during segmentd's run.

Texts: BANKING77 train + test (13,083), repeated with a "(2) " prefix, and so
on, until --texts distinct texts.

usage: bench/remote_embed.py --bin B --fake F --work DIR [--out FILE.md]
       [--texts 20000] [--batch 1000] [--embed-batch 64]
       [--inflight 1,4,16] [--latencies 0,50] [--run-timeout 60]
       [--dim 64] [--encoding float|base64]
Standard library only; run with Debian's /usr/bin/python3. Every process it
starts is written to DIR/pids and stopped by PID when it ends (the calling
shell script's trap stops them too if this process dies).
"""
import argparse
import csv
import datetime
import http.client
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
B77 = os.path.join(ROOT, "..", "shared", "data", "banking77")

PROCS = []  # every Popen this script started


def on_term(signum, _frame):
    raise SystemExit(128 + signum)


def note_pid(work, p):
    PROCS.append(p)
    with open(os.path.join(work, "pids"), "a") as f:
        f.write(f"{p.pid}\n")


def stop(p, grace=5.0):
    if p is None or p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def stop_all():
    for p in PROCS:
        stop(p)


def read_texts(n):
    base = []
    for split in ("train", "test"):
        with open(os.path.join(B77, split + ".csv"), newline="", encoding="utf-8") as f:
            base.extend(r["text"] for r in csv.DictReader(f))
    out, rnd = [], 1
    while len(out) < n:
        pre = "" if rnd == 1 else f"({rnd}) "
        out.extend(pre + t for t in base[: n - len(out)])
        rnd += 1
    return out


def wait_port(path, proc, what, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        try:
            s = open(path).read().strip()
            if s:
                return int(s)
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{what} wrote no port file in {timeout} s")


def start_fake(args, d, latency):
    os.makedirs(d, exist_ok=True)
    pf = os.path.join(d, "fake.port")
    log = open(os.path.join(d, "fake.log"), "w")
    p = subprocess.Popen([args.fake, "--port-file", pf, "--dim", str(args.dim),
                          "--delay-ms", str(latency)], stdout=log, stderr=log)
    note_pid(args.work, p)
    return p, wait_port(pf, p, "fake_embedder")


def start_segmentd(args, d, fake_port, inflight):
    pf = os.path.join(d, "segmentd.port")
    log = open(os.path.join(d, "segmentd.log"), "w")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    p = subprocess.Popen(
        [args.bin, "serve", "--listen", "127.0.0.1:0", "--db", os.path.join(d, "bench.db"),
         "--port-file", pf, "--embedder", "openai",
         "--embed-url", f"http://127.0.0.1:{fake_port}", "--embed-model", "fake",
         "--dim", str(args.dim), "--embed-encoding", args.encoding,
         "--embed-inflight", str(inflight),
         "--embed-batch", str(args.embed_batch), "--train-min", "1000000",
         "--recluster-interval", "0"],
        stdout=log, stderr=log, env=env)
    note_pid(args.work, p)
    port = wait_port(pf, p, "segmentd")
    end = time.monotonic() + 30
    while True:  # the port is bound before the service is ready
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/readyz")
            r = c.getresponse()
            r.read()
            c.close()
            if r.status == 200:
                return p, port
        except OSError:
            pass
        if p.poll() is not None or time.monotonic() > end:
            raise RuntimeError("segmentd did not become ready (see its log)")
        time.sleep(0.02)


def get_json(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise RuntimeError(f"GET {path}: HTTP {r.status}: {body[:200]!r}")
    return json.loads(body)


def run_segmentd(args, texts, latency, inflight):
    d = os.path.join(args.work, f"sd-{latency}ms-n{inflight}")
    fake = sd = None
    try:
        fake, fport = start_fake(args, d, latency)
        sd, sport = start_segmentd(args, d, fport, inflight)
        bodies = []
        for b in range(0, len(texts), args.batch):
            items = [{"text_id": f"t{i}", "text": texts[i]}
                     for i in range(b, min(b + args.batch, len(texts)))]
            bodies.append(json.dumps({"texts": items}).encode())
        conn = http.client.HTTPConnection("127.0.0.1", sport, timeout=60)
        info = http.client.HTTPConnection("127.0.0.1", sport, timeout=60)
        pending_sum = 0
        t0 = time.perf_counter()
        for body in bodies:
            conn.request("POST", "/v1/texts", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            rb = r.read()
            if r.status != 200:
                raise RuntimeError(f"POST /v1/texts: HTTP {r.status}: {rb[:300]!r}")
            pending_sum += json.loads(rb).get("pending", 0)
        t_ingest = time.perf_counter() - t0
        q = None
        polls = 0
        deadline = t0 + args.run_timeout
        while True:
            q = get_json(info, "/v1/info")["embedder"]["queue"]
            polls += 1
            if q["pending"] == 0:
                break
            if time.perf_counter() > deadline:
                break
            time.sleep(0.01)
        t_done = time.perf_counter() - t0
        drained = q["pending"] == 0
        q_at_zero = q
        time.sleep(0.3)  # counters after the last writer job's answer
        q = get_json(info, "/v1/info")["embedder"]["queue"]
        fconn = http.client.HTTPConnection("127.0.0.1", fport, timeout=10)
        fstats = get_json(fconn, "/_stats")
        res = dict(latency=latency, inflight=inflight, texts=len(texts),
                   t_ingest=t_ingest, t_done=t_done, drained=drained,
                   pending_left=q["pending"], pending_sum=pending_sum, queue=q,
                   fake=fstats, polls=polls, q_at_zero=q_at_zero)
    finally:
        stop(sd)
        stop(fake)
    log = open(os.path.join(d, "segmentd.log")).read().splitlines()
    res["log_warn"] = [l for l in log if any(w in l.lower() for w in
                                             ("warn", "error", "fail", "retry"))]
    res["log_tail"] = log[-15:]
    return res


def run_ceiling(args, texts, latency, inflight):
    d = os.path.join(args.work, f"ceil-{latency}ms-n{inflight}")
    fake = None
    try:
        fake, fport = start_fake(args, d, latency)
        # segmentd sends "encoding_format" only for base64 (float is the
        # API's default); the ceiling asks for exactly what segmentd asks for
        extra = {"encoding_format": "base64"} if args.encoding == "base64" else {}
        bodies = [json.dumps({"model": "fake", "input": texts[b:b + args.embed_batch],
                              **extra}).encode()
                  for b in range(0, len(texts), args.embed_batch)]
        nxt = [0]
        lock = threading.Lock()
        errors = []

        def worker():
            c = http.client.HTTPConnection("127.0.0.1", fport, timeout=60)
            while True:
                with lock:
                    i = nxt[0]
                    nxt[0] += 1
                if i >= len(bodies):
                    break
                try:
                    c.request("POST", "/v1/embeddings", bodies[i],
                              {"Content-Type": "application/json"})
                    r = c.getresponse()
                    r.read()
                    if r.status != 200:
                        errors.append(r.status)
                except Exception as e:  # noqa: BLE001 -- counted and reported
                    errors.append(repr(e))
                    c.close()
                    c = http.client.HTTPConnection("127.0.0.1", fport, timeout=60)
            c.close()

        threads = [threading.Thread(target=worker) for _ in range(inflight)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dt = time.perf_counter() - t0
        fstats = get_json(http.client.HTTPConnection("127.0.0.1", fport, timeout=10), "/_stats")
    finally:
        stop(fake)
    return dict(t=dt, errors=errors, fake=fstats)


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001
        return "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--fake", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out")
    ap.add_argument("--texts", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--embed-batch", type=int, default=64)
    ap.add_argument("--inflight", default="1,4,16")
    ap.add_argument("--latencies", default="0,50")
    ap.add_argument("--run-timeout", type=float, default=60.0)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--encoding", choices=("float", "base64"), default="float")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    texts = read_texts(args.texts)
    load_before = open("/proc/loadavg").read().split()[:3]
    rows, notes = [], []
    try:
        for lat in [int(x) for x in args.latencies.split(",")]:
            for n in [int(x) for x in args.inflight.split(",")]:
                s = run_segmentd(args, texts, lat, n)
                c = run_ceiling(args, texts, lat, n)
                rows.append((s, c))
                q, f = s["queue"], s["fake"]
                print(f"latency {lat} ms, in-flight {n}: ingest {s['t_ingest']:.2f} s, "
                      f"drained {s['t_done']:.2f} s (pending left {s['pending_left']}), "
                      f"segmentd requests {q['requests']} failed {q['requests_failed']} "
                      f"embedded {q['texts_embedded']}; fake requests {f['requests']} "
                      f"texts {f['texts']} max_inflight {f['max_inflight']}; "
                      f"ceiling {c['t']:.2f} s, fake max_inflight {c['fake']['max_inflight']}"
                      f"{', errors ' + str(len(c['errors'])) if c['errors'] else ''}",
                      flush=True)
                if not s["drained"]:
                    notes.append(f"latency {lat} ms, in-flight {n}: pending never reached 0 "
                                 f"within {args.run_timeout:.0f} s ({s['pending_left']} left); "
                                 f"queue {json.dumps(q)}; log tail: " + " | ".join(s["log_tail"]))
                qz = s["q_at_zero"]
                if s["drained"] and qz["texts_embedded"] != q["texts_embedded"]:
                    notes.append(f"latency {lat} ms, in-flight {n}: when /v1/info first showed "
                                 f"pending 0, texts_embedded read {qz['texts_embedded']} "
                                 f"(in_flight {qz['in_flight']}); 0.3 s later "
                                 f"{q['texts_embedded']}")
                if q["texts_embedded"] != s["texts"] or s["pending_sum"] != s["texts"]:
                    notes.append(f"latency {lat} ms, in-flight {n}: texts {s['texts']}, "
                                 f"POST replies' pending sum {s['pending_sum']}, "
                                 f"texts_embedded {q['texts_embedded']}")
                if q["requests_failed"] or s["log_warn"]:
                    notes.append(f"latency {lat} ms, in-flight {n}: {q['requests_failed']} "
                                 f"failed requests; log: " + " | ".join(s["log_warn"][:10]))
                if c["errors"]:
                    notes.append(f"ceiling latency {lat} ms, N {n}: errors {c['errors'][:5]}")
    finally:
        stop_all()

    head = ("| latency ms | in-flight | ingest texts/s | segmentd texts/s | "
            "ceiling texts/s | ratio | max in-flight at fake |")
    lines = [head, "|---|---|---|---|---|---|---|"]
    for s, c in rows:
        sd_rate = s["texts"] / s["t_done"] if s["drained"] else float("nan")
        ceil_rate = s["texts"] / c["t"]
        lines.append(f"| {s['latency']} | {s['inflight']} | {s['texts'] / s['t_ingest']:.0f} | "
                     f"{sd_rate:.0f} | {ceil_rate:.0f} | {sd_rate / ceil_rate:.2f} | "
                     f"{s['fake']['max_inflight']} |")
    table = "\n".join(lines)
    load_after = open("/proc/loadavg").read().split()[:3]
    load = (f"load average (1, 5, 15 min) {' '.join(load_before)} before the runs, "
            f"{' '.join(load_after)} after (other work on the machine competes for the CPUs)")
    print()
    print(f"segmentd remote embedding: {args.texts} texts, POST batches of {args.batch}, "
          f"--embed-batch {args.embed_batch}, --dim {args.dim}, "
          f"--embed-encoding {args.encoding}")
    print(table)
    print(load)
    for n in notes:
        print("NOTE:", n)

    if args.out:
        commit = sh(f"git -C {ROOT} rev-parse --short HEAD")
        model = sh("lscpu | grep 'Model name' | sed 's/.*: *//'")
        machine = (f"{platform.machine()}, {sh('nproc')} vCPUs, {model}, "
                   f"{platform.platform()}")
        with open(args.out, "w") as f:
            f.write(f"# Remote embedder throughput, {datetime.date.today().isoformat()}\n\n")
            f.write(f"Machine: {machine}; {load}.\n\n")
            f.write(f"Run: {datetime.datetime.now().isoformat(timespec='seconds')}, "
                    f"git commit {commit} (binaries built from the working tree at that time), "
                    f"`bench/remote_embed.sh` (Release build).\n\n")
            f.write(f"{args.texts} texts (BANKING77 train + test, repeated with a prefix), "
                    f"POSTed to /v1/texts in batches of {args.batch} over one keep-alive "
                    f"connection; segmentd `--embedder openai --dim {args.dim} "
                    f"--embed-encoding {args.encoding} --embed-batch {args.embed_batch} "
                    f"--embed-inflight N --train-min 1000000` against a fresh "
                    f"`tests/fake_embedder --dim {args.dim} --delay-ms L` per row. "
                    f"segmentd texts/s = texts / (first POST -> /v1/info embedder.queue.pending == 0, polled "
                    f"every 10 ms); ingest texts/s = texts / (first POST -> last POST "
                    f"answered). Ceiling: N Python threads POST the same texts in batches "
                    f"of {args.embed_batch} straight to a fresh fake with the same latency "
                    f"and the same encoding_format ({args.encoding}), reading but not "
                    f"parsing the replies. "
                    f"Max in-flight: the fake's /_stats max_inflight during segmentd's run.\n\n")
            f.write(table + "\n")
            if notes:
                f.write("\nNotes from the run:\n\n")
                for n in notes:
                    f.write(f"- {n}\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
