#!/usr/bin/env bash
# bench/run.sh -- the benchmark suite of issue 7: segmentd's figures, each
# next to a ceiling measured in the same run on the same machine, in one
# table (figure | segmentd | ceiling | ratio | target | met?), also written
# with the machine description to bench/results/<date>-suite.md.
# Loopback only (127.0.0.1), bounded (< 10 minutes; the optional profile is
# skipped when the run is late). See bench/README.md, "Benchmark suite".
#
# usage: bench/run.sh
# env:   SUITE_USERS (50000)        users loaded, 20 events each (the
#                                   issue's 1M does not load in 10 minutes)
#        SUITE_LOAD_UNTIL (330)     the load phase starts no batch after this
#                                   many seconds of the run (events loaded
#                                   are reported)
#        SUITE_INGEST_ROWS (100000) events of the measured ingest phase
#        SUITE_TEXTS (20000)        texts of the measured text-ingest phase
#        SUITE_DURATION (8)         seconds of each wrk run
#        SUITE_KMEANS_REPEATS (1)   best-of-N of the k-means core
#        SUITE_PROFILE (1)          perf profile of the biggest gap (0: off)
#        SUITE_OUT                  results file (bench/results/<date>-suite.md)
#
# Ceilings (bench/CMakeLists.txt, built into build-bench/):
#   ceiling_http    libmicrohttpd with segmentd's options + a jansson body of
#                   the measured size of a real segment answer
#   ceiling_sqlite  the naive INSERT loop over the same event rows
#   ceiling_sgemm   the bare cblas_sgemm of one k-means assignment pass
# The load client is bench/loadgen.c (libcurl); lookups use wrk with
# bench/lookup.lua (via bench/suite_lookup.lua, which adds status counts).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"
USERS=${SUITE_USERS:-50000}
LOAD_UNTIL=${SUITE_LOAD_UNTIL:-330}
EV_PER_USER=20
INGEST_ROWS=${SUITE_INGEST_ROWS:-100000}
TEXTS=${SUITE_TEXTS:-20000}
DUR=${SUITE_DURATION:-8}
KM_REPEATS=${SUITE_KMEANS_REPEATS:-1}
PROFILE=${SUITE_PROFILE:-1}
OUT=${SUITE_OUT:-$root/bench/results/$(date -u +%F)-suite.md}
BUDGET=600 # seconds; phases after 520 s are skipped
py=/usr/bin/python3 # Debian's: the one python3-faiss/python3-sklearn serve
bb=$root/build-bench

log() { printf '[%3ds] %s\n' "$SECONDS" "$*" >&2; }

# ---- dependencies -----------------------------------------------------------
# wrk (apt package wrk) and the k-means peers (python3-faiss, python3-sklearn)
# are not build dependencies: scripts/deps.sh installs them only when named
# in SD_DEPS_EXTRA (it installs nothing that is already there). perf
# (linux-perf) only when the profile is wanted.
extra="wrk python3 python3-numpy python3-faiss python3-sklearn"
[ "$PROFILE" = 1 ] && ! command -v perf >/dev/null && extra+=" linux-perf"
SD_DEPS_EXTRA="$extra" scripts/deps.sh

# ---- build ------------------------------------------------------------------
log "building Release segmentd (build-release) and the ceilings (build-bench)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j2 --target segmentd >/dev/null
cmake -S bench -B "$bb" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$bb" -j2 --target suite >/dev/null
SD=$root/build-release/segmentd

