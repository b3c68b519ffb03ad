#!/usr/bin/env bash
# fuzz/build.sh: build the libFuzzer harnesses of fuzz/ with clang (ASan + UBSan + libFuzzer)
# into BUILD (default build/fuzz), and write the generated seeds (a model file, a checkpoint)
# into the corpora under tests/fuzz_corpus/.
#   fuzz/build.sh [BUILD]
# Needs clang (14) with libFuzzer (Debian: clang-14, libclang-rt-14-dev where -fsanitize=fuzzer
# is missing).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$src/build/fuzz}
cc=${CC:-$(command -v clang-14 || command -v clang)}
jobs=${JOBS:-2}
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
mkdir -p "$out"
cmake -S "$src" -B "$out/lib" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$cc" \
  -DCOMINE_TESTS=OFF -DCOMINE_OPENMP=OFF -DCOMINE_NATIVE=OFF -DCOMINE_MPI=OFF \
  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link $san" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
cmake --build "$out/lib" -j "$jobs" --target comine_train comine_dist comine_interop comine_eval comine_data comine_loss \
  comine_models comine_nn comine_core
libs=""
for a in train dist interop eval data loss models nn core; do libs="$libs $out/lib/libcomine_$a.a"; done
plplot=""
# comine_eval links PLplot when CMake found it (the report's plots)
if grep -q '^PLPLOT_LIBRARY:FILEPATH=/' "$out/lib/CMakeCache.txt" && grep -q '^PLPLOT_INCLUDE_DIR:PATH=/' "$out/lib/CMakeCache.txt"; then
  plplot="-lplplot"
fi
for f in "$src"/fuzz/fuzz_*.c; do
  name=$(basename "$f" .c)
  extra=""
  [ "$name" = fuzz_args ] && extra="$src/src/cli/args.c"
  "$cc" -O1 -g -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -fsanitize=fuzzer $san \
    -I"$src/include" -I"$out/lib/generated" -I"$src/src" -I"$src/fuzz" "$f" $extra $libs \
    -ldnnl -lopenblas -lturbojpeg -lpng $plplot -lpthread -lm -o "$out/$name"
  echo "built $out/$name"
done
# Seeds of the checksummed formats (first byte 1: the harness recomputes the CRCs), when absent.
corpus=$src/tests/fuzz_corpus
seed() { # harness, file
  [ -s "$2" ] && return 0
  mkdir -p "$(dirname "$2")"
  COMINE_FUZZ_WRITE_SEED="$out/seed.tmp" "$out/$1" >/dev/null 2>&1
  { printf '\001'; cat "$out/seed.tmp"; } >"$2"
  rm -f "$out/seed.tmp"
  echo "seed written: $2"
}
seed fuzz_model "$corpus/model/seed_iresnet18_w002.model"
seed fuzz_checkpoint "$corpus/checkpoint/seed_two_peers.bin"
