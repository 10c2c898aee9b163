#!/usr/bin/env bash
# Experiment assignment at lookup speed: loads users, lets the segments
# model train, creates a stratified experiment, then measures with wrk on
# a Release build over loopback, in one run:
#   1. first assignments/s (each one a short writer transaction), walking
#      unseen users in order;
#   2. repeat (sticky) assignment GETs against GET /v1/users/{id}/segment,
#      alternated twice (segment, assignment, segment, assignment) with
#      the same connections, threads and users; prints req/s and latency
#      of both and the ratio assignment / segment.
#
# Figures of one run on the development machine (2 shared vCPUs): README,
# Performance.
#
# usage: bench/experiments.sh [users=10000] [seconds=10] [connections=64]
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-10000}; SECS=${2:-10}; CONNS=${3:-64}; THREADS=2
FIRST_SECS=2 # short, so that unseen users last the whole first run
SD_DEPS_EXTRA="wrk python3 bc" scripts/deps.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j2 --target segmentd >/dev/null
work=$(mktemp -d /tmp/sd-bench-exp-XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"' EXIT
# 4 events and 4 texts per user
/usr/bin/python3 bench/gen_batches.py "$work/data" "$((USERS * 4))" 2000 "$USERS" >/dev/null
build-release/segmentd serve --listen 127.0.0.1:0 --db "$work/bench.db" \
  --port-file "$work/port" --train-min 1000 >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
url="http://127.0.0.1:$(cat "$work/port")"

for f in "$work/data"/events_*.json "$work/data"/texts_*.json; do
  kind=$(basename "$f" | cut -d_ -f1)
  code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$url/v1/$kind" \
    -H 'content-type: application/json' --data-binary @"$f")
  [ "$code" = 200 ] || { echo "ingest failed: $code" >&2; exit 1; }
done
for _ in $(seq 600); do # a segments model, every user moved onto it
  curl -s "$url/v1/spaces" | /usr/bin/python3 -c 'import json,sys
s=json.load(sys.stdin)["spaces"][1]
sys.exit(0 if s["model_version"] > 0 and not s["reassigning"] else 1)' && break
  sleep 0.2
done
curl -sf -XPOST "$url/v1/experiments" -H 'content-type: application/json' -d \
  '{"name":"bench","variants":["control","treatment"],"stratify":"segments",
    "outcome":{"event_type":"checkout","window_days":7}}' >/dev/null

wrk_run() { # env..., -> wrk output (D: seconds, default SECS)
  (cd bench && env "$@" wrk -t"$THREADS" -c"$CONNS" -d"${D:-$SECS}s" --latency \
    -s "${SCRIPT}" "$url" -- "$work/data/users.txt")
}
field() { awk -v k="$2" '$1==k {print $2}' <<<"$1"; }
rps_of() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
non2xx() { awk '/Non-2xx/ {print $NF}' <<<"$1"; }
assigned() { curl -s "$url/v1/experiments/bench" | /usr/bin/python3 -c \
  'import json,sys; print(json.load(sys.stdin)["users"])'; }

# 1. first assignments (until every user has one)
SCRIPT=experiment.lua
first=$(D=$FIRST_SECS wrk_run WALK=1 THREADS=$THREADS EXP=bench)
n_first=$(assigned)
first_rate=$(echo "$n_first / $FIRST_SECS" | bc -l)
while [ "$(assigned)" -lt "$USERS" ]; do wrk_run WALK=1 THREADS=$THREADS EXP=bench >/dev/null; done

# 2. repeat assignments vs segment lookups, alternated
declare -a seg_rps seg_p50 seg_p99 asg_rps asg_p50 asg_p99
bad=0
for round in 1 2; do
  SCRIPT=lookup.lua; out=$(wrk_run EXPLAIN=0)
  seg_rps+=("$(rps_of "$out")"); seg_p50+=("$(field "$out" 50%)"); seg_p99+=("$(field "$out" 99%)")
  [ -z "$(non2xx "$out")" ] || bad=$((bad + $(non2xx "$out")))
  SCRIPT=experiment.lua; out=$(wrk_run EXP=bench)
  asg_rps+=("$(rps_of "$out")"); asg_p50+=("$(field "$out" 50%)"); asg_p99+=("$(field "$out" 99%)")
  [ -z "$(non2xx "$out")" ] || bad=$((bad + $(non2xx "$out")))
done
[ "$(assigned)" -eq "$USERS" ] || { echo "repeat lookups assigned new users" >&2; exit 1; }

printf '\nsegmentd experiment assignment benchmark (%s users, wrk -t%s -c%s, %s s per run)\n' \
  "$USERS" "$THREADS" "$CONNS" "$SECS"
note=""; [ "$n_first" -lt "$USERS" ] || note=" (every user: a lower bound)"
printf '%-40s %12.0f  (%s assigned in %s s%s; p50 %s, p99 %s)\n' "first assignments/s (writer)" \
  "$first_rate" "$n_first" "$FIRST_SECS" "$note" "$(field "$first" 50%)" "$(field "$first" 99%)"
printf '%-40s %12s %12s\n' "" "round 1" "round 2"
printf '%-40s %12s %12s\n' "segment lookups/s" "${seg_rps[0]}" "${seg_rps[1]}"
printf '%-40s %12s %12s\n' "segment latency p50 / p99" "${seg_p50[0]}/${seg_p99[0]}" "${seg_p50[1]}/${seg_p99[1]}"
printf '%-40s %12s %12s\n' "repeat assignments/s" "${asg_rps[0]}" "${asg_rps[1]}"
printf '%-40s %12s %12s\n' "assignment latency p50 / p99" "${asg_p50[0]}/${asg_p99[0]}" "${asg_p50[1]}/${asg_p99[1]}"
printf '%-40s %12.2f %12.2f\n' "ratio assignment / segment (req/s)" \
  "$(echo "${asg_rps[0]} / ${seg_rps[0]}" | bc -l)" "$(echo "${asg_rps[1]} / ${seg_rps[1]}" | bc -l)"
printf '%-40s %12s\n' "non-2xx responses (all lookup runs)" "$bad"