work=$(mktemp -d /tmp/sd-suite-XXXXXX)
# cleanup stops our own background jobs (`jobs -p`) only
cleanup() {
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
F=$work/figures.env # key=value lines, read by the report at the end
: >"$F"
fig() { printf '%s=%s\n' "$1" "$2" >>"$F"; }
jget() { # json-line key -> value
  "$py" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

# ---- machine ----------------------------------------------------------------
fig machine_nproc "$(nproc)"
fig machine_cpu "$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')"
fig machine_ram "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
fig machine_kernel "$(uname -sr)"
fig machine_commit "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
fig machine_load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
fig machine_psi_start "$(awk '/some/ {print $2}' /proc/pressure/cpu 2>/dev/null || echo n/a)"
fig machine_fs "$(df -T "$work" | awk 'NR==2 {print $2}') on $(df "$work" | awk 'NR==2 {print $1}')"
fig cfg_users "$USERS"; fig cfg_ev_per_user "$EV_PER_USER"
fig cfg_ingest_rows "$INGEST_ROWS"; fig cfg_texts "$TEXTS"; fig cfg_dur "$DUR"
fig cfg_km_repeats "$KM_REPEATS"

# ---- ceilings that need no server: sgemm, the k-means core, sqlite ---------
log "ceiling_sgemm: 100000 x 256 . 64^T, 20 calls, 1 and 2 OpenBLAS threads"
"$bb/ceiling_sgemm" 100000 256 64 20 1,2 >"$work/sgemm.json"
fig sgemm1_ms "$(jget "$(sed -n 1p "$work/sgemm.json")" ms_median)"
fig sgemm1_best "$(jget "$(sed -n 1p "$work/sgemm.json")" ms_best)"
fig sgemm1_gflops "$(jget "$(sed -n 1p "$work/sgemm.json")" gflops)"
fig sgemm2_ms "$(jget "$(sed -n 2p "$work/sgemm.json")" ms_median)"
fig sgemm2_best "$(jget "$(sed -n 2p "$work/sgemm.json")" ms_best)"

# The core of bench/kmeans.sh (same data, same peers), best of KM_REPEATS.
log "k-means core of bench/kmeans.sh (segmentd, faiss, scikit-learn; 1 thread)"
mkdir -p "$work/km"
km=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
  "$bb/kmeans_bench" "$work/km" 100000 256 64 20 1234 "$KM_REPEATS")
peers=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
  "$py" "$here/kmeans_peers.py" "$work/km")
