#!/usr/bin/env bash
# kmeans.sh -- the k-means speed bar: segmentd vs faiss vs scikit-learn on the
# same 100,000 x 256 float32 points (64 planted blobs, fixed seed), K = 64,
# 20 Lloyd iterations, one BLAS/OpenMP thread each. See bench/README.md.
#
# usage: bench/kmeans.sh            (env BUILD_DIR, default <repo>/build-bench)
# Exit status: 0 when both targets pass, 1 when one fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${BUILD_DIR:-$root/build-bench}
py=/usr/bin/python3 # Debian's: the one python3-faiss/python3-sklearn serve

# The peers, from Debian, installed only when missing.
need=()
[ -x "$py" ] || need+=(python3)
[ -x "$py" ] && "$py" -c 'import faiss' 2>/dev/null || need+=(python3-faiss)
[ -x "$py" ] && "$py" -c 'import sklearn' 2>/dev/null || need+=(python3-sklearn)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi

cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target kmeans_bench -j2 >/dev/null

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
data="$build/kmeans-data"
mkdir -p "$data"
echo "kmeans bench: generating data, timing segmentd (best of 3)..." >&2
ours=$("$build/kmeans_bench" "$data")
echo "kmeans bench: timing faiss and scikit-learn (best of 3)..." >&2
peers=$("$py" "$here/kmeans_peers.py" "$data")

"$py" - "$ours" "$peers" <<'PY'
import json, sys
ours, peers = json.loads(sys.argv[1]), json.loads(sys.argv[2])
m, fa, sk = peers["meta"], peers["faiss"], peers["sklearn"]
rows = [("segmentd", ours["seconds"], peers["segmentd_inertia"], ours["iters"]),
        ("faiss " + fa["version"], fa["seconds"], fa["inertia"], fa["iters"]),
        ("sklearn " + sk["version"], sk["seconds"], sk["inertia"], sk["iters"])]
t_ok = ours["seconds"] < fa["seconds"]
q_ok = peers["segmentd_inertia"] <= 1.01 * sk["inertia"]
print("k-means bar: n=%d dim=%d K=%d (%d planted blobs, seed %d), %d Lloyd "
      "iterations, 1 thread, best of %d runs"
      % (m["n"], m["dim"], m["k"], m["blobs"], m["seed"], m["iters"],
         m["repeats"]))
print("%-15s %9s %14s %6s %11s %15s  %s" % ("method", "seconds", "inertia",
      "iters", "time/faiss", "inertia/sklearn", "target"))
for name, secs, inertia, iters in rows:
    tgt = ""
    if name == "segmentd":
        tgt = "time<faiss %s, inertia<=1.01*sklearn %s" % (
            "PASS" if t_ok else "FAIL", "PASS" if q_ok else "FAIL")
    print("%-15s %9.3f %14.6e %6d %11.3f %15.5f  %s" % (
        name, secs, inertia, iters, secs / fa["seconds"],
        inertia / sk["inertia"], tgt))
print("segmentd: validation + row norms, greedy k-means++ seeding on a "
      "uniform sample of up to 256 rows per cluster, %d updates and %d "
      "assignment passes over all rows (a fit with 0 iterations, i.e. norms "
      "+ seeding + 1 pass, takes %.3f s)."
      % (ours["iters"], ours["iters"] + 1, ours["seed_seconds"]))
print("faiss: random seeds (k sampled rows), %d assign+update iterations over "
      "all rows (no subsampling). sklearn: k-means++ on all rows, Lloyd until "
      "%d iterations or labels stop changing, final assign."
      % (fa["iters"], m["iters"]))
print("inertia: every method's final centroids scored by one float64 "
      "evaluator (sum of squared distances to the nearest centroid).")
sys.exit(0 if t_ok and q_ok else 1)
PY
