#!/bin/bash
# test_mpi_bench.sh: `comine bench` under mpiexec with 2 ranks prints one JSON object (rank 0's)
# with "ranks": 2, the bytes each rank hands to the collectives per step, and peak_rss_mb; a
# one-process bench says "ranks": 1 and sends nothing.  A binary without MPI started as one of
# several processes (a launcher's environment) refuses to run: checked where comine is built
# without MPI.
# usage: bash test_mpi_bench.sh <comine binary> <source dir>
set -u
BIN=$1
MPIEXEC=${COMINE_MPIEXEC:-}
fail=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_mpi_bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
BENCH=(bench --net iresnet18 --width 0.125 --input 32 --batch 8 --classes 50 --steps 2 --warmup-steps 1 --threads 1 --json)

"$BIN" "${BENCH[@]}" >"$TMP/one.json" 2>&1
check "one process: \"ranks\": 1, nothing sent" grep -q '"ranks": 1, "bytes_sent_per_step": 0}' "$TMP/one.json"

if [ -z "$MPIEXEC" ] || ! [ -x "$MPIEXEC" ]; then
    # built without MPI: a launcher's environment with 2 processes is refused, 1 is accepted
    SLURM_STEP_NUM_TASKS=2 "$BIN" "${BENCH[@]}" >"$TMP/refused.txt" 2>&1
    rc=$?
    check "without MPI, started as one of 2 processes: refused (exit $rc)" test $rc -ne 0
    check "... with a message that says why" grep -q "built without MPI" "$TMP/refused.txt"
    OMPI_COMM_WORLD_SIZE=1 "$BIN" "${BENCH[@]}" >/dev/null 2>&1
    check "without MPI, one process under a launcher runs" test $? -eq 0
    [ $fail -eq 0 ] || exit 1
    echo "skip: the mpiexec part (comine built without MPI or mpiexec not found)"
    exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_mpi_yield_when_idle=1
"$MPIEXEC" -np 2 --oversubscribe "$BIN" "${BENCH[@]}" >"$TMP/two.json" 2>"$TMP/two.err"
check "2 ranks: exit 0" test $? -eq 0
check "2 ranks: one JSON object (rank 0 prints alone)" test "$(grep -c '^{' "$TMP/two.json")" = 1
check "2 ranks: \"ranks\": 2" grep -q '"ranks": 2' "$TMP/two.json"
check "2 ranks: bytes sent per step > 0" grep -Eq '"bytes_sent_per_step": [1-9]' "$TMP/two.json"
check "2 ranks: peak_rss_mb" grep -Eq '"peak_rss_mb": [1-9]' "$TMP/two.json"
cat "$TMP/two.json"
[ $fail -eq 0 ] || exit 1
exit 0
