#!/usr/bin/env bash
# Installs the Debian 12 packages segmentd needs to build, test and serve.
# Idempotent: only missing packages are installed (apt-get update runs only
# when something is missing). Uses sudo when not root.
set -euo pipefail

PKGS=(build-essential cmake pkg-config git curl ca-certificates
      libmicrohttpd-dev libjansson-dev libopenblas-dev libsqlite3-dev
      libcurl4-openssl-dev libssl-dev sqlite3 cppcheck
      prometheus) # promtool, for tests/integration/test_metrics_http.c
# The dashboard's browser test and the OpenAPI checks (tests/browser):
# Chromium, and Node.js with npm unless a Node.js with npm is installed
# already (e.g. from NodeSource, whose nodejs conflicts with Debian's npm).
PKGS+=(chromium)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PKGS+=(nodejs npm)
fi
PKGS+=(python3-yaml systemd) # scripts/lint_deploy.sh: YAML, systemd-analyze
PKGS+=(wrk) # the short soak test (bench/soak.sh --short)
PKGS+=(clang libclang-rt-14-dev) # scripts/fuzz.sh (test fuzz_smoke): libFuzzer
if [ "${SD_DEPS_EXTRA:-}" ]; then
  read -r -a extra <<<"$SD_DEPS_EXTRA"
  PKGS+=("${extra[@]}")
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "segmentd: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Only promtool is wanted from prometheus: keep its server from running.
if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null &&
   [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
