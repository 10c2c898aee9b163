#!/usr/bin/env bash
# libFuzzer runs of the parsers (tests/fuzz/README.md).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 30; 0 = only replay the seeds and the
# regressions, no fuzzing). TARGETs: fuzz_ingest fuzz_router fuzz_tokenize
# fuzz_lsa_load (the "fuzz_" prefix may be left out; default: all).
# Installs clang + libFuzzer when missing (scripts/deps.sh), builds into
# build-fuzz/ (env SD_FUZZ_DIR) with ASan + UBSan, replays
# tests/fuzz/regressions/<target>/, then fuzzes from a scratch copy of
# tests/fuzz/corpus/<target>/ (build-fuzz/corpus/<target>/, kept between
# runs). Exit status: 0 when every target ran clean, 1 on any crash, leak,
# timeout or out-of-memory (the input is left under
# build-fuzz/artifacts/<target>/ and its path printed), 2 on a usage or
# build error.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(fuzz_ingest fuzz_router fuzz_tokenize fuzz_lsa_load)
secs=${1:-30}
[ $# -gt 0 ] && shift
if ! [[ "$secs" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
  exit 2
fi
[ $# -eq 0 ] && set -- "${ALL[@]}"
targets=()
for t in "$@"; do
  t=fuzz_${t#fuzz_}
  case " ${ALL[*]} " in
    *" $t "*) targets+=("$t") ;;
    *) echo "fuzz.sh: unknown target $t (known: ${ALL[*]})" >&2; exit 2 ;;
  esac
done

# Per-target input cap (bytes): room past each limit under test.
max_len() {
  case $1 in
    fuzz_ingest) echo 24576 ;;   # texts up to 16384 + the JSON around them
    fuzz_router) echo 8300 ;;    # method byte + the 8 KiB path cap
    fuzz_tokenize) echo 17000 ;; # texts are capped at 16384 by ingest
    fuzz_lsa_load) echo 8192 ;;
  esac
}

scripts/deps.sh # clang + libclang-rt-14-dev (libFuzzer) are in its list
CC=${SD_FUZZ_CC:-$(command -v clang-14 || command -v clang || true)}
if [ -z "$CC" ]; then
  echo "fuzz.sh: no clang found after scripts/deps.sh" >&2
  exit 2
fi
OUT=${SD_FUZZ_DIR:-build-fuzz}
mkdir -p "$OUT/logs"
echo "== building with $CC into $OUT/ (log: $OUT/logs/build.log)"
if ! make -f tests/fuzz/Makefile -j"$(nproc)" OUT="$OUT" CC="$CC" \
       >"$OUT/logs/build.log" 2>&1; then
  tail -40 "$OUT/logs/build.log" >&2
  echo "fuzz.sh: build failed" >&2
  exit 2
fi

export OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
FLAGS=(-timeout=10 -rss_limit_mb=2048)

failed=()
for t in "${targets[@]}"; do
  bin=$OUT/$t
  work=$OUT/corpus/$t
  art=$OUT/artifacts/$t
  log=$OUT/logs/$t.log
  mkdir -p "$work" "$art"
  find "tests/fuzz/corpus/$t" -maxdepth 1 -type f ! -name '.*' \
    -exec cp -f {} "$work/" \;
  [ "$t" = fuzz_lsa_load ] && "$OUT/gen_lsa_seeds" "$work"
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")

  # 1. every regression input and every seed, once each
  mapfile -t inputs < <(find "tests/fuzz/regressions/$t" "tests/fuzz/corpus/$t" \
                          -maxdepth 1 \
                          -type f ! -name '.*' 2>/dev/null | sort)
  if [ ${#inputs[@]} -gt 0 ] &&
     ! "$bin" "${FLAGS[@]}" "${inputs[@]}" >"$log" 2>&1; then
    bad=$(grep -o 'Running: .*' "$log" | tail -1 | cut -d' ' -f2-)
    echo "$t: FAIL replaying ${bad:-?}"
    grep -E 'ERROR|invariant|SUMMARY|runtime error|#[0-9]+ 0x' "$log" | head -25
    echo "   log: $log"
    failed+=("$t")
    continue
  fi
  [ "$secs" -eq 0 ] && { echo "$t: replayed ${#inputs[@]} inputs, ok"; continue; }

  # 2. fuzz for $secs seconds
  stamp=$OUT/.stamp-$t
  touch "$stamp"
  rc=0
  "$bin" "${FLAGS[@]}" -max_total_time="$secs" -max_len="$(max_len "$t")" \
    -artifact_prefix="$art/" -print_final_stats=1 "${dict[@]}" \
    "$work" >"$log" 2>&1 || rc=$?
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
  if [ $rc -eq 0 ]; then
    echo "$t: ok ${secs}s, ${execs:-?} execs (${eps:-?}/s), cov ${cov:-?}," \
         "ft ${ft:-?}, corpus ${corp:-?}, peak rss ${rss:-?} MB"
  else
    echo "$t: FAIL (exit $rc) after ${execs:-?} execs, cov ${cov:-?}"
    grep -E 'ERROR|invariant|SUMMARY|runtime error|#[0-9]+ 0x' "$log" | head -25
    find "$art" -type f -newer "$stamp" | sed 's/^/   crash input: /'
    echo "   log: $log"
    failed+=("$t")
  fi
  rm -f "$stamp"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: all clean (${targets[*]})"
