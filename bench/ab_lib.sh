# bench/ab_lib.sh -- the server helpers of the A/B benches (mmap_ab.sh,
# ingest_ab.sh), sourced by them. Expects: $work (a scratch directory),
# log and die functions. Sets: sd_pid, url.

sd_pid=

start_sd() { # binary db extra-serve-flags... -> sd_pid, url (bounded: 30 s)
  local bin=$1 db=$2
  shift 2
  rm -f "$work/port"
  OPENBLAS_NUM_THREADS=1 "$bin" serve --listen 127.0.0.1:0 --db "$db" \
    --port-file "$work/port" "$@" >>"$work/sd.log" 2>&1 &
  sd_pid=$!
  for _ in $(seq 3000); do
    if [ -s "$work/port" ]; then
      url="http://127.0.0.1:$(cat "$work/port")"
      [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ] && return 0
    fi
    sleep 0.01
  done
  die "segmentd did not become ready (log: $work/sd.log)"
}

stop_sd() { kill "$sd_pid"; wait "$sd_pid" || true; sd_pid=; }

settled() { # bounded: the segments space has a model and is not re-assigning
  for _ in $(seq 600); do
    curl -s "$url/v1/spaces" | /usr/bin/python3 -c 'import json, sys
s = [x for x in json.load(sys.stdin)["spaces"] if x["name"] == "segments"][0]
sys.exit(0 if s["model_version"] and not s.get("reassigning") else 1)' && return 0
    sleep 0.5
  done
  die "no settled segments model after 300 s"
}

rss_mib() { # -> "VmRSS RssAnon mapped" of the server, MiB
  awk '/^VmRSS/ {r = $2} /^RssAnon/ {a = $2} /^RssFile/ {f = $2} /^RssShmem/ {f += $2}
    END {printf "%d %d %d", r / 1024, a / 1024, f / 1024}' "/proc/$sd_pid/status"
}

ab_cleanup() { # the EXIT trap
  [ -n "$sd_pid" ] && kill "$sd_pid" 2>/dev/null && wait "$sd_pid" 2>/dev/null
  rm -rf "$work"
}
