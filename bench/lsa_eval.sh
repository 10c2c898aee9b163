#!/usr/bin/env bash
# lsa_eval.sh -- LSA encoder quality: segmentd's hashed TF-IDF + LSA 256 +
# k-means (spherical and Euclidean) and its random-projection encoder against
# scikit-learn's hash_lsa256_km pipeline (lexical_baseline.py), on the same
# labelled texts (BANKING77 train + test) and seeds, in one run. See
# bench/README.md, "LSA encoder quality (lsa_eval)".
#
# usage: bench/lsa_eval.sh
#   env BUILD_DIR (default <repo>/build-lsa-rel), SEEDS (default 0,1,2),
#       DATA_DIR (default <repo>/../shared/data/banking77)
# Exit status: 0 when the spherical LSA pipeline's mean NMI and ARI are at
# least the baseline's, 1 when not, 2 on errors.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${BUILD_DIR:-$root/build-lsa-rel}
seeds=${SEEDS:-0,1,2}
data=${DATA_DIR:-$root/../shared/data/banking77}
baseline=$root/../shared/tools/baselines/lexical_baseline.py
py=/usr/bin/python3 # Debian's: the one python3-sklearn serves

if ! { [ -x "$py" ] && "$py" -c 'import sklearn' 2>/dev/null; }; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-sklearn
fi

# The core library from the top-level project (Release), and the bench
# compiled against it: bench/CMakeLists.txt belongs to the k-means bench.
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target segmentd_core -j2 >/dev/null
deps="openblas jansson sqlite3 libcurl libmicrohttpd"
# shellcheck disable=SC2046,SC2086
cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -I"$root/include" \
  $(pkg-config --cflags $deps) "$here/lsa_eval.c" "$build/libsegmentd_core.a" \
  $(pkg-config --libs $deps) -lpthread -lm -o "$build/lsa_eval"

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
echo "lsa_eval: segmentd pipelines, seeds $seeds..." >&2
t0=$(date +%s.%N)
"$build/lsa_eval" --seeds "$seeds" --json "$build/lsa_eval.json" \
  "$data/train.csv" "$data/test.csv"
t1=$(date +%s.%N)
echo "lsa_eval: scikit-learn hash_lsa256_km, seeds $seeds..." >&2
"$py" "$baseline" --pipelines hash_lsa256_km --seeds "$seeds" \
  --csv "$data/train.csv" "$data/test.csv" --json "$build/baseline.json"
t2=$(date +%s.%N)

"$py" - "$build/lsa_eval.json" "$build/baseline.json" "$t0" "$t1" "$t2" <<'PY'
import json, statistics, sys
ours = json.load(open(sys.argv[1]))
base = json.load(open(sys.argv[2]))[0]
t0, t1, t2 = map(float, sys.argv[3:6])
print()
print("summary: %d texts, k=%d, means over seeds %s" % (ours["n"], ours["k"],
                                                        base["seeds"]))
print("%-26s %7s %7s %7s %10s" % ("pipeline", "NMI", "ARI", "ACC",
                                  "s/seed"))
rows = {}
for r in ours["runs"]:
    rows.setdefault(r["pipeline"], []).append(r)
means = {}
for name, rs in rows.items():
    m = {k: statistics.mean(r[k] for r in rs) for k in ("nmi", "ari", "acc")}
    m["s"] = statistics.mean(r["embed_s"] + r["kmeans_s"] for r in rs)
    means[name] = m
    print("%-26s %7.4f %7.4f %7.4f %10.1f" % ("segmentd " + name, m["nmi"],
          m["ari"], m["acc"], m["s"]))
print("%-26s %7.4f %7.4f %7.4f %10.1f" % ("sklearn hash_lsa256_km",
      base["nmi"], base["ari"], base["acc"], base["seconds"]))
print("wall: segmentd %.1f s (all four pipelines), sklearn %.1f s"
      % (t1 - t0, t2 - t1))
ok = True
for name in ("lsa_spherical", "lsa_euclidean"):
    m = means[name]
    good = m["nmi"] >= base["nmi"] and m["ari"] >= base["ari"]
    print("target %-14s NMI >= %.4f and ARI >= %.4f: %s"
          % (name, base["nmi"], base["ari"], "PASS" if good else "FAIL"))
    if name == "lsa_spherical":
        ok = good
sys.exit(0 if ok else 1)
PY
