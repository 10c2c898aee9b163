#!/usr/bin/env bash
# Quick start: install what is missing, build Release, serve on
# 127.0.0.1:8080 with ./var/segmentd.db and the built-in embedder.
# Extra arguments are passed to `segmentd serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j"$(nproc)" --target segmentd
mkdir -p var
exec build-release/segmentd serve --listen "${SEGMENTD_LISTEN:-127.0.0.1:8080}" \
  --db "${SEGMENTD_DB:-./var/segmentd.db}" "$@"
