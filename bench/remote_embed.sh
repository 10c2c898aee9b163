#!/usr/bin/env bash
# Remote-embedder throughput: segmentd (--embedder openai) against the fake
# embedder (tests/fake_embedder) at fake model latency 0 and 50 ms and
# --embed-inflight 1, 4, 16; each beside the ceiling of the fake alone driven
# directly at the same concurrency and encoding. --dim D (default 64) sets the
# embedding dimension of both; --encoding float|base64 (default float) is
# passed to segmentd as --embed-encoding and asked of the fake by the
# ceiling. Builds Release, runs bench/remote_embed.py (stdlib, Debian's
# /usr/bin/python3), prints one table and writes it with the machine
# description to bench/results/<date>-remote-embed.md (OUT=... to write
# elsewhere). Bounded: the driver is killed after 280 s; a normal run takes
# about a minute, --dim 768 --encoding float about three (on a busy machine
# add --texts 10000 to stay well inside the bound).
#
# usage: bench/remote_embed.sh [extra remote_embed.py flags, e.g. --texts 5000
#        --dim 768 --encoding base64]
#        env BUILD_DIR (default build-release: build-bench is bench/'s own
#        CMake project, see bench/CMakeLists.txt), OUT (results file)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-release}
out=${OUT:-bench/results/$(date +%F)-remote-embed.md}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target segmentd fake_embedder >/dev/null
work=$(mktemp -d /tmp/sd-remote-embed-XXXXXX)
drv=
cleanup() {
  set +e
  # the driver first (it stops its children), then anything it left behind
  if [ -n "$drv" ]; then
    kill "$drv" 2>/dev/null
    wait "$drv" 2>/dev/null
  fi
  if [ -f "$work/pids" ]; then
    local mine="$(realpath "$build/segmentd") $(realpath "$build/tests/fake_embedder")"
    while read -r p; do # only if the PID still runs one of our binaries
      exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
      case " $mine " in *" $exe "*) kill "$p" 2>/dev/null || true ;; esac
    done <"$work/pids"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
timeout 280 /usr/bin/python3 bench/remote_embed.py --bin "$build/segmentd" \
  --fake "$build/tests/fake_embedder" --work "$work" --out "$out" "$@" &
drv=$!
wait "$drv"
drv=
