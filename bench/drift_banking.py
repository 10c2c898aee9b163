#!/usr/bin/python3
"""Drift detection of segmentd on real data (BANKING77): false alarms on a
stationary stream, and how fast a new intent is reported.

Per seed, on a fresh Release server (loopback, temporary database):
  1. 5 of the 77 intents are held back (chosen by the seed). A warm-up of
     --warmup texts of the other 72 intents is posted; the intents model
     trains by itself (--train-min = --warmup, --k given or automatic).
  2. Stationary phase: --intervals check intervals, each = POST --per texts
     sampled with replacement from the 72 intents' texts not used in the
     warm-up, then GET /v1/drift?refresh=true. Every check of the intents
     space is recorded (MMD p-value, PSI, drifted checks).
  3. Emerging phase (same server): --emerging-intervals intervals where a
     share --emerging-share of each interval's texts come from the 5
     held-back intents. The first interval with an emerging_cluster check
     is recorded, and each emerging alert is scored: held-back share of its
     representatives (ids encode the intent), its top terms against the
     held-back intents' c-TF-IDF vocabulary, and (out of band, reading the
     server's SQLite file read-only) the held-back share of the `size`
     outliers nearest the alert's stored centroid -- an approximation of
     the candidate's members, which the API does not expose.

Text ids: "<seed>:<phase><interval>:<j>:<K|H>:<intent>" (H = held back).

usage: bench/drift_banking.py [--bin build-release/segmentd] [--seeds 0,1,2]
         [--intervals 50] [--per 200] [--warmup 3000] [--k 72]
         [--emerging-intervals 10] [--emerging-share 0.25]
         [--emerging-seeds first|all] [--out bench/results/X.md]
Only numpy is needed (Debian's /usr/bin/python3).
"""
import argparse
import collections
import csv
import datetime
import json
import math
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
B77 = os.path.join(ROOT, "..", "shared", "data", "banking77")
N_HELD = 5


# ---------------------------------------------------------------- data

