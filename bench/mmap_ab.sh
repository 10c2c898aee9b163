#!/usr/bin/env bash
# bench/mmap_ab.sh -- does reading the database through a memory map
# (--sqlite-mmap-mb, default 1024) pay for the RSS it costs? An A/B of
# segment lookups that reach SQLite: one database, loaded once, then the
# server restarted alternately with the map on (1024) and off (0), always
# with --lookup-cache 0 so that every lookup reads its user's rows.
# Loopback only, bounded (about 5 minutes on 2 vCPUs).
#
# usage: bench/mmap_ab.sh [--out FILE]   (default: print only)
# env:   AB_USERS (50000)   users loaded, AB_EVENTS (20) events each
#        AB_ROUNDS (3)      on/off pairs, in alternating order
#        AB_DURATION (8)    seconds of each wrk run
#
# Per run: wrk -t2 -c8 with bench/lookup.lua (GET /v1/users/{id}/segment,
# random known users) -> requests/s, p50, p99; then loadgen lookup (POST
# /v1/segments/lookup, 1,000 random ids, median of 10) -> client and server
# ms; and the server's VmRSS, RssAnon and mapped file pages after both.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
OUT=
[ "${1:-}" = --out ] && OUT=$2
USERS=${AB_USERS:-50000} EVENTS=${AB_EVENTS:-20} ROUNDS=${AB_ROUNDS:-3}
DUR=${AB_DURATION:-8}
log() { printf '[%4ss] %s\n' "$SECONDS" "$*" >&2; }
die() { log "$*"; exit 1; }
command -v wrk >/dev/null || die "wrk missing (apt-get install wrk)"
cmake -S "$root" -B "$root/build-release" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build-release" -j"$(nproc)" --target segmentd >/dev/null
cmake -S "$root/bench" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build-bench" -j"$(nproc)" --target loadgen >/dev/null
work=$(mktemp -d /tmp/sd-mmap-ab-XXXXXX)
cp "$root/build-release/segmentd" "$work/segmentd"
. "$here/ab_lib.sh"
trap ab_cleanup EXIT

log "loading $USERS users x $EVENTS events"
start_sd "$work/segmentd" "$work/sd.db" --train-min 1000 --recluster-interval 0
"$root/build-bench/loadgen" events "$url" $((USERS * EVENTS)) "$USERS" 10000 2 0 5 >/dev/null
settled
stop_sd
awk -v n="$USERS" 'BEGIN {for (i = 0; i < n; i++) print "u" i}' >"$work/users.txt"

one_run() { # mmap_mb -> one result line
  start_sd "$work/segmentd" "$work/sd.db" --recluster-interval 0 --lookup-cache 0 \
    --sqlite-mmap-mb "$1"
  local w b
  w=$(cd "$here" && wrk -t2 -c8 -d"$DUR"s --latency -s lookup.lua "$url" -- "$work/users.txt" |
    awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                          if (v ~ /s$/) return v * 1000; return v }
         /Requests\/sec/ {r = $2} $1 == "50%" {a = ms($2)} $1 == "99%" {p = ms($2)}
         END {printf "%s %.3f %.3f", r, a, p}')
  b=$("$root/build-bench/loadgen" lookup "$url" "$USERS" 1000 10 |
    /usr/bin/python3 -c 'import json, sys; j = json.load(sys.stdin)
print(j["ms_median"], j["server_ms_median"])')
  local m
  m=$(rss_mib)
  stop_sd
  echo "$1 $w $b $m"
}

: >"$work/runs.txt"
for r in $(seq "$ROUNDS"); do
  order="1024 0"
  [ $((r % 2)) = 0 ] && order="0 1024"
  for mb in $order; do
    log "round $r: --sqlite-mmap-mb $mb"
    one_run "$mb" >>"$work/runs.txt"
  done
done

report=$(
  echo "# --sqlite-mmap-mb A/B, $(date -u '+%F %H:%M UTC')"
  echo
  echo "Machine: $(nproc) vCPUs, $(uname -sr), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Commit $(git -C "$root" rev-parse --short HEAD). Data: $USERS users x $EVENTS events"
  echo "(database $(du -cm "$work"/sd.db* | tail -1 | cut -f1) MiB). Every lookup reads SQLite (--lookup-cache 0)."
  echo "Command: bench/mmap_ab.sh (AB_ROUNDS=$ROUNDS, AB_DURATION=$DUR)."
  echo
  echo "| mmap MiB | wrk -c8 lookups/s | p50 ms | p99 ms | batch of 1,000: client ms | server ms | VmRSS MiB | RssAnon MiB | mapped MiB |"
  echo "|---|---|---|---|---|---|---|---|---|"
  awk '{printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9}' "$work/runs.txt"
  echo
  echo "Medians:"
  echo
  for mb in 1024 0; do
    awk -v m="$mb" '$1 == m' "$work/runs.txt" | sort -k2 -n | awk -v m="$mb" '
      {r[NR] = $2; s[NR] = $6} END {printf "- %s MiB: lookups/s %s; ", m, r[int((NR + 1) / 2)]}'
    awk -v m="$mb" '$1 == m' "$work/runs.txt" | sort -k6 -n | awk '
      {s[NR] = $6} END {printf "batch server ms %s\n", s[int((NR + 1) / 2)]}'
  done
)
echo "$report"
[ -z "$OUT" ] || { echo "$report" >"$OUT"; log "written to $OUT"; }
