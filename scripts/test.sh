#!/usr/bin/env bash
# test.sh: build comine and run its test suite (the README's second command).
#   scripts/test.sh            release build + all tests
#   scripts/test.sh --all      also the AddressSanitizer+UBSan build and the build without OpenMP
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
run() { # name, cmake options...
  local dir=build/$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ctest --output-on-failure -j 1)
}
run release
if [ "${1:-}" = "--all" ]; then
  run sanitize -DCOMINE_SANITIZE=ON -DCOMINE_NATIVE=ON
  run noopenmp -DCOMINE_OPENMP=OFF
fi
