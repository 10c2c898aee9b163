#!/usr/bin/env bash
# Lints api/openapi.yaml with the pinned @redocly/cli (recommended rules);
# fails on any error and on any warning.
set -euo pipefail
cd "$(dirname "$0")"
out=$(node_modules/.bin/redocly lint --format=stylish ../../api/openapi.yaml 2>&1) || {
  echo "$out"
  exit 1
}
echo "$out"
if grep -Eq '[0-9]+ warnings?' <<<"$out"; then
  echo "openapi lint: warnings are failures" >&2
  exit 1
fi
