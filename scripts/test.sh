#!/usr/bin/env bash
# test.sh: build comine and run its test suite (the README's second command).
#   scripts/test.sh            release build + all tests
#   scripts/test.sh --all      also the AddressSanitizer+UBSan build and the build without OpenMP
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
run() { # name, ctest options, cmake options...
  local dir=build/$1 ctest_opts=$2; shift 2
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ctest --output-on-failure -j 1 $ctest_opts)
}
run release ""
if [ "${1:-}" = "--all" ]; then
  # the minutes-long end-to-end training (label "long") runs in the release build only
  run sanitize "-LE long" -DCOMINE_SANITIZE=ON
  run noopenmp "-LE long" -DCOMINE_OPENMP=OFF
fi
