#!/usr/bin/env bash
# bench/soak.sh -- load and soak of segmentd (issue 9, item 6): a mixed
# workload for --duration seconds at the highest lookup load that keeps the
# p99 lookup latency under SOAK_P99_MS, on loopback only (127.0.0.1).
#
# usage: bench/soak.sh [--duration S] [--short] [--bin PATH] [--out FILE]
#   --duration S  seconds of the soak (default 600; --short: 30)
#   --short       the test-suite version (ctest soak_short): small data, no
#                 probe search (SOAK_CONNS connections), no results file
#                 unless --out; fails on any 5xx or transport error, on no
#                 traffic of a kind, or on RSS growth above SOAK_RSS_FAIL_PCT
#   --bin PATH    the segmentd to run (default: Release build-release/segmentd,
#                 built here)
#   --out FILE    results markdown (default bench/results/<date>-soak.md;
#                 --short: none)
# env: SOAK_USERS (20000; short 600)  users, SOAK_EVENTS_PER_USER (10) events each
#      SOAK_TEXTS (4000; short 1200)  texts loaded before the run
#      SOAK_MIX_RATE (60; short 40)   background mix requests/s (at most)
#      SOAK_P99_MS (5)                lookup p99 bound of the probe search
#      SOAK_PROBE_S (10)              seconds of each probe step
#      SOAK_CONNS                     skip the search: lookup connections
#      SOAK_RSS_FAIL_PCT (short: 50)  RSS growth that fails the run (full: none,
#                                     the 5% target is a printed verdict)
#      SOAK_WARM_S (120; short: 0)    seconds of the soak workload run before
#                                     the measured soak (not measured)
#      SOAK_SERVE_ARGS                more `segmentd serve` flags (split on
#                                     spaces), e.g. "--sqlite-mmap-mb 0"
#
# The workload: wrk with soak_lookup.lua (GET /v1/users/{id}/segment,
# random known users; latency percentiles and status counts) and, beside it,
# wrk with soak_mix.lua (paced: event batches of 20, text batches of 5,
# segment cluster reads, drift reads). The probe search doubles the lookup
# connections (1, 2, 4, ... 64), each step a SOAK_PROBE_S run with the mix
# beside it, after one unmeasured warm-up run, and keeps the last count whose
# p99 was under SOAK_P99_MS (wrk is closed-loop: more connections = a higher
# offered rate; when even 1 misses, the soak runs at 1 and says so). Then
# SOAK_WARM_S of the soak's own workload, not measured: every user looked up
# (the lookup cache holds one answer per user), SQLite's page caches and
# glibc's arenas filled. RSS (VmRSS, and its parts: RssAnon, the process's
# own memory; RssFile + RssShmem, the database pages SQLite maps in, which
# grow with the file) is sampled every 5 s of the measured soak; "after
# warm-up" is its first sample (with SOAK_WARM_S 0: the sample at min(60 s,
# duration / 5)).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
DUR=600 SHORT=0 BIN= OUT=
while [ $# -gt 0 ]; do
  case $1 in
    --duration) DUR=$2; shift 2 ;;
    --short) SHORT=1; DUR=30; shift ;;
    --bin) BIN=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "soak.sh: unknown argument $1 (see the header of bench/soak.sh)" >&2; exit 2 ;;
  esac
done
if [ "$SHORT" = 1 ]; then
  USERS=${SOAK_USERS:-600} TEXTS=${SOAK_TEXTS:-1200} MIX_RATE=${SOAK_MIX_RATE:-40}
  CONNS=${SOAK_CONNS:-4} RSS_FAIL=${SOAK_RSS_FAIL_PCT:-50} WARM_S=${SOAK_WARM_S:-0}
else
  USERS=${SOAK_USERS:-20000} TEXTS=${SOAK_TEXTS:-4000} MIX_RATE=${SOAK_MIX_RATE:-60}
  CONNS=${SOAK_CONNS:-} RSS_FAIL=${SOAK_RSS_FAIL_PCT:-} WARM_S=${SOAK_WARM_S:-120}
  OUT=${OUT:-$root/bench/results/$(date -u +%F)-soak.md}
