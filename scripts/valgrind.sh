#!/usr/bin/env bash
# The integration suite under valgrind memcheck (README, "Fuzzing and
# valgrind"). Not part of scripts/test.sh: memcheck makes the server 10-100x
# slower.
#
#   scripts/valgrind.sh [CTEST ARGS...]   e.g. scripts/valgrind.sh -R api_basic
#
# Installs valgrind when missing (scripts/deps.sh), builds a Debug build
# without sanitizers into build-valgrind/ (env SD_VALGRIND_DIR) with
# -DSD_VALGRIND=ON, and runs `ctest -L valgrind`: every integration test
# (vg_test_*) with each server it starts under
#   valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite
# (tests/integration/harness_memcheck.c; suppressions for third-party
# libraries in tests/integration/valgrind.supp). A test fails on any
# memcheck error in the server. Extra valgrind options: VALGRIND_OPTS.
set -euo pipefail
cd "$(dirname "$0")/.."
SD_DEPS_EXTRA="valgrind" scripts/deps.sh
OUT=${SD_VALGRIND_DIR:-build-valgrind}
cmake -S . -B "$OUT" -DCMAKE_BUILD_TYPE=Debug -DSD_SANITIZE=OFF \
  -DSD_VALGRIND=ON >/dev/null
cmake --build "$OUT" -j"$(nproc)"
cd "$OUT"
ctest -L valgrind --output-on-failure "$@"