"$py" - "$km" "$peers" >>"$F" <<'PY'
import json, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
it = o["iters"]
print("km_seconds=%.4f" % o["seconds"])
print("km_seed_seconds=%.4f" % o["seed_seconds"])
# 20 updates + 20 more assignment passes than the 0-iteration fit
print("km_iter_ms=%.2f" % (1e3 * (o["seconds"] - o["seed_seconds"]) / it))
print("km_inertia=%.6e" % p["segmentd_inertia"])
print("faiss_seconds=%.4f" % p["faiss"]["seconds"])
print("faiss_version=%s" % p["faiss"]["version"])
print("sk_inertia=%.6e" % p["sklearn"]["inertia"])
print("sk_iters=%d" % p["sklearn"]["iters"])
print("sk_version=%s" % p["sklearn"]["version"])
PY
rm -f "$work"/km/*.f32 "$work"/km/*.i32

log "ceiling_sqlite: $INGEST_ROWS event rows, 1,000 per transaction"
"$bb/ceiling_sqlite" "$work/ceiling.db" "$INGEST_ROWS" "$USERS" 1000 1 >"$work/sqlite.json"
fig sqlite_rows_s "$(jget "$(cat "$work/sqlite.json")" rows_per_s)"
rm -f "$work"/ceiling.db*

# ---- segmentd: start, ingest, load ------------------------------------------
sd_pid=
start_sd() { # -> sd_pid, url; returns once /readyz answers 200
  rm -f "$work/port"
  local t0
  t0=$(date +%s.%N)
  "$SD" serve --listen 127.0.0.1:0 --db "$work/sd.db" --port-file "$work/port" \
    >>"$work/sd.log" 2>&1 &
  sd_pid=$!
  for _ in $(seq 3000); do
    if [ -s "$work/port" ]; then
      url="http://127.0.0.1:$(cat "$work/port")"
      [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ] && break
    fi
    sleep 0.005
  done
  ready_s=$(echo "$(date +%s.%N) - $t0" | bc -l)
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
anon_kb() { awk '/RssAnon/ {print $2}' "/proc/$1/status"; } # heap, no file pages
# waits (bounded) until space $1 has a model and is not re-assigning
wait_model() {
  for _ in $(seq "${2:-300}"); do
    curl -s "$url/v1/spaces" | "$py" -c 'import json,sys
s=[x for x in json.load(sys.stdin)["spaces"] if x["name"]==sys.argv[1]][0]
sys.exit(0 if s["model_version"] > 0 and not s["reassigning"] else 1)' "$1" && return 0
    sleep 0.2
  done
  return 1
}

# waits (bounded, 2 minutes) until no re-cluster job is queued or running
wait_jobs() {
  "$py" - "$url" <<'PY' || log "warning: background jobs still running"
import json, sys, time, urllib.request, urllib.error
url, end = sys.argv[1], time.time() + 120
while time.time() < end:
    busy, j = False, 1
    while True:
        try:
            with urllib.request.urlopen("%s/v1/jobs/%d" % (url, j)) as r:
                busy |= json.load(r).get("state") in ("queued", "running")
        except urllib.error.HTTPError:
            break
        j += 1
    if not busy:
        sys.exit(0)
    time.sleep(0.25)
sys.exit(1)
PY
}

log "segmentd: start on an empty database"
start_sd
sleep 1
fig rss_empty_kb "$(rss_kb "$sd_pid")"
fig anon_empty_kb "$(anon_kb "$sd_pid")"

# The measured ingest runs in steady state: a first model exists and no
# re-cluster runs beside it (the first model is trained once a space holds
# --train-min points; on an empty database that training would share the two
# vCPUs with the measured phase).
WARM=20000
log "warm-up: $WARM events, then wait for the first segments model"
"$bb/loadgen" events "$url" "$WARM" "$USERS" 10000 2 0 5 >/dev/null
wait_model segments 300 || log "warning: no segments model yet"
wait_jobs

log "event ingest: $INGEST_ROWS events, batches of 1,000, 4 clients"
ing=$("$bb/loadgen" events "$url" "$INGEST_ROWS" "$USERS" 1000 4 0 1)
echo "$ing" >"$work/ingest.json"
fig ingest_rows_s "$(jget "$ing" rows_per_s)"
fig ingest_p99_ms "$(jget "$ing" batch_ms_p99)"
fig ingest_429 "$(jget "$ing" s429)"

rest=$((USERS * EV_PER_USER - INGEST_ROWS - WARM))
if [ "$rest" -gt 0 ]; then
  dl=$((LOAD_UNTIL - SECONDS)); [ "$dl" -lt 30 ] && dl=30
  log "loading the remaining $rest events (batches of 10,000, 4 clients, <= ${dl}s)"
  load=$(LOADGEN_DEADLINE=$dl "$bb/loadgen" events "$url" "$rest" "$USERS" 10000 4 0 2)
  fig load_rows_s "$(jget "$load" rows_per_s)"
  fig events_loaded "$((WARM + INGEST_ROWS + $(jget "$load" rows)))"
else
  fig events_loaded "$((WARM + INGEST_ROWS))"
fi

# texts: BANKING77 (train + test) as JSON string lines, cycled
B77=${BANKING77_DIR:-$root/../shared/data/banking77}
"$py" - "$B77" "$work/texts.jsonl" <<'PY'
import csv, json, os, sys
with open(sys.argv[2], "w") as out:
    for name in ("train.csv", "test.csv"):
        with open(os.path.join(sys.argv[1], name), newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                out.write(json.dumps(r["text"]) + "\n")
PY
log "texts: 2,000 to train the intents model, then $TEXTS measured"
"$bb/loadgen" texts "$url" 2000 "$USERS" 1000 4 "$work/texts.jsonl" 9 >/dev/null
wait_model intents 300 || log "warning: no intents model yet"
wait_jobs # the segments re-cluster that follows the encoder refit
txt=$("$bb/loadgen" texts "$url" "$TEXTS" "$USERS" 1000 4 "$work/texts.jsonl" 1)
echo "$txt" >"$work/texts.json"
fig texts_s "$(jget "$txt" rows_per_s)"
fig texts_p99_ms "$(jget "$txt" batch_ms_p99)"

wait_jobs
wait_model segments 300 || log "warning: segments model not settled"
sleep 1
fig rss_loaded_kb "$(rss_kb "$sd_pid")"
fig anon_loaded_kb "$(anon_kb "$sd_pid")"
fig db_mib "$(du -sm "$work" | cut -f1)"

# ---- lookups next to ceiling_http --------------------------------------------
awk -v n="$USERS" 'BEGIN {for (i = 0; i < n; i++) print "u" i}' >"$work/users.txt"
bytes=0
for i in $(seq 0 $((USERS / 20)) $((USERS - 1)) | head -20); do
  bytes=$((bytes + $(curl -s "$url/v1/users/u$i/segment" | wc -c)))
done
body=$((bytes / 20))
fig answer_bytes "$body"
"$bb/ceiling_http" --port-file "$work/cport" --body-bytes "$body" 2>/dev/null &
ceil_pid=$!
for _ in $(seq 200); do [ -s "$work/cport" ] && break; sleep 0.02; done
curl_ceil="http://127.0.0.1:$(cat "$work/cport")"

wrk_run() { # url conns seconds -> "rps p50_ms p99_ms non2xx"
  local out
  out=$(cd "$here" && wrk -t2 -c"$2" -d"$3"s --latency -s lookup.lua "$1" -- "$work/users.txt")
  echo "$out" >>"$work/wrk.log"
  echo "$out" | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                     if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ {rps = $2} $1 == "50%" {p50 = ms($2)} $1 == "99%" {p99 = ms($2)}
    /Non-2xx/ {bad = $NF}
    END {printf "%s %.3f %.3f %d\n", rps, p50, p99, bad}'
}
metric() { # name -> value in a /metrics scrape (0 when absent)
  curl -s "$url/metrics" | awk -v n="$1" '$1 == n {v = $2} END {print v + 0}'
}
hits0=$(metric segmentd_lookup_cache_hits_total)
miss0=$(metric segmentd_lookup_cache_misses_total)
for c in 8 64; do
  log "lookups, wrk -c$c ${DUR}s: ceiling_http, then segmentd"
  read -r r a p b < <(wrk_run "$curl_ceil" "$c" "$DUR")
  fig "ceil_c${c}_rps" "$r"; fig "ceil_c${c}_p50" "$a"; fig "ceil_c${c}_p99" "$p"
  read -r r a p b < <(wrk_run "$url" "$c" "$DUR")
  fig "sd_c${c}_rps" "$r"; fig "sd_c${c}_p50" "$a"; fig "sd_c${c}_p99" "$p"
  fig "sd_c${c}_non2xx" "$b"
done

fig cache_hits "$(( $(metric segmentd_lookup_cache_hits_total) - hits0 ))"
fig cache_misses "$(( $(metric segmentd_lookup_cache_misses_total) - miss0 ))"
log "batch lookup: 1,000 ids, median of 20"
bl=$("$bb/loadgen" lookup "$url" "$USERS" 1000 20)
fig batch_ms "$(jget "$bl" ms_median)"
fig batch_p90_ms "$(jget "$bl" ms_p90)"
fig batch_found "$(jget "$bl" found_share)"
fig batch_server_ms "$(jget "$bl" server_ms_median)"
fig batch_repeat_ms "$(jget "$bl" repeat_ms_median)"
fig batch_repeat_server_ms "$(jget "$bl" repeat_server_ms_median)"
kill "$ceil_pid" 2>/dev/null || true
wait "$ceil_pid" 2>/dev/null || true

# ---- mixed load --------------------------------------------------------------
rate=$("$py" -c 'import sys; print(int(float(sys.argv[1]) / 2))' "$(grep '^ingest_rows_s=' "$F" | cut -d= -f2)")
mrows=$(( (rate * DUR / 1000 + 1) * 1000 ))
log "mixed: lookups wrk -c8 ${DUR}s while ingesting $rate events/s"
"$bb/loadgen" events "$url" "$mrows" "$USERS" 1000 4 "$rate" 3 >"$work/mixed_ingest.json" &
lg=$!
mout=$(cd "$here" && wrk -t2 -c8 -d"$DUR"s --latency -s suite_lookup.lua "$url" -- "$work/users.txt")
echo "$mout" >>"$work/wrk.log"
wait "$lg" || true
mi=$(cat "$work/mixed_ingest.json")
fig mixed_rate "$rate"
fig mixed_ingest_rows_s "$(jget "$mi" rows_per_s)"
fig mixed_ingest_429 "$(jget "$mi" s429)"
fig mixed_ingest_5xx "$(( $(jget "$mi" s5xx) + $(jget "$mi" s503) ))"
echo "$mout" | awk '
  function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                   if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v }
  /Requests\/sec/ {print "mixed_rps=" $2} $1 == "99%" {print "mixed_p99=" ms($2)}
  /^status/ {split($3, a, "="); split($4, b, "="); print "mixed_lookup_429=" a[2]; print "mixed_lookup_5xx=" b[2]}' >>"$F"

# ---- profile of the biggest gap ------------------------------------------------
prof_target=$("$py" - "$F" <<'PY'
import sys
f = dict(l.rstrip("\n").split("=", 1) for l in open(sys.argv[1]) if "=" in l)
g = lambda k: float(f[k])
gaps = {  # how many times the ceiling is ahead of segmentd
    "lookup_c8": g("ceil_c8_rps") / g("sd_c8_rps"),
    "lookup_c64": g("ceil_c64_rps") / g("sd_c64_rps"),
    "ingest": g("sqlite_rows_s") / g("ingest_rows_s"),
    "kmeans": g("km_iter_ms") / g("sgemm1_ms"),
}
k = max(gaps, key=gaps.get)
print(k, "%.2f" % gaps[k])
PY
)
fig prof_target "${prof_target% *}"; fig prof_gap "${prof_target#* }"
if [ "$PROFILE" = 1 ] && command -v perf >/dev/null && [ "$SECONDS" -lt 460 ]; then
  target=${prof_target% *}
  # perf record -g with DWARF unwinding: segmentd and Debian's libraries are
  # built without frame pointers, so -g's default (fp) loses most callers.
  PERF_REC="perf record --call-graph dwarf,16384 -F 499"
  log "perf record -g of segmentd under the biggest gap's load: $target"
  case $target in
    lookup_c8|lookup_c64)
      c=${target#lookup_c}
      (cd "$here" && wrk -t2 -c"$c" -d"$((DUR + 2))"s -s lookup.lua "$url" -- "$work/users.txt" >/dev/null) &
      lp=$!; sleep 1
      $PERF_REC -o "$work/perf.data" -p "$sd_pid" -- sleep "$DUR" >/dev/null 2>&1 || true
      wait "$lp" || true ;;
    ingest)
      "$bb/loadgen" events "$url" "$INGEST_ROWS" "$USERS" 1000 4 0 4 >/dev/null &
      lp=$!; sleep 1
      $PERF_REC -o "$work/perf.data" -p "$sd_pid" -- sleep "$DUR" >/dev/null 2>&1 || true
      wait "$lp" || true ;;
    kmeans)
      mkdir -p "$work/km2"
      OPENBLAS_NUM_THREADS=1 $PERF_REC -o "$work/perf.data" -- \
        "$bb/kmeans_bench" "$work/km2" 100000 256 64 20 1234 1 >/dev/null 2>&1 || true ;;
  esac
  if [ -s "$work/perf.data" ]; then
    perf report -i "$work/perf.data" --no-children --sort dso,symbol -g none \
      --percent-limit 0.7 --stdio 2>/dev/null | grep -E '^ +[0-9]' | sed 's/[ -]*$//' | head -30 >"$work/perf_self.txt" || true
    perf report -i "$work/perf.data" --no-children --dsos segmentd --sort symbol -g none \
      --percent-limit 0.2 --stdio 2>/dev/null | grep -E '^ +[0-9]' | sed 's/[ -]*$//' | head -15 >"$work/perf_sd.txt" || true
    perf report -i "$work/perf.data" --children --sort symbol -g none \
      --percent-limit 2 --stdio 2>/dev/null | grep -E '^ +[0-9]' | grep -v '\[k\]' |
      grep -v ' 0x0000' | sed 's/[ -]*$//' | head -40 >"$work/perf_children.txt" || true
    perf report -i "$work/perf.data" --no-children --sort dso -g none \
      --stdio 2>/dev/null | grep -E '^ +[0-9]' | sed 's/[ -]*$//' | head -10 >"$work/perf_dso.txt" || true
  fi
else
  log "profile skipped (SUITE_PROFILE=$PROFILE, ${SECONDS}s elapsed)"
fi

# ---- restart -------------------------------------------------------------------
models() { curl -s "$url/v1/spaces" | "$py" -c 'import json,sys
print(",".join("%s:v%d" % (s["name"], s["model_version"]) for s in json.load(sys.stdin)["spaces"]))'; }
fig models_before "$(models)"
log "restart: SIGTERM, wait, start, poll /readyz"
t0=$(date +%s.%N)
kill -TERM "$sd_pid"
wait "$sd_pid" 2>/dev/null || true
fig stop_s "$(echo "$(date +%s.%N) - $t0" | bc -l)"
start_sd
fig restart_s "$ready_s"
sleep 1
fig models_after "$(models)"
fig rss_restart_kb "$(rss_kb "$sd_pid")"
fig anon_restart_kb "$(anon_kb "$sd_pid")"
fig machine_load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
fig machine_psi_end "$(awk '/some/ {print $2}' /proc/pressure/cpu 2>/dev/null || echo n/a)"
fig elapsed_s "$SECONDS"

# ---- report ----------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
"$py" "$here/suite_report.py" "$F" "$work" "$OUT"
log "results written to ${OUT#"$root"/}"