fi
EPU=${SOAK_EVENTS_PER_USER:-10}
P99_MS=${SOAK_P99_MS:-5}
PROBE_S=${SOAK_PROBE_S:-10}
MIX_T=2 # mix threads = connections

log() { printf '[%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

if [ "$SHORT" = 0 ]; then
  SD_DEPS_EXTRA="wrk" "$root/scripts/deps.sh"
fi
command -v wrk >/dev/null || die "wrk is not installed (scripts/deps.sh installs it)"
if [ -z "$BIN" ]; then
  log "building Release segmentd (build-release)"
  cmake -S "$root" -B "$root/build-release" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$root/build-release" -j2 --target segmentd >/dev/null
  BIN=$root/build-release/segmentd
fi

work=$(mktemp -d /tmp/sd-soak-XXXXXX)
sd_pid=
cleanup() { # our own children only
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  [ -n "$sd_pid" ] && kill -9 "$sd_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# ---- server and data ----------------------------------------------------------
# the first models train once half the users (at most 1,000) are loaded
"$BIN" serve --listen 127.0.0.1:0 --db "$work/sd.db" --port-file "$work/port" \
  --train-min $((USERS / 2 < 1000 ? USERS / 2 : 1000)) ${SOAK_SERVE_ARGS:-} \
  >>"$work/sd.log" 2>&1 &
sd_pid=$!
for _ in $(seq 600); do
  [ -s "$work/port" ] && url="http://127.0.0.1:$(cat "$work/port")" &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ] && break
  sleep 0.05
done
[ -n "${url:-}" ] || { tail -20 "$work/sd.log" >&2; die "segmentd did not start"; }
log "segmentd $BIN at $url (pid $sd_pid)"

# Batches of 1,000 items generated with awk and posted with curl.
post_batches() { # kind file-of-items
  local n=0
  split -l 1000 "$2" "$work/batch-"
  for f in "$work"/batch-*; do
    { printf '{"%s":[' "$1"; paste -sd, "$f"; printf ']}'; } >"$work/body.json"
    code=$(curl -s -o "$work/resp.json" -w '%{http_code}' -H 'Content-Type: application/json' \
      --data-binary @"$work/body.json" "$url/v1/$1")
    [ "$code" = 200 ] || { cat "$work/resp.json" >&2; die "loading $1: HTTP $code"; }
    n=$((n + $(wc -l <"$f")))
    rm -f "$f"
  done
  log "loaded $n $1"
}
now_ms=$(($(date +%s) * 1000))
awk -v u="$USERS" -v e="$EPU" -v now="$now_ms" 'BEGIN { srand(7);
  split("view buy search cart share login review rate", t, " ");
  for (i = 0; i < u; i++) for (j = 0; j < e; j++)
    printf "{\"event_id\":\"l-%d-%d\",\"user_id\":\"u%d\",\"type\":\"%s\",\"ts\":%d}\n",
      i, j, i, t[1 + (i % 3) * 2 + int(rand() * 2.5)], now - int(rand() * 7 * 86400000) }' \
  >"$work/events.ndjson"
awk -v n="$TEXTS" -v u="$USERS" 'BEGIN { srand(11);
  w[0] = "refund card payment charge bank fee transfer"; w[1] = "weather rain sunny forecast storm wind cloud";
  w[2] = "football match goal score team league coach"; w[3] = "delivery parcel courier late address tracking box";
  for (i = 0; i < n; i++) { k = split(w[i % 4], a, " "); s = "";
    for (j = 0; j < 6; j++) s = s (j ? " " : "") a[1 + int(rand() * k)];
    printf "{\"text_id\":\"l-%d\",\"user_id\":\"u%d\",\"text\":\"%s\"}\n", i, i % u, s } }' \
  >"$work/texts.ndjson"
