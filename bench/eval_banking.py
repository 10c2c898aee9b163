#!/usr/bin/python3
"""Intent-clustering quality of segmentd on BANKING77, beside scikit-learn.

Starts a real segmentd (Release build) on a loopback port with a fresh
database, ingests BANKING77 (train + test, 13,083 texts) through
POST /v1/texts, re-clusters the intents space through the HTTP API with
each algorithm family (k = 77 given, and K chosen by the service), reads
GET /v1/spaces/intents/assignments and scores NMI, ARI and accuracy
(Hungarian) against the labels. It re-clusters the same data twice to
measure stability (ARI between runs, share of points keeping their id),
then runs the peer baseline ../shared/tools/baselines/lexical_baseline.py
on the same texts in the same run and prints both side by side.

usage: bench/eval_banking.py [--bin build-release/segmentd] [--seeds 0,1,2]
                             [--skip-baseline] [--out bench/results/X.md]
Needs Debian's python3-sklearn (run with /usr/bin/python3).
"""
import argparse
import csv
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(ROOT, "..", "shared")
B77 = os.path.join(SHARED, "data", "banking77")


def read_rows():
    rows = []
    for split in ("train", "test"):
        with open(os.path.join(B77, split + ".csv"), newline="", encoding="utf-8") as f:
            for i, r in enumerate(csv.DictReader(f)):
                rows.append((f"{split}-{i}", r["text"], r["category"]))
    return rows


def http(url, body=None, timeout=3600):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def start_server(binary, work):
    port_file = os.path.join(work, "port")
    log = open(os.path.join(work, "server.log"), "w")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--db",
                             os.path.join(work, "eval.db"), "--port-file", port_file],
                            stdout=log, stderr=log, env=env)
    for _ in range(200):
        if os.path.exists(port_file) and open(port_file).read().strip():
            break
        time.sleep(0.05)
    return proc, "http://127.0.0.1:" + open(port_file).read().strip()


def ingest(base, rows, batch=1000):
    t0 = time.perf_counter()
    for b in range(0, len(rows), batch):
        items = [{"text_id": i, "text": t} for i, t, _ in rows[b:b + batch]]
        status, _ = http(base + "/v1/texts", {"texts": items})
        assert status == 200, status
    return time.perf_counter() - t0


def wait_model(base, timeout=600):
    t0 = time.time()
    while time.time() - t0 < timeout:
        spaces = json.loads(http(base + "/v1/spaces")[1])["spaces"]
        if spaces[0]["model_version"] > 0:
            return
        time.sleep(0.5)
    raise RuntimeError("no first model")


def assignments(base):
    _, body = http(base + "/v1/spaces/intents/assignments")
    out = {}
    for line in body.decode().splitlines():
        o = json.loads(line)
        out[o["id"]] = -1 if o["cluster"] is None else o["cluster"]
    return out


def accuracy(y, pred):
    _, yi = np.unique(y, return_inverse=True)
    _, pi = np.unique(pred, return_inverse=True)
    w = np.zeros((pi.max() + 1, yi.max() + 1), dtype=np.int64)
    np.add.at(w, (pi, yi), 1)
    r, c = linear_sum_assignment(-w)
    return w[r, c].sum() / len(y)


def score(rows, asg):
    y = [lab for i, _, lab in rows]
    pred = [asg.get(i, -1) for i, _, _ in rows]
    return (normalized_mutual_info_score(y, pred), adjusted_rand_score(y, pred),
            accuracy(y, pred))


def recluster(base, algorithm, k, seed=None):
    body = {"algorithm": algorithm, "wait": True}
    if seed is not None:
        body["seed"] = seed
    if k:
        body["k"] = k
    t0 = time.perf_counter()
    status, out = http(base + "/v1/spaces/intents/recluster", body)
    model = json.loads(out)["model"]
    return model, time.perf_counter() - t0


