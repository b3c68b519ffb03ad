#!/bin/bash
# test_install.sh: `cmake --install` of the build tree that holds the binary, into a temporary
# prefix; then, against the installed tree only:
# - `bin/comine --version` and a program's comine_version() give project()'s version;
# - a C program built with `pkg-config --cflags --libs comine` (the shared library) runs and
#   uses the library (a data set is synthesised, opened, and a model is created and run);
# - the same program linked statically (`pkg-config --static`, libcomine.a) runs;
# - a CMake project with find_package(comine) builds it and runs it.
# usage: bash test_install.sh <comine binary> <source dir>
set -u
BIN=$1
SRC=$2
BUILD=$(dirname "$BIN")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_install.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT
fail=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
for tool in pkg-config cc; do
    command -v $tool >/dev/null || { echo "skipped: $tool not found"; exit 77; }
done
# a sanitized library needs its runtime loaded first by every program: not an installable build
if nm "$BIN" 2>/dev/null | grep -q __asan_init; then echo "skipped: a sanitizer build is not installed"; exit 77; fi
want=$(sed -nE 's/^project\(comine VERSION ([0-9.]+).*/\1/p' "$SRC/CMakeLists.txt")
P=$TMP/prefix
cmake --install "$BUILD" --prefix "$P" > "$TMP/install.log" 2>&1
check "cmake --install into a fresh prefix" test $? = 0
LIBDIR=$(dirname "$(find "$P" -name comine.pc | head -1)")/..
check "installed: bin/comine, headers, libcomine.so.N and .a, comine.pc, comineConfig.cmake" \
    test -x "$P/bin/comine" -a -f "$P/include/comine/core.h" -a -f "$P/include/comine/version.h" \
         -a -L "$LIBDIR/libcomine.so.${want%%.*}" -a -f "$LIBDIR/libcomine.a" \
         -a -f "$LIBDIR/cmake/comine/comineConfig.cmake"
check "bin/comine --version says $want" test "$("$P/bin/comine" --version)" = "comine $want"

cat > "$TMP/prog.c" <<'C'
/* a user's program: the library's version, a synthetic data set, a model's embedding */
#include <stdio.h>
#include <string.h>
#include <math.h>
#include "comine/version.h"
#include "comine/backend.h"
#include "comine/core.h"
#include "comine/data.h"
#include "comine/model.h"
#include "comine/synth.h"

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(comine_version(), COMINE_VERSION_STRING)) return 3;
    comine_synth_opts so = {.ids = 3, .per_id = 2, .size = 32, .seed = 1, .format = COMINE_SYNTH_PNG,
                            .jpeg_quality = 90};
    comine_dataset *ds = NULL;
    comine_arch arch;
    comine_model *m = NULL;
    if (comine_synth_write(argv[1], &so) || comine_dataset_open(&ds, argv[1], NULL) ||
        comine_arch_default(&arch, "iresnet18")) {
        fprintf(stderr, "%s\n", comine_last_error());
        return 1;
    }
    arch.width = 0.125f;
    arch.input = 32;
    arch.emb_dim = 16;
    if (comine_model_create(&m, &arch, comine_backend_cpu(), 1)) {
        fprintf(stderr, "%s\n", comine_last_error());
        return 1;
    }
    comine_model_init(m, 7);
    static float in[32 * 32 * 3], emb[16];
    comine_model_forward(m, emb, in, 1, false, NULL);
    int finite = 1;
    for (int k = 0; k < 16; k++) finite &= isfinite(emb[k]) != 0;
    printf("version %s samples %d classes %d finite %d\n", comine_version(), ds->n, ds->num_classes, finite);
    comine_model_free(m);
    comine_dataset_free(ds);
    return finite ? 0 : 2;
}
C
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
expect="version $want samples 6 classes 3 finite 1"
cc -std=c11 -o "$TMP/prog" "$TMP/prog.c" $(pkg-config --cflags --libs comine) -lm > "$TMP/cc.log" 2>&1
check "a program builds with pkg-config --cflags --libs comine" test $? = 0
out=$(LD_LIBRARY_PATH=$LIBDIR "$TMP/prog" "$TMP/synth1" 2>&1)
echo "     $out"
check "it runs on the installed libcomine.so" test "$out" = "$expect"
check "it links the shared library" grep -q "libcomine.so.${want%%.*}" <<< "$(LD_LIBRARY_PATH=$LIBDIR ldd "$TMP/prog")"
cc -std=c11 -o "$TMP/prog_static" "$TMP/prog.c" -I"$P/include" "$LIBDIR/libcomine.a" \
    $(pkg-config --static --libs-only-other --libs-only-l comine | sed 's/-lcomine//') >> "$TMP/cc.log" 2>&1
check "the same program links libcomine.a with pkg-config --static" test $? = 0
out=$("$TMP/prog_static" "$TMP/synth2" 2>&1)
check "the static program runs" test "$out" = "$expect"
check "the static program does not need libcomine.so" bash -c "! ldd '$TMP/prog_static' | grep -q libcomine"

mkdir -p "$TMP/cm"
cp "$TMP/prog.c" "$TMP/cm/"
cat > "$TMP/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(user C)
find_package(comine 0 REQUIRED)
add_executable(prog prog.c)
target_link_libraries(prog PRIVATE comine::comine m)
CM
cmake -S "$TMP/cm" -B "$TMP/cm/build" -DCMAKE_PREFIX_PATH="$P" > "$TMP/cm.log" 2>&1 &&
    cmake --build "$TMP/cm/build" >> "$TMP/cm.log" 2>&1
check "a CMake project builds with find_package(comine)" test $? = 0
out=$(LD_LIBRARY_PATH=$LIBDIR "$TMP/cm/build/prog" "$TMP/synth3" 2>&1)
check "and runs" test "$out" = "$expect"
[ $fail = 0 ] || { cat "$TMP/install.log" "$TMP/cc.log" "$TMP/cm.log" | tail -40; }
echo "test_install: $([ $fail = 0 ] && echo "all passed" || echo "$fail FAILED")"
exit $((fail > 0))