post_batches events "$work/events.ndjson"
post_batches texts "$work/texts.ndjson"
rm -f "$work"/*.ndjson

wait_models() { # bounded: both spaces have a model and none is re-assigning
  for _ in $(seq 600); do
    curl -s "$url/v1/spaces" | python3 -c 'import json, sys
s = {x["name"]: x for x in json.load(sys.stdin)["spaces"]}
ok = all(n in s and s[n]["model_version"] and not s[n].get("reassigning") for n in ("segments", "intents"))
sys.exit(0 if ok else 1)' && return 0
    sleep 0.5
  done
  return 1
}
wait_models || die "no segments and intents models after 300 s"
log "models trained"
awk -v n="$USERS" 'BEGIN {for (i = 0; i < n; i++) print "u" i}' >"$work/users.txt"

# ---- runs ---------------------------------------------------------------------
# run_pair conns seconds tag -> lookup and mix outputs in $work/{lk,mx}-<tag>.txt
run_pair() {
  local t=$(($1 < 2 ? 1 : 2))
  (cd "$here" && wrk -t"$MIX_T" -c"$MIX_T" -d"$2"s -s soak_mix.lua "$url" -- \
    "$USERS" "$MIX_RATE" "$3" "$MIX_T" >"$work/mx-$3.txt" 2>&1) &
  local mix=$!
  (cd "$here" && wrk -t"$t" -c"$1" -d"$2"s --timeout 10s -s soak_lookup.lua "$url" -- \
    "$work/users.txt" >"$work/lk-$3.txt" 2>&1)
  wait "$mix"
}
field() { # file line-prefix key -> value of key=value on that line
  awk -v p="$2" -v k="$3" 'index($0, p) == 1 {for (i = 1; i <= NF; i++)
    {split($i, kv, "="); if (kv[1] == k) print kv[2]}}' "$1"
}
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }

probe_rows= probe_note=
if [ -z "$CONNS" ]; then
  log "warm-up: $PROBE_S s of lookups and mix (not measured)"
  run_pair 2 "$PROBE_S" warm
  CONNS=1 probe_note="no count kept the p99 under $P99_MS ms: the soak ran at 1 connection"
  for c in 1 2 4 8 16 32 64; do
    run_pair "$c" "$PROBE_S" "p$c"
    p99=$(field "$work/lk-p$c.txt" lookup p99)
    r=$(rps "$work/lk-p$c.txt")
    under=$(awk -v a="$p99" -v b="$P99_MS" 'BEGIN {print (a < b) ? "yes" : "no"}')
    log "probe: $c connections: $r lookups/s, p99 $p99 ms (< $P99_MS ms: $under)"
    probe_rows+="| $c | $r | $(field "$work/lk-p$c.txt" lookup p50) | $p99 | $under |"$'\n'
    [ "$under" = yes ] || break
    CONNS=$c probe_note="the soak ran at $c connections, the last count under $P99_MS ms"
  done
fi

if [ "$WARM_S" -gt 0 ]; then
  log "warm-up: $WARM_S s of the soak workload at $CONNS connections (not measured)"
  run_pair "$CONNS" "$WARM_S" soakwarm
fi
rss_line() { # label -> "label VmRSS RssAnon RssFile+RssShmem" (kB)
  awk -v t="$1" '/^VmRSS/ {r = $2} /^RssAnon/ {a = $2} /^RssFile/ {f = $2}
    /^RssShmem/ {f += $2} END {print t, r, a, f}' "/proc/$sd_pid/status"
}
smaps_by() { # -> "what kB" lines: Rss per kind of mapping (smaps)
  awk '/^[0-9a-f]+-[0-9a-f]+ / {p = $6; n = split(p, a, "/"); b = a[n]
         k = (b ~ /^sd\.db/) ? b : (p ~ /^\//) ? "other-files" : "anonymous"}
       /^Rss:/ {s[k] += $2} END {for (k in s) print k, s[k]}' "/proc/$sd_pid/smaps"
}
warm_at=0 warm_what="start of the measured soak, after $WARM_S s of warm-up"
if [ "$WARM_S" = 0 ]; then
  warm_at=$((DUR / 5 < 60 ? DUR / 5 : 60)) warm_what="$warm_at s into the soak"
fi
sample_rss() { # every 5 s: seconds VmRSS RssAnon mapped (kB); smaps at warm_at
  local t0=$SECONDS
  while kill -0 "$sd_pid" 2>/dev/null; do
    rss_line $((SECONDS - t0)) >>"$work/rss.txt"
    if [ ! -s "$work/smaps-w.txt" ] && [ $((SECONDS - t0)) -ge "$warm_at" ]; then
      smaps_by >"$work/smaps-w.txt" || true
    fi
    sleep 5
  done
}
db_mib() { du -cm "$work"/sd.db* | tail -1 | cut -f1; } # with its WAL
db_w=$(db_mib)
: >"$work/rss.txt"
sample_rss &
sampler=$!
log "soak: $DUR s, $CONNS lookup connections, mix at most $MIX_RATE requests/s"
run_pair "$CONNS" "$DUR" soak
rss_line end >>"$work/rss.txt"
smaps_by >"$work/smaps-e.txt" || true
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true

# ---- graceful stop --------------------------------------------------------------
kill -TERM "$sd_pid"
set +e
wait "$sd_pid"
stop_rc=$?
set -e
sd_pid=

# ---- figures ----------------------------------------------------------------------
lk=$work/lk-soak.txt mx=$work/mx-soak.txt
grep -q '^lookup ' "$lk" || { cat "$lk" >&2; die "the lookup run reported nothing"; }
grep -q '^mix ' "$mx" || { cat "$mx" >&2; die "the mix run reported nothing"; }
read -r _ rss_w anon_w map_w < <(awk -v w="$warm_at" '$1 != "end" && $1 >= w {print; exit}' "$work/rss.txt")
read -r _ rss_e anon_e map_e < <(grep '^end ' "$work/rss.txt")
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", 100 * (b - a) / a}'; }
g_rss=$(pct "$rss_w" "$rss_e") g_anon=$(pct "$anon_w" "$anon_e") g_map=$(pct "$map_w" "$map_e")
verdict() { awk -v g="$1" -v t="$2" 'BEGIN {print (g < t) ? "met" : "NOT met"}'; }
l5=$(field "$lk" status 5xx) m5=$(field "$mx" mix 5xx)
lerr=$(field "$lk" lookup errors)
per_s() { awk -v n="$1" -v d="$DUR" 'BEGIN {printf "%.1f", n / d}'; }
report=$(cat <<EOF
# segmentd soak, $(date -u '+%F %H:%M UTC')

Machine: $(nproc) vCPUs ($(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')),
$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM, $(uname -sr); shared with other
work during the run (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)).
Commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown) (plus the working tree). Binary: $BIN.
Data: $USERS users x $EPU events, $TEXTS texts, then the soak's own ingest.
Command: $([ -n "${SOAK_SERVE_ARGS:-}" ] && echo "SOAK_SERVE_ARGS=\"$SOAK_SERVE_ARGS\" ")bench/soak.sh --duration $DUR$([ "$SHORT" = 1 ] && echo " --short").

## Probe search (lookup connections, each ${PROBE_S} s with the mix beside)

| connections | lookups/s | p50 ms | p99 ms | p99 < $P99_MS ms |
|---|---|---|---|---|
${probe_rows:-| (skipped: SOAK_CONNS=$CONNS) | | | | |
}
${probe_note}

## Soak: $DUR s, $CONNS lookup connections, mix paced to at most $MIX_RATE requests/s

| kind | rate |
|---|---|
| segment lookups | $(rps "$lk") /s |
| events ingested | $(per_s "$(field "$mx" mix events)") /s (batches of 20) |
| texts ingested | $(per_s "$(field "$mx" mix texts)") /s (batches of 5) |
| cluster reads | $(per_s "$(field "$mx" mix clusters)") /s |
| drift reads | $(per_s "$(field "$mx" mix drift)") /s |

Lookup latency (ms): p50 $(field "$lk" lookup p50), p90 $(field "$lk" lookup p90),
p99 $(field "$lk" lookup p99), p99.9 $(field "$lk" lookup p999)
(p99 < $P99_MS ms: $(verdict "$(field "$lk" lookup p99)" "$P99_MS")).

"After warm-up": $warm_what.

| memory | after warm-up | end | growth | < 5% |
|---|---|---|---|---|
| RSS (VmRSS) | $((rss_w / 1024)) MiB | $((rss_e / 1024)) MiB | $g_rss% | $(verdict "$g_rss" 5) |
| of which RssAnon (heap: the process's own memory) | $((anon_w / 1024)) MiB | $((anon_e / 1024)) MiB | $g_anon% | $(verdict "$g_anon" 5) |
| of which RssFile + RssShmem (database pages mapped by SQLite) | $((map_w / 1024)) MiB | $((map_e / 1024)) MiB | $g_map% | (info) |

Resident pages by mapping (/proc/PID/smaps Rss, MiB, after warm-up -> end):
$(awk 'NR == FNR {w[$1] = $2; next} {e[$1] = $2} END {for (k in e) w[k] += 0
  for (k in w) {printf "%s%s %.1f -> %.1f", sep, k, w[k] / 1024, e[k] / 1024; sep = "; "}}' \
  "$work/smaps-w.txt" "$work/smaps-e.txt" 2>/dev/null)
(sd.db: the database pages read through SQLite's memory map; sd.db-shm: the
WAL index; other-files: code of segmentd and its libraries).

Database files (with the WAL): $db_w MiB after warm-up, $(db_mib) MiB at the end (the soak's ingest grows it).

RSS over the soak (s: VmRSS / RssAnon / mapped MiB): $(awk -v d="$DUR" '$1 != "end" &&
  ($1 % (d >= 300 ? 60 : 10) < 5) {printf "%s%d: %d / %d / %d", sep, $1, $2 / 1024, $3 / 1024, $4 / 1024;
  sep = ", "}' "$work/rss.txt").

Answers: 5xx lookups $l5, 5xx mix $m5 (must be 0: $([ "$l5" = 0 ] && [ "$m5" = 0 ] && echo met || echo "NOT met"));
429 lookups $(field "$lk" status 429), mix $(field "$mx" mix 429); other non-2xx lookups
$(field "$lk" status other), mix $(field "$mx" mix other); wrk transport errors $lerr.
Graceful stop (SIGTERM): exit status $stop_rc.
EOF
)
echo "$report"
if [ -n "$OUT" ]; then
  mkdir -p "$(dirname "$OUT")"
  echo "$report" >"$OUT"
  log "written to $OUT"
fi

# ---- verdict ------------------------------------------------------------------------
fail=0
[ "$l5" = 0 ] && [ "$m5" = 0 ] || { log "FAIL: 5xx answers (lookups $l5, mix $m5)"; fail=1; }
[ "$lerr" = 0 ] || { log "FAIL: $lerr wrk transport errors"; fail=1; }
[ "$stop_rc" = 0 ] || { log "FAIL: exit status $stop_rc on SIGTERM"; fail=1; }
for k in "status 2xx" "mix events" "mix texts" "mix clusters" "mix drift"; do
  f=$lk; [ "${k%% *}" = mix ] && f=$mx
  [ "$(field "$f" "${k%% *}" "${k#* }")" -gt 0 ] || { log "FAIL: no $k"; fail=1; }
done
[ "$(field "$lk" status other)" = 0 ] && [ "$(field "$mx" mix other)" = 0 ] ||
  { log "FAIL: unexpected 4xx answers"; fail=1; }
if [ -n "$RSS_FAIL" ] && awk -v g="$g_rss" -v t="$RSS_FAIL" 'BEGIN {exit !(g >= t)}'; then
  log "FAIL: RSS grew $g_rss% (bound $RSS_FAIL%)"; fail=1
fi
exit "$fail"
