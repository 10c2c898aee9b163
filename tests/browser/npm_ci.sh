#!/usr/bin/env bash
# Installs the pinned npm packages of tests/browser (npm ci into
# tests/browser/node_modules), unless node_modules already matches
# package-lock.json. Run by ctest as the browser_npm fixture.
set -euo pipefail
cd "$(dirname "$0")"
command -v npm >/dev/null || { echo "npm is missing: run scripts/deps.sh" >&2; exit 1; }
stamp=node_modules/.segmentd-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "tests/browser/node_modules is up to date"
  exit 0
fi
start=$(date +%s)
npm ci --no-audit --no-fund --loglevel=error
echo "$want" >"$stamp"
echo "npm ci: $(($(date +%s) - start)) s"
