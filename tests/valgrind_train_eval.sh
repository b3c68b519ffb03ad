#!/bin/bash
# valgrind_train_eval.sh: a tiny `comine train` (2 steps, a checkpoint every step), its
# `--resume`, and `comine eval` of both peers as an ensemble, each under valgrind memcheck:
# zero errors and no definite leaks.  Called from .ci/run on the release build (not through
# ctest: it takes about a minute); skipped, exit 77, when valgrind is missing or the binary
# is built with AddressSanitizer.
# usage: bash valgrind_train_eval.sh <comine binary>
set -u
BIN=$1
if ! command -v valgrind >/dev/null 2>&1; then echo "valgrind_train_eval: skipped (no valgrind)"; exit 77; fi
if ldd "$BIN" 2>/dev/null | grep -q libasan; then echo "valgrind_train_eval: skipped (AddressSanitizer build)"; exit 77; fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/valgrind_train_eval.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail=0
VG=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite
    --num-callers=30)
vg() { # vg NAME ARGS...: run comine under memcheck; check its exit status and the summaries
    local name=$1; shift
    "${VG[@]}" --log-file="$TMP/$name.vg" "$BIN" "$@" >"$TMP/$name.out" 2>&1
    local rc=$?
    local errors lost
    errors=$(grep -Eo 'ERROR SUMMARY: [0-9]+' "$TMP/$name.vg" | grep -Eo '[0-9]+$')
    lost=$(grep -Eo 'definitely lost: [0-9,]+ bytes' "$TMP/$name.vg" | grep -Eo '[0-9,]+' | tr -d ,)
    if [ "$rc" = 0 ] && [ "${errors:-x}" = 0 ] && [ "${lost:-0}" = 0 ]; then
        echo "ok   comine $name under memcheck: 0 errors, 0 bytes definitely lost"
    else
        echo "FAIL comine $name under memcheck: exit $rc, ${errors:-?} errors, ${lost:-?} bytes definitely lost"
        tail -5 "$TMP/$name.out"
        grep -A25 -E 'Invalid|uninitialised|definitely lost in' "$TMP/$name.vg" | head -60
        fail=$((fail + 1))
    fi
}
"$BIN" synth --out "$TMP/D" --ids 4 --per-id 4 --size 32 >/dev/null 2>&1 &&
    "$BIN" pairs --data "$TMP/D" --out "$TMP/pairs.txt" --count 8 >/dev/null 2>&1 || { echo "FAIL data"; exit 1; }
vg train train --data "$TMP/D" --out "$TMP/run" --net iresnet18 --width 0.125 --input 32 --emb-dim 64 --batch 8 \
    --epochs 1 --tk 1 --threads 1 --decode-threads 2 --checkpoint-every 1 --quiet
vg train-resume train --resume "$TMP/run"
vg eval eval --model "$TMP/run/peer_a.model" --model2 "$TMP/run/peer_b.model" --pairs "$TMP/pairs.txt" --root "$TMP/D" \
    --threads 1 --decode-threads 2 --folds 2 --batch 8
if [ $fail = 0 ]; then echo "valgrind_train_eval: all checks passed"; else echo "valgrind_train_eval: $fail FAILED"; fi
[ $fail = 0 ]