def baseline(seeds, pipelines):
    script = os.path.join(SHARED, "tools", "baselines", "lexical_baseline.py")
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    subprocess.run(["/usr/bin/python3", script, "--seeds", seeds, "--pipelines",
                    pipelines, "--json", out], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    with open(out) as f:
        res = json.load(f)
    os.unlink(out)
    return res


def run_ours(base, rows, lines):
    results = {}
    configs = [("kmeans", 77), ("kmeans", 0), ("hierarchical", 77),
               ("hierarchical", 0), ("density", 0)]
    for algo, k in configs:
        model, secs = recluster(base, algo, k)
        asg = assignments(base)
        nmi, ari, acc = score(rows, asg)
        name = f"segmentd {algo} k={'auto' if not k else k}"
        results[(algo, k)] = (nmi, ari, acc, model, asg)
        noise = model.get("noise", 0)
        lines.append(f"| {name} | {model['k']} | {nmi:.4f} | {ari:.4f} | {acc:.4f} "
                     f"| {secs:.1f} | {noise} |")
        print(lines[-1], flush=True)
    return results


def run_stability(base, rows, lines):
    """Two re-clusters of the same data with different random seeds."""
    recluster(base, "kmeans", 77, seed=1)
    first = assignments(base)
    model, _ = recluster(base, "kmeans", 77, seed=2)
    again = assignments(base)
    ids = [i for i, _, _ in rows]
    a = [first[i] for i in ids]
    b = [again.get(i, -1) for i in ids]
    ari = adjusted_rand_score(a, b)
    kept = sum(1 for x, y in zip(a, b) if x == y) / len(ids)
    start = model["quality"].get("start", {})
    lines.append(f"| re-cluster kmeans k=77 twice (seeds 1, 2) | ARI between runs {ari:.4f} | "
                 f"ids kept {kept:.4f} | service-reported kept share "
                 f"{model['quality']['ids']['kept_share']:.4f} | second fit kept the "
                 f"{start.get('kept', '?')} start (warm inertia {start.get('warm_inertia', 0):.1f}, "
                 f"fresh {start.get('fresh_inertia', 0):.1f}) |")
    print(lines[-1], flush=True)
    return ari, kept


def verdict(ok):
    return "PASS" if ok else "FAIL"


def targets(ours, base_res, stab):
    km = ours[("kmeans", 77)]
    auto = ours[("kmeans", 0)]
    best = [r for r in base_res if r["pipeline"] == "hash_lsa256_km"]
    out = []
    if best:
        b = best[0]
        out.append(f"- kmeans k=77 NMI {km[0]:.4f} >= baseline {b['nmi']:.4f}: {verdict(km[0] >= b['nmi'])}")
        out.append(f"- kmeans k=77 ARI {km[1]:.4f} >= baseline {b['ari']:.4f}: {verdict(km[1] >= b['ari'])}")
    k = auto[3]["k"]
    out.append(f"- automatic K = {k} within 77 +-25% [58, 96]: {verdict(58 <= k <= 96)}")
    out.append(f"- automatic K NMI {auto[0]:.4f} >= k=77 NMI - 0.03 ({km[0] - 0.03:.4f}): "
               f"{verdict(auto[0] >= km[0] - 0.03)}")
    out.append(f"- re-cluster twice: ARI {stab[0]:.4f} >= 0.9: {verdict(stab[0] >= 0.9)}")
    out.append(f"- re-cluster twice: ids kept {stab[1]:.4f} >= 0.9: {verdict(stab[1] >= 0.9)}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build-release", "segmentd"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--pipelines", default="tfidf_km,hash_lsa256_km")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    rows = read_rows()
    work = tempfile.mkdtemp(prefix="sd-eval-")
    proc, base = start_server(a.bin, work)
    lines = ["| run | K | NMI | ARI | ACC | seconds | noise |", "|---|---|---|---|---|---|---|"]
    try:
        secs = ingest(base, rows)
        print(f"ingested {len(rows)} texts in {secs:.1f} s ({len(rows) / secs:.0f}/s)", flush=True)
        wait_model(base)
        ours = run_ours(base, rows, lines)
        stab = run_stability(base, rows, lines)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    base_res = [] if a.skip_baseline else baseline(a.seeds, a.pipelines)
    for r in base_res:
        lines.append(f"| scikit-learn {r['pipeline']} (mean of seeds {r['seeds']}) | {r['k']} "
                     f"| {r['nmi']:.4f} | {r['ari']:.4f} | {r['acc']:.4f} | {r['seconds']:.1f} | 0 |")
        print(lines[-1], flush=True)
    checks = targets(ours, base_res, stab)
    print("\n".join(checks))
    date = datetime.date.today().isoformat()
    out = a.out or os.path.join(HERE, "results", f"{date}-banking77.md")
    with open(out, "w") as f:
        f.write(f"# BANKING77 intent clustering, {date}\n\n")
        f.write(f"Machine: {platform.machine()}, {os.cpu_count()} vCPUs, {platform.platform()}\n\n")
        f.write(f"{len(rows)} texts ingested over HTTP in {secs:.1f} s.\n\n")
        f.write("\n".join(lines) + "\n\nTargets:\n\n" + "\n".join(checks) + "\n")
    print("written", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
