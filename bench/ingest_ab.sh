#!/usr/bin/env bash
# bench/ingest_ab.sh -- event ingest of two segmentd binaries, A/B: does a
# change to the writer (its page cache, its reads through a memory map, its
# statements) move the rows/s it sustains and the memory it keeps?
# One database is loaded once; every run starts from a copy of it, so both
# binaries insert the same rows into the same b-trees. Loopback only,
# bounded (about 4 minutes on 2 vCPUs with the defaults).
#
# usage: bench/ingest_ab.sh BIN_A BIN_B [--out FILE]   (default: print only)
# env:   AB_USERS (50000)    users loaded, AB_EVENTS (20) events each
#        AB_ROWS (100000)    events of each measured run (batches of 1,000,
#                            4 clients, as the benchmark suite's ingest)
#        AB_ROUNDS (3)       A/B pairs, in alternating order
#
# Per run: loadgen events -> rows/s and batch latency; then the server's
# VmRSS, RssAnon and mapped file pages (RssFile + RssShmem) and the size of
# the WAL file after the run.
# Both binaries must read the database format of BIN_A (the loader).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
[ $# -ge 2 ] || { sed -n '2,18p' "$0" >&2; exit 2; }
A=$(realpath "$1") B=$(realpath "$2")
shift 2
OUT=
[ "${1:-}" = --out ] && OUT=$2
USERS=${AB_USERS:-50000} EVENTS=${AB_EVENTS:-20} ROWS=${AB_ROWS:-100000}
ROUNDS=${AB_ROUNDS:-3}
log() { printf '[%4ss] %s\n' "$SECONDS" "$*" >&2; }
die() { log "$*"; exit 1; }
cmake -S "$root/bench" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build-bench" -j"$(nproc)" --target loadgen >/dev/null
work=$(mktemp -d /tmp/sd-ingest-ab-XXXXXX)
. "$here/ab_lib.sh"
trap ab_cleanup EXIT

log "loading $USERS users x $EVENTS events with A"
start_sd "$A" "$work/base.db" --recluster-interval 0 --train-min 1000
"$root/build-bench/loadgen" events "$url" $((USERS * EVENTS)) "$USERS" 10000 2 0 5 >/dev/null
settled
stop_sd

one_run() { # label binary -> one result line
  rm -f "$work"/run.db*
  cp "$work/base.db" "$work/run.db"
  start_sd "$2" "$work/run.db" --recluster-interval 0
  local g m
  g=$("$root/build-bench/loadgen" events "$url" "$ROWS" "$USERS" 1000 4 0 7 |
    /usr/bin/python3 -c 'import json, sys; j = json.load(sys.stdin)
if j["failed"] or j["other"]: sys.exit("batches failed: %s" % j)
print(round(j["rows_per_s"]), j["batch_ms_p50"], j["batch_ms_p99"])')
  m=$(rss_mib)
  local wal
  wal=$(du -m "$work/run.db-wal" | cut -f1)
  stop_sd
  echo "$1 $g $m $wal"
}

: >"$work/runs.txt"
for r in $(seq "$ROUNDS"); do
  order="A B"
  [ $((r % 2)) = 0 ] && order="B A"
  for x in $order; do
    log "round $r: $x"
    if [ "$x" = A ]; then one_run A "$A"; else one_run B "$B"; fi >>"$work/runs.txt"
  done
done

report=$(
  echo "# Ingest A/B, $(date -u '+%F %H:%M UTC')"
  echo
  echo "Machine: $(nproc) vCPUs, $(uname -sr), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "A: $A ($(stat -c %y "$A" | cut -d. -f1)); B: $B ($(stat -c %y "$B" | cut -d. -f1))."
  echo "Data: $USERS users x $EVENTS events (database $(du -cm "$work"/base.db* | tail -1 | cut -f1) MiB),"
  echo "then $ROWS events per run from a copy of it (loadgen: batches of 1,000, 4 clients)."
  echo "Command: bench/ingest_ab.sh A B (AB_ROUNDS=$ROUNDS)."
  echo
  echo "| binary | rows/s | batch p50 ms | batch p99 ms | VmRSS MiB | RssAnon MiB | mapped MiB | WAL file MiB |"
  echo "|---|---|---|---|---|---|---|---|"
  awk '{printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8}' "$work/runs.txt"
  echo
  for x in A B; do
    awk -v x="$x" '$1 == x' "$work/runs.txt" | sort -k2 -n |
      awk -v x="$x" '{r[NR] = $2} END {printf "- %s: median rows/s %s\n", x, r[int((NR + 1) / 2)]}'
  done
)
echo "$report"
[ -z "$OUT" ] || { echo "$report" >"$OUT"; log "written to $OUT"; }
