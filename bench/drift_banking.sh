#!/usr/bin/env bash
# Drift detection on BANKING77 (bench/drift_banking.py): false alarms of a
# stationary stream of 72 intents, then how fast 5 held-back intents are
# reported as an emerging cluster. Builds the Release server (build-release)
# and runs the script with Debian's python3 (numpy). Extra arguments go to
# the script; the report goes to bench/results/<date>-drift.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j"$(nproc)" --target segmentd >/dev/null
exec /usr/bin/python3 bench/drift_banking.py "$@"
