#!/usr/bin/env bash
# Foundation figures: ingest texts/s and events/s for 10k-item runs, segment
# lookups/s with wrk (64 connections), and RSS, on a Release build over
# loopback. Bounded in time (about a minute). Prints one table.
#
# usage: bench/foundation.sh [items=10000] [batch=1000] [users=2000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}; BS=${2:-1000}; USERS=${3:-2000}
SD_DEPS_EXTRA="wrk python3 bc" scripts/deps.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j"$(nproc)" --target segmentd >/dev/null
work=$(mktemp -d /tmp/sd-bench-XXXXXX)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
/usr/bin/python3 bench/gen_batches.py "$work/data" "$N" "$BS" "$USERS"
build-release/segmentd serve --listen 127.0.0.1:0 --db "$work/bench.db" \
  --port-file "$work/port" --train-min 1000 >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
url="http://127.0.0.1:$(cat "$work/port")"

post_all() { # kind -> seconds for all batches, sequential, one connection
  local kind=$1 start end
  start=$(date +%s.%N)
  for f in "$work/data/${kind}"_*.json; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$url/v1/$kind" \
      -H 'content-type: application/json' --data-binary @"$f")
    [ "$code" = 200 ] || { echo "ingest failed: $code" >&2; exit 1; }
  done
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}

t_texts=$(post_all texts)
t_events=$(post_all events)
# lookups are measured against a segments model (trained in the background)
for _ in $(seq 600); do
  curl -s "$url/v1/spaces" | /usr/bin/python3 -c 'import json,sys
s=json.load(sys.stdin)["spaces"][1]
sys.exit(0 if s["model_version"] > 0 and not s["reassigning"] else 1)' && break
  sleep 0.2
done
rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
wrk_out=$(cd bench && wrk -t2 -c64 -d10s --latency -s lookup.lua "$url" -- "$work/data/users.txt")
rps=$(echo "$wrk_out" | awk '/Requests\/sec/ {print $2}')
p50=$(echo "$wrk_out" | awk '$1=="50%" {print $2}')
p99=$(echo "$wrk_out" | awk '$1=="99%" {print $2}')
non2xx=$(echo "$wrk_out" | awk '/Non-2xx/ {print $NF}')
wrk_ex=$(cd bench && EXPLAIN=1 wrk -t2 -c64 -d10s --latency -s lookup.lua "$url" -- "$work/data/users.txt")
rps_ex=$(echo "$wrk_ex" | awk '/Requests\/sec/ {print $2}')
p50_ex=$(echo "$wrk_ex" | awk '$1=="50%" {print $2}')
wrk_1=$(cd bench && EXPLAIN=1 wrk -t1 -c1 -d5s --latency -s lookup.lua "$url" -- "$work/data/users.txt")
p50_1=$(echo "$wrk_1" | awk '$1=="50%" {print $2}')
p99_1=$(echo "$wrk_1" | awk '$1=="99%" {print $2}')
rss_after_kb=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)

printf '\nsegmentd foundation benchmark (%s items, batches of %s, %s users)\n' "$N" "$BS" "$USERS"
printf '%-34s %12s\n' "figure" "value"
printf '%-34s %12.0f\n' "ingest texts/s (incl. embedding)" "$(echo "$N / $t_texts" | bc -l)"
printf '%-34s %12.0f\n' "ingest events/s" "$(echo "$N / $t_events" | bc -l)"
printf '%-34s %12s\n' "segment lookups/s (wrk -c64)" "$rps"
printf '%-34s %12s\n' "lookup latency p50" "$p50"
printf '%-34s %12s\n' "lookup latency p99" "$p99"
printf '%-34s %12s\n' "non-2xx lookups" "${non2xx:-0}"
printf '%-34s %12s\n' "explain lookups/s (wrk -c64)" "$rps_ex"
printf '%-34s %12s\n' "explain latency p50 (-c64)" "$p50_ex"
printf '%-34s %12s\n' "explain latency p50 (-c1)" "$p50_1"
printf '%-34s %12s\n' "explain latency p99 (-c1)" "$p99_1"
printf '%-34s %12s\n' "RSS after ingest (MiB)" "$((rss_kb / 1024))"
printf '%-34s %12s\n' "RSS after lookups (MiB)" "$((rss_after_kb / 1024))"
grep -E "trained" "$work/log" || true