def read_rows():
    rows = []
    for split in ("train", "test"):
        with open(os.path.join(B77, split + ".csv"), newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                rows.append((r["text"], r["category"]))
    return rows


# the server's stop words (src/label_terms.c), so the vocabularies compare
STOP = set("""a about above after again against all am an and any are as at be because been
before being below between both but by can could did do does doing don down during each few
for from further get got had has have having he her here hers herself him himself his how if
in into is it its itself just me more most my myself no nor not now of off on once only or
other our ours ourselves out over own same she should so some such than that the their theirs
them themselves then there these they this those through to too under until up very was we
were what when where which while who whom why will with would you your yours yourself
yourselves im ive cant dont didnt isnt wont please still also yet need want one""".split())
WORD = re.compile(r"[a-z0-9_\x80-\U0010ffff]{2,}")


def terms_of(text):
    """Words and adjacent word pairs without stop words, as label_terms.c."""
    w = WORD.findall(text.lower())
    out = []
    for i, x in enumerate(w):
        if x in STOP or len(x) > 64:
            continue
        out.append(x)
        if i + 1 < len(w) and w[i + 1] not in STOP and len(w[i + 1]) <= 64:
            out.append(x + " " + w[i + 1])
    return out


def ctfidf_top(rows, held, n=15):
    """c-TF-IDF (BERTopic's: tf per class x log(1 + avg terms per class /
    term frequency)): the top n terms of each held-back intent among the 77
    intents, and of the held-back intents pooled into one class beside the
    72 others."""
    per = collections.defaultdict(collections.Counter)
    for text, lab in rows:
        per[lab].update(terms_of(text))

    def top_of(classes, target):
        total = collections.Counter()
        for c in classes.values():
            total.update(c)
        avg = sum(sum(c.values()) for c in classes.values()) / len(classes)
        cnt = classes[target]
        size = sum(cnt.values())
        score = {t: (v / size) * math.log(1 + avg / total[t]) for t, v in cnt.items()}
        return [t for t, _ in sorted(score.items(), key=lambda x: -x[1])[:n]]

    each = {lab: top_of(per, lab) for lab in held}
    pooled = {lab: c for lab, c in per.items() if lab not in held}
    pooled["__held__"] = collections.Counter()
    for lab in held:
        pooled["__held__"].update(per[lab])
    return each, top_of(pooled, "__held__")


# ---------------------------------------------------------------- server

def http(url, body=None, timeout=600):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def jget(base, path):
    return json.loads(http(base + path)[1])


def start_server(binary, work, flags):
    port_file = os.path.join(work, "port")
    log = open(os.path.join(work, "server.log"), "w")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    cmd = [binary, "serve", "--listen", "127.0.0.1:0", "--db", os.path.join(work, "drift.db"),
           "--port-file", port_file] + flags
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
    for _ in range(400):
        if os.path.exists(port_file) and open(port_file).read().strip():
            break
        if proc.poll() is not None:
            raise RuntimeError("server exited: see " + log.name)
        time.sleep(0.05)
    base = "http://127.0.0.1:" + open(port_file).read().strip()
    for _ in range(600):  # the port is bound before the server is ready
        try:
            if http(base + "/readyz", timeout=5)[0] == 200:
                break
        except Exception:
            pass
        time.sleep(0.05)
    return proc, base, cmd


def post_texts(base, items):
    body = {"texts": [{"text_id": i, "text": t} for i, t in items]}
    status, out = http(base + "/v1/texts", body)
    assert status == 200, (status, out[:200])


def wait_model(base, timeout=900):
    t0 = time.time()
    while time.time() - t0 < timeout:
        sp = jget(base, "/v1/spaces")["spaces"][0]
        if sp["model_version"] > 0 and not sp["reassigning"] and sp["assigned"] >= sp["points"]:
            cl = jget(base, "/v1/spaces/intents/clusters")
            if cl.get("clusters"):
                return sp, time.time() - t0
        time.sleep(0.5)
    raise RuntimeError("no first model")


def intents_report(drift):
    for s in drift["spaces"]:
        if s["space"] == "intents":
            return s
    raise RuntimeError("no intents space in /v1/drift")


def all_alerts(base):
    out, cursor = [], None
    while True:
        page = jget(base, "/v1/alerts?limit=1000" + (f"&cursor={cursor}" if cursor else ""))
        out += page["alerts"]
        cursor = page.get("next_cursor")
        if not cursor:
            return out


# ---------------------------------------------------------------- one run

def summarise_interval(phase, i, rep, t_post, t_check):
    checks = rep["checks"]
    mmd = next((c for c in checks if c["kind"] == "distribution_drift" and c["method"] == "mmd"), None)
    psi = next((c for c in checks if c["kind"] == "distribution_drift" and c["method"] == "psi"), None)
    emerg = [c for c in checks if c["kind"] == "emerging_cluster"]
    return {
        "phase": phase, "interval": i,
        "new_points": rep["window"]["new_points"], "window_points": rep["window"]["points"],
        "model_version": rep["model_version"],
        "mmd_evaluated": bool(mmd and mmd["evaluated"]),
        "mmd_p": mmd["value"] if mmd and mmd["evaluated"] else None,
        "mmd_drifted": bool(mmd and mmd["drifted"]),
        "mmd_severity": mmd.get("severity") if mmd else None,
        "mmd_detail": mmd.get("detail") if mmd else None,
        "psi_evaluated": bool(psi and psi["evaluated"]),
        "psi": psi["value"] if psi and psi["evaluated"] else None,
        "drifted": [{k: c.get(k) for k in ("kind", "method", "severity", "cluster", "value",
                                            "threshold", "message", "detail")}
                    for c in checks if c["drifted"]],
        "summaries": [{k: c.get(k) for k in ("kind", "method", "cluster", "value", "threshold",
                                              "evaluated", "message")}
                      for c in checks if not c["drifted"] and c["kind"] not in ("distribution_drift",)],
        "emerging_largest": max((c["value"] for c in emerg if not c["drifted"]), default=None),
        "t_post": t_post, "t_check": t_check, "checked_at_ms": rep.get("checked_at_ms"),
    }


def run_interval(base, items, phase, i):
    t0 = time.perf_counter()
    post_texts(base, items)
    t1 = time.perf_counter()
    drift = json.loads(http(base + "/v1/drift?refresh=true")[1])
    t2 = time.perf_counter()
    rep = intents_report(drift)
    s = summarise_interval(phase, i, rep, t1 - t0, t2 - t1)
    s["status"] = drift["status"]
    s["open_alerts"] = drift["open_alerts"]
    s["ids"] = [x for x, _ in items]
    return s, rep


def outlier_proxy(dbfile, alert, held_ids_of, first_stream_rowid, upto_rowid, quantile):
    """Held-back share of the `size` outliers nearest the alert's centroid,
    rebuilding the outlier ring from the stored texts (read-only)."""
    db = sqlite3.connect(f"file:{dbfile}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT centroid, model_version FROM alerts WHERE id=?",
                         (alert["id"],)).fetchone()
        if not row or not row[0]:
            return None
        cen = np.frombuffer(row[0], dtype=np.float32)
        dim = cen.size
        ref = db.execute("SELECT n,label,sim,counts FROM drift_reference WHERE space='intents' "
                         "AND version=?", (row[1],)).fetchone()
        n = ref[0]
        label = np.frombuffer(ref[1], dtype=np.int32)
        sim = np.frombuffer(ref[2], dtype=np.float32)
        k = len(ref[3]) // 4
        pooled = float(np.quantile(sim, quantile))
        radius = np.full(k, pooled, dtype=np.float64)
        for c in range(k):
            m = sim[label == c]
            if m.size >= 10:
                radius[c] = float(np.quantile(m, quantile))
        # first model: row j of the centroids has id base + j
        base_id = db.execute("SELECT min(cluster) FROM texts WHERE cluster IS NOT NULL").fetchone()[0]
        rows = db.execute("SELECT id, text_id, embedding, cluster, similarity FROM texts WHERE "
                          "id>=? AND id<=? AND cluster IS NOT NULL ORDER BY id",
                          (first_stream_rowid, upto_rowid)).fetchall()
        out_ids, out_x = [], []
        for _, tid, emb, cl, s in rows:
            j = cl - base_id
            if 0 <= j < k and s < radius[j]:
                out_ids.append(tid)
                out_x.append(np.frombuffer(emb, dtype=np.float32))
        out_ids, out_x = out_ids[-2000:], np.array(out_x[-2000:]).reshape(-1, dim)
        size = int(alert["detail"]["size"]) if alert.get("detail") else int(alert["value"])
        cos = out_x @ cen
        near = np.argsort(-cos)[:size]
        held = sum(1 for j in near if held_ids_of(out_ids[j]))
        return {"outliers": len(out_ids), "size": size, "held": held,
                "purity": held / max(1, len(near)),
                "held_outliers": sum(1 for t in out_ids if held_ids_of(t)),
                "min_cos": float(cos[near[-1]]) if len(near) else None}
    finally:
        db.close()


def interval_of(res, alert):
    """(phase, interval) of the check that opened an alert (same checked_at)."""
    at = (alert.get("window") or {}).get("checked_at_ms")
    for s in res["intervals"]:
        if at is not None and s["checked_at_ms"] == at:
            return s["phase"], s["interval"]
    return None


def run_seed(a, rows, seed, with_emerging, work_root):
    rng = np.random.default_rng(seed)
    intents = sorted({lab for _, lab in rows})
    held = sorted(rng.choice(intents, N_HELD, replace=False).tolist())
    kept_idx = [i for i, (_, lab) in enumerate(rows) if lab not in held]
    held_idx = [i for i, (_, lab) in enumerate(rows) if lab in held]
    perm = rng.permutation(kept_idx)
    warm, stream_pool = perm[:a.warmup], perm[a.warmup:]
    work = tempfile.mkdtemp(prefix=f"sd-drift-{seed}-", dir=work_root)
    flags = ["--drift-interval", "0", "--train-min", str(a.warmup), "--k", str(a.k),
             "--recluster-interval", "0"] + a.flags.split()
    proc, base, cmd = start_server(a.bin, work, flags)
    res = {"seed": seed, "held": held, "work": work, "cmd": cmd, "intervals": [],
           "n_kept_texts": len(kept_idx), "n_held_texts": len(held_idx),
           "stream_pool": len(stream_pool)}

    def tid(phase, i, j, idx):
        text, lab = rows[idx]
        return f"{seed}:{phase}{i:02d}:{j:03d}:{'H' if lab in held else 'K'}:{lab}"

    try:
        t0 = time.perf_counter()
        items = [(f"{seed}:w:{j:04d}:K:{rows[idx][1]}", rows[idx][0]) for j, idx in enumerate(warm)]
        for b in range(0, len(items), 1000):
            post_texts(base, items[b:b + 1000])
        sp, secs = wait_model(base)
        res["model"] = {"version": sp["model_version"], "k": sp["k"], "points": sp["points"],
                        "algorithm": sp["algorithm"], "wait_s": secs,
                        "warmup_s": time.perf_counter() - t0}
        print(f"seed {seed}: held back {held}; model v{sp['model_version']} k={sp['k']} "
              f"on {sp['points']} texts after {time.perf_counter() - t0:.1f} s", flush=True)
        first_rowid = None
        for i in range(a.intervals):
            pick = rng.choice(stream_pool, a.per, replace=True)
            items = [(tid("s", i, j, idx), rows[idx][0]) for j, idx in enumerate(pick)]
            s, _ = run_interval(base, items, "stationary", i)
            res["intervals"].append(s)
            if i % 10 == 9:
                print(f"  stationary {i + 1}/{a.intervals}: mmd p {s['mmd_p']}, psi {s['psi']}, "
                      f"drifted {[(d['kind'], d['method'], d['severity']) for d in s['drifted']]}",
                      flush=True)
        res["t_stationary_end_ms"] = int(time.time() * 1000)
        res["alerts_stationary"] = all_alerts(base)
        if with_emerging:
            n_held = int(round(a.per * a.emerging_share))
            for i in range(a.emerging_intervals):
                pick_k = rng.choice(stream_pool, a.per - n_held, replace=True)
                pick_h = rng.choice(held_idx, n_held, replace=True)
                pick = rng.permutation(np.concatenate([pick_k, pick_h]))
                items = [(tid("e", i, j, idx), rows[idx][0]) for j, idx in enumerate(pick)]
                s, rep = run_interval(base, items, "emerging", i)
                res["intervals"].append(s)
                em = [d for d in s["drifted"] if d["kind"] == "emerging_cluster"]
                print(f"  emerging {i + 1}/{a.emerging_intervals}: mmd p {s['mmd_p']}, psi {s['psi']}, "
                      f"emerging {[(d['value'], d['detail'].get('top_terms')) for d in em]}, other "
                      f"{[(d['kind'], d['method'], d['severity']) for d in s['drifted'] if d['kind'] != 'emerging_cluster']}",
                      flush=True)
            res["alerts"] = all_alerts(base)
            # assignments of the emerging phase's texts: which clusters absorbed them
            _, body = http(base + "/v1/spaces/intents/assignments")
            asg = {}
            for line in body.decode().splitlines():
                o = json.loads(line)
                asg[o["id"]] = o["cluster"]
            res["assignments"] = asg
            # rowids of the stream, for the out-of-band purity proxy
            db = sqlite3.connect(f"file:{os.path.join(work, 'drift.db')}?mode=ro", uri=True)
            try:
                first_rowid = db.execute("SELECT min(id) FROM texts WHERE text_id LIKE ?",
                                         (f"{seed}:s%",)).fetchone()[0]
                res["rowid_end"] = {}
                for i in range(a.emerging_intervals):
                    res["rowid_end"][i] = db.execute(
                        "SELECT max(id) FROM texts WHERE text_id LIKE ?",
                        (f"{seed}:e{i:02d}:%",)).fetchone()[0]
            finally:
                db.close()
            res["first_stream_rowid"] = first_rowid
            res["proxy"] = {}
            for al in res["alerts"]:
                if al["kind"] != "emerging_cluster":
                    continue
                opened = interval_of(res, al)
                upto = res["rowid_end"].get(opened[1]) if opened and opened[0] == "emerging" \
                    else max(res["rowid_end"].values())
                res["proxy"][al["id"]] = outlier_proxy(
                    os.path.join(work, "drift.db"), al, lambda t: ":H:" in t, first_rowid, upto,
                    a.outlier_quantile)
        info = jget(base, "/v1/info")
        res["info_version"] = info.get("version")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    with open(os.path.join(work, "server.log")) as f:
        res["log_tail"] = [l.rstrip() for l in f.readlines()[-400:]]
    return res


# ---------------------------------------------------------------- report

def clopper_pearson(x, n, alpha=0.05):
    """Exact binomial 95% interval by bisection (no scipy needed)."""
    if n == 0:
        return (0.0, 1.0)

    def cdf(k, p):  # P(X <= k)
        return sum(math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(k + 1))

    def bisect(f):  # f increasing in p, root of f(p) = 0
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
        return (lo + hi) / 2
    lo = 0.0 if x == 0 else bisect(lambda p: (1 - cdf(x - 1, p)) - alpha / 2)
    hi = 1.0 if x == n else bisect(lambda p: alpha / 2 - cdf(x, p))
    return lo, hi


def stationary_stats(res):
    iv = [s for s in res["intervals"] if s["phase"] == "stationary"]
    ev = [s for s in iv if s["mmd_evaluated"]]
    fa = [s for s in ev if s["mmd_drifted"]]
    kinds = collections.Counter()
    sev = collections.Counter()
    for s in iv:
        for d in s["drifted"]:
            kinds[(d["kind"], d["method"], d["severity"])] += 1
            sev[d["severity"]] += 1
    al = [x for x in res["alerts_stationary"]]
    al_kinds = collections.Counter((x["kind"], x["method"], x["severity"]) for x in al)
    ps = [s["mmd_p"] for s in ev]
    psi = [s["psi"] for s in iv if s["psi_evaluated"]]
    return {"intervals": len(iv), "mmd_evaluated": len(ev), "mmd_drifted": len(fa),
            "rate": len(fa) / max(1, len(ev)), "ci": clopper_pearson(len(fa), len(ev)),
            "kinds": kinds, "sev": sev, "alerts": al, "alert_kinds": al_kinds,
            "critical_alerts": sum(1 for x in al if x["severity"] == "critical"),
            "p_min": min(ps) if ps else None, "p_median": float(np.median(ps)) if ps else None,
            "p_first_half": float(np.mean(ps[:len(ps) // 2])) if ps else None,
            "p_second_half": float(np.mean(ps[len(ps) // 2:])) if ps else None,
            "psi_evaluated": len(psi), "psi_max": max(psi) if psi else None,
            "psi_first": next((s["interval"] for s in iv if s["psi_evaluated"]), None),
            "t_post": float(np.mean([s["t_post"] for s in iv])),
            "t_check": float(np.mean([s["t_check"] for s in iv])),
            "new_points_ok": all(s["new_points"] == len(s["ids"]) for s in iv),
            "new_points_bad": [(s["interval"], s["new_points"]) for s in iv
                               if s["new_points"] != len(s["ids"])]}


def fmt(x, nd=3):
    return "-" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


def write_report(a, runs, rows, out, started, elapsed):
    L = []
    date = datetime.date.today().isoformat()
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except Exception:
        pass
    L.append(f"# Drift detection on BANKING77, {date}\n")
    L.append(f"Machine: {platform.machine()}, {os.cpu_count()} vCPUs ({cpu}), "
             f"{platform.platform()}, Python {platform.python_version()}, numpy {np.__version__}.\n")
    L.append("Command: `bench/drift_banking.sh " + " ".join(sys.argv[1:]) + "` "
             f"(wall time {elapsed:.0f} s for {len(runs)} runs).\n")
    r0 = runs[0]
    L.append("Server (Release build, loopback, fresh SQLite database per run, "
             "`OPENBLAS_NUM_THREADS=1`):\n")
    L.append("```\n" + " ".join(os.path.relpath(c, ROOT) if c.startswith("/") and "segmentd" in c
                                  and c.endswith("segmentd") else c for c in r0["cmd"]) + "\n```\n")
    L.append("Every other flag at its default: --drift-sample 500, --drift-window 5000, "
             "--drift-min-points 100, --drift-p-value 0.05, --drift-permutations 200, "
             "--drift-persist 3, --psi-warning 0.1, --psi-critical 0.25, --centroid-shift 0.1, "
             "--share-shift 0.5, --cohesion-drop 0.1, --outlier-quantile 0.05, "
             "--emerging-min-size 30, --vanish-floor 0.1, --drift-recluster 0, "
             "built-in encoder (dim 256). `--recluster-interval 0` keeps the scheduler from "
             "replacing the model (and so the drift reference) mid-run.\n")
    L.append(f"Data: BANKING77 train + test ({len(rows)} texts, 77 intents). Per seed, "
             f"{N_HELD} intents are held back; the warm-up is {a.warmup} texts of the other 72 "
             f"(sampled without replacement), the model trains on them by itself "
             f"(--train-min {a.warmup}, --k {a.k}); each check interval then posts {a.per} texts "
             f"(one POST /v1/texts) sampled with replacement from the 72 intents' texts not in "
             f"the warm-up, and calls GET /v1/drift?refresh=true. Emerging phase: "
             f"{a.emerging_share:.0%} of each interval's {a.per} texts come from the held-back "
             f"intents (uniform over their texts).\n")

    L.append("## 1. Stationary stream\n")
    L.append("| seed | held-back intents | K | intervals | MMD evaluated | MMD drifted "
             "(false-alarm rate, 95% CI) | MMD p min / median | PSI evaluated (from interval) "
             "/ max | drifted checks by kind (severity) | alerts opened (critical) |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    tot_ev = tot_fa = 0
    for r in runs:
        st = stationary_stats(r)
        r["_st"] = st
        tot_ev += st["mmd_evaluated"]
        tot_fa += st["mmd_drifted"]
        kinds = ", ".join(f"{k[0]}/{k[1]} ({k[2]}) x{v}" for k, v in sorted(st["kinds"].items())) or "none"
        lo, hi = st["ci"]
        L.append(f"| {r['seed']} | {', '.join(r['held'])} | {r['model']['k']} | {st['intervals']} "
                 f"| {st['mmd_evaluated']} | {st['mmd_drifted']} ({st['rate']:.1%}, "
                 f"[{lo:.1%}, {hi:.1%}]) | {fmt(st['p_min'])} / {fmt(st['p_median'])} "
                 f"| {st['psi_evaluated']} (#{fmt(st['psi_first'])}) / {fmt(st['psi_max'])} "
                 f"| {kinds} | {len(st['alerts'])} ({st['critical_alerts']}) |")
    lo, hi = clopper_pearson(tot_fa, tot_ev)
    L.append(f"\nPooled over {len(runs)} seeds: MMD false alarms {tot_fa}/{tot_ev} = "
             f"{tot_fa / max(1, tot_ev):.1%} (95% Clopper-Pearson [{lo:.1%}, {hi:.1%}]); "
             f"target <= 5% at p 0.05. Critical alerts in the stationary phase: "
             f"{sum(r['_st']['critical_alerts'] for r in runs)} (target 0).\n")
    L.append("Alerts opened during the stationary phase (GET /v1/alerts), by kind:\n")
    L.append("| seed | kind | method | severity (now) | cluster | value | threshold | message |")
    L.append("|---|---|---|---|---|---|---|---|")
    for r in runs:
        for x in sorted(r["_st"]["alerts"], key=lambda x: x["id"]):
            L.append(f"| {r['seed']} | {x['kind']} | {x['method']} | {x['severity']} | "
                     f"{fmt(x.get('cluster'))} | {x['value']:.4g} | {x['threshold']:.4g} | "
                     f"{x['message']} |")
    L.append("")
    L.append("Per-interval MMD p-values and drifted checks (seed " + str(r0["seed"]) + "):\n")
    L.append("| interval | new points | window | MMD p | MMD drifted (severity, in a row) | PSI "
             "| other drifted checks |")
    L.append("|---|---|---|---|---|---|---|")
    for s in [s for s in r0["intervals"] if s["phase"] == "stationary"]:
        row_d = s["mmd_detail"] or {}
        other = "; ".join(f"{d['kind']}/{d['method']} {d['severity']}"
                          + (f" c{d['cluster']}" if d.get("cluster") is not None else "")
                          + f" {d['value']:.3g}" for d in s["drifted"]
                          if d["kind"] != "distribution_drift" or d["method"] != "mmd")
        L.append(f"| {s['interval'] + 1} | {s['new_points']} | {s['window_points']} "
                 f"| {fmt(s['mmd_p'])} | {'yes (' + str(s['mmd_severity']) + ', ' + str(row_d.get('drifted_checks_in_a_row')) + ')' if s['mmd_drifted'] else 'no'} "
                 f"| {fmt(s['psi'])} | {other or '-'} |")
    L.append("")
    L.append("Timing (mean per interval): " + "; ".join(
        f"seed {r['seed']}: POST {r['_st']['t_post'] * 1000:.0f} ms, drift check "
        f"{r['_st']['t_check'] * 1000:.0f} ms; model trained {r['model']['wait_s']:.1f} s after the "
        f"warm-up" for r in runs) + ".\n")
    bad = [(r["seed"], r["_st"]["new_points_bad"]) for r in runs if r["_st"]["new_points_bad"]]
    if bad:
        L.append(f"ANOMALY: window.new_points differed from the texts posted: {bad}\n")

    em_runs = [r for r in runs if "alerts" in r]
    if em_runs:
        L.append("## 2. Emerging intent\n")
        L.append("| seed | held-back intents | first interval with emerging_cluster (target <= 2) "
                 "| emerging alerts | MMD p per interval | PSI per interval | other drifted checks "
                 "(interval: kind/method severity cluster) |")
        L.append("|---|---|---|---|---|---|---|")
        for r in em_runs:
            iv = [s for s in r["intervals"] if s["phase"] == "emerging"]
            first = next((s["interval"] + 1 for s in iv if any(
                d["kind"] == "emerging_cluster" for d in s["drifted"])), None)
            r["_first"] = first
            ems = [x for x in r["alerts"] if x["kind"] == "emerging_cluster"]
            other = []
            for s in iv:
                for d in s["drifted"]:
                    if d["kind"] in ("emerging_cluster",):
                        continue
                    if d["kind"] == "distribution_drift":
                        continue
                    other.append(f"{s['interval'] + 1}: {d['kind']}/{d['method']} {d['severity']}"
                                 + (f" c{d['cluster']}" if d.get("cluster") is not None else ""))
            L.append(f"| {r['seed']} | {', '.join(r['held'])} | {fmt(first)} | {len(ems)} "
                     f"| {', '.join(fmt(s['mmd_p'], 3) + ('*' if s['mmd_drifted'] else '') for s in iv)} "
                     f"| {', '.join(fmt(s['psi'], 3) for s in iv)} "
                     f"| {'; '.join(other) or 'none'} |")
        L.append("\n(* = MMD drifted at p < 0.05.)\n")
        L.append("### Emerging alerts and their purity\n")
        L.append("Purity measures: (a) held-back share of `detail.representatives` (ids encode "
                 "the intent; only 3 per alert); (b) alert `top_terms` found among the top 15 "
                 "c-TF-IDF terms of a held-back intent (77 classes) or of the held-back intents "
                 "pooled against the rest; (c) out of band: the outlier ring rebuilt from the "
                 "server's SQLite file (stream texts with stored similarity below their "
                 "cluster's 5% radius, from `drift_reference`), and the `size` outliers nearest "
                 "the alert's stored centroid -- an approximation of the candidate's members, "
                 "since the density labels are not exposed.\n")
        L.append("| seed | alert | opened at emerging interval | severity | size | nearest cluster "
                 "(cos) | top terms | terms in held-back c-TF-IDF (intent) | representatives "
                 "held-back | proxy purity (held / size; outliers in ring, held-back outliers) |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in em_runs:
            each, pooled = r["_terms"]
            for x in sorted([x for x in r["alerts"] if x["kind"] == "emerging_cluster"],
                            key=lambda x: x["id"]):
                d = x.get("detail") or {}
                terms = d.get("top_terms", [])
                hits = []
                for t in terms:
                    who = [lab for lab, tops in each.items() if t in tops]
                    if who or t in pooled:
                        hits.append(t + (f" ({'/'.join(who)})" if who else " (pooled)"))
                reps = d.get("representatives", [])
                nh = sum(1 for p in reps if ":H:" in (p.get("id") or ""))
                rep_int = [(p.get("id") or "").split(":")[-1] for p in reps]
                px = r["proxy"].get(x["id"])
                ptxt = (f"{px['held']}/{px['size']} = {px['purity']:.0%} ({px['outliers']} outliers, "
                        f"{px['held_outliers']} held-back)" if px else "-")
                op = interval_of(r, x)
                opened = op[1] + 1 if op and op[0] == "emerging" else (f"stationary {op[1] + 1}" if op else None)
                L.append(f"| {r['seed']} | {x['id']} | {fmt(opened)} | {x['severity']} "
                         f"| {d.get('size', x['value'])} | {d.get('nearest_cluster')} "
                         f"({fmt(d.get('nearest_similarity'), 2)}) | {', '.join(terms)} "
                         f"| {len(hits)}/{len(terms)}: {', '.join(hits) or '-'} "
                         f"| {nh}/{len(reps)} ({', '.join(rep_int)}) | {ptxt} |")
        L.append("")
        L.append("Held-back intents' top c-TF-IDF terms (77 classes):\n")
        for r in em_runs:
            each, pooled = r["_terms"]
            for lab, tops in each.items():
                L.append(f"- seed {r['seed']} `{lab}`: {', '.join(tops[:10])}")
            L.append(f"- seed {r['seed']} pooled held-back vs rest: {', '.join(pooled[:10])}")
        L.append("")
        L.append("### Where the held-back texts went (emerging phase)\n")
        L.append("| seed | held-back texts posted | clusters receiving them (top 5: id x texts) "
                 "| share in the top 5 |")
        L.append("|---|---|---|---|")
        for r in em_runs:
            c = collections.Counter(v for k, v in r["assignments"].items()
                                    if ":e" in k and ":H:" in k)
            n = sum(c.values())
            top = c.most_common(5)
            L.append(f"| {r['seed']} | {n} | {', '.join(f'{k} x{v}' for k, v in top)} "
                     f"| {sum(v for _, v in top) / max(1, n):.0%} |")
        L.append("")
    return L


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build-release", "segmentd"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--intervals", type=int, default=50)
    ap.add_argument("--per", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=3000)
    ap.add_argument("--k", type=int, default=72)
    ap.add_argument("--emerging-intervals", type=int, default=10)
    ap.add_argument("--emerging-share", type=float, default=0.25)
    ap.add_argument("--emerging-seeds", choices=["first", "all"], default="all")
    ap.add_argument("--outlier-quantile", type=float, default=0.05)
    ap.add_argument("--flags", default="", help="extra server flags")
    ap.add_argument("--out", default=None)
    ap.add_argument("--json", default=None, help="also dump the raw runs here")
    a = ap.parse_args()
    rows = read_rows()
    work_root = tempfile.mkdtemp(prefix="sd-drift-bench-")
    # a private copy of the binary: others may rebuild build-release meanwhile
    binary = os.path.join(work_root, "segmentd")
    shutil.copy2(a.bin, binary)
    a.bin = binary
    t0 = time.time()
    runs = []
    for n, seed in enumerate(int(s) for s in a.seeds.split(",")):
        with_em = a.emerging_seeds == "all" or n == 0
        r = run_seed(a, rows, seed, with_em, work_root)
        r["_terms"] = ctfidf_top(rows, r["held"])
        runs.append(r)
    elapsed = time.time() - t0
    out = a.out or os.path.join(HERE, "results", f"{datetime.date.today().isoformat()}-drift.md")
    L = write_report(a, runs, rows, out, t0, elapsed)
    with open(out, "w") as f:
        f.write("\n".join(L) + "\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(runs, f, default=str)
    print("written", out, "; work dir", work_root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
