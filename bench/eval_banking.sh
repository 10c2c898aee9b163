#!/usr/bin/env bash
# One command for the BANKING77 quality bar: installs what is missing,
# builds Release, runs bench/eval_banking.py (segmentd over HTTP and the
# scikit-learn baseline in the same run). Extra arguments go to the script.
set -euo pipefail
cd "$(dirname "$0")/.."
SD_DEPS_EXTRA="python3-sklearn" scripts/deps.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j"$(nproc)" --target segmentd >/dev/null
exec /usr/bin/python3 bench/eval_banking.py "$@"
