#!/usr/bin/env bash
# The packaging steps of the Dockerfile, runnable on this machine, so they
# are exercised without a Docker engine.
#
#   scripts/package.sh build PREFIX   Release build (the Dockerfile's build
#                                     stage), installed into the staging
#                                     prefix PREFIX (bin/segmentd, share/doc)
#   scripts/package.sh check PREFIX   what the runtime stage relies on: every
#                                     shared library of PREFIX/bin/segmentd
#                                     resolves (ldd), the runtime packages the
#                                     Dockerfile installs provide them, and the
#                                     binary starts as in the container (under
#                                     MemoryDenyWriteExecute when the kernel
#                                     has PR_SET_MDWE) and answers /healthz
#                                     and /readyz
#   scripts/package.sh quick BINARY   install an already built BINARY into a
#                                     temporary prefix and run `check` on it
#                                     (the ctest `package_check`, a few seconds)
#   scripts/package.sh all            build into ./build-package/stage, check
set -euo pipefail
cd "$(dirname "$0")/.."

# The runtime stage's packages (keep in sync with the Dockerfile).
RUNTIME_PKGS=(libmicrohttpd12 libjansson4 libopenblas0-pthread libsqlite3-0
              libcurl4 libssl3 ca-certificates curl)
# Libraries every debian:12-slim image has (libc, and apt's C++ runtime).
BASE_PKGS="libc6 libgcc-s1 libstdc++6 zlib1g"

die() { echo "package.sh: $*" >&2; exit 1; }

build() {
  local prefix=$1
  cmake -S . -B build-package -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build-package -j"$(nproc)" --target segmentd
  install -D -m 0755 build-package/segmentd "$prefix/bin/segmentd"
  strip "$prefix/bin/segmentd"
  install -D -m 0644 LICENSE "$prefix/share/doc/segmentd/LICENSE"
  echo "package.sh: installed into $prefix"
}

# Every library resolves, and each comes from a runtime package or one
# apt installs with them (sanitizer runtimes of a test build excepted).
check_libs() {
  local bin=$1 missing closure pkg bad=""
  missing=$(ldd "$bin" | grep 'not found' || true)
  [ -z "$missing" ] || die "unresolved libraries: $missing"
  closure=" $(apt-cache depends --recurse --installed --no-recommends \
    --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances \
    "${RUNTIME_PKGS[@]}" 2>/dev/null | grep -v '^ ' | tr '\n' ' ') $BASE_PKGS "
  local paths
  paths=$(ldd "$bin" | awk '/=> \//{print $3}' | xargs -r readlink -f)
  # one dpkg query for all: "pkg:arch: /path"
  while read -r pkg; do
    case "$closure" in
      *" $pkg "*) ;;
      *) case "$pkg" in
           libasan*|libubsan*) ;; # a sanitizer build (ctest), not the image
           *) bad="$bad $pkg" ;;
         esac ;;
    esac
  done < <(dpkg -S $paths 2>/dev/null | cut -d: -f1 | sort -u)
  [ -z "$bad" ] || die "packages of libraries the runtime image would lack:$bad"
  echo "package.sh: $(ldd "$bin" | wc -l) shared libraries resolve, all from" \
       "the runtime packages: ${RUNTIME_PKGS[*]}"
}

# Starts the binary as the container does and asks /healthz and /readyz.
check_run() {
  local bin=$1 tmp pid port
  tmp=$(mktemp -d)
  trap 'kill "${pid:-}" 2>/dev/null || true; wait "${pid:-}" 2>/dev/null || true
        rm -rf "$tmp"; trap - RETURN' RETURN
  # Under the kernel's MemoryDenyWriteExecute (prctl PR_SET_MDWE, as the
  # systemd unit sets it) when this kernel has it: OpenBLAS and the rest
  # must not need writable-executable memory.
  local mdwe=(python3 -c 'import ctypes, os, sys
if ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) != 0: print("package.sh: no PR_SET_MDWE here", file=sys.stderr)
os.execv(sys.argv[1], sys.argv[1:])')
  command -v python3 >/dev/null || mdwe=()
  SEGMENTD_LISTEN=127.0.0.1:0 SEGMENTD_DB="$tmp/segmentd.db" \
    SEGMENTD_PORT_FILE="$tmp/port" "${mdwe[@]}" "$bin" serve >"$tmp/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
  [ -s "$tmp/port" ] || { cat "$tmp/log" >&2; die "no port file"; }
  port=$(cat "$tmp/port")
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/healthz" | grep -q '"ok"' ||
    { cat "$tmp/log" >&2; die "/healthz did not answer ok"; }
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null ||
    { cat "$tmp/log" >&2; die "/readyz did not become ready"; }
  "$bin" version >/dev/null || die "segmentd version failed"
  kill -TERM "$pid"
  wait "$pid" || die "segmentd did not stop cleanly on SIGTERM"
  echo "package.sh: $bin serves /healthz and /readyz, stops cleanly"
}

check() {
  local bin=$1/bin/segmentd
  [ -x "$bin" ] || die "$bin missing"
  check_libs "$bin"
  check_run "$bin"
}

case "${1:-}" in
  build) [ $# -eq 2 ] || die "usage: package.sh build PREFIX"; build "$2" ;;
  check) [ $# -eq 2 ] || die "usage: package.sh check PREFIX"; check "$2" ;;
  quick)
    [ $# -eq 2 ] || die "usage: package.sh quick BINARY"
    stage=$(mktemp -d)
    install -D -m 0755 "$2" "$stage/bin/segmentd"
    (check "$stage") || { rm -rf "$stage"; exit 1; }
    rm -rf "$stage" ;;
  all) build "$PWD/build-package/stage"; check "$PWD/build-package/stage" ;;
  *) die "usage: package.sh build PREFIX | check PREFIX | quick BINARY | all" ;;
esac
