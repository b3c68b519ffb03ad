#!/bin/bash
# test_experiments_paired.sh: experiments/paired.awk, the paired comparison of two modes over
# seeds, on a results table whose figures are known: per-seed differences 1..5 points give a
# mean of +3.00 and the t interval 3 +- 2.776 * sqrt(2.5 / 5) = [+1.04, +4.96]; 5 wins of 5 give
# the sign test's p = 2 / 32 = 0.0625; differences +1, +2, -1, 0, 0 give +0.40 [-1.02, +1.82],
# 2 wins, 1 loss, p = 1; a mode without its partner (or a seed with one side) is left out.
# usage: bash test_experiments_paired.sh <comine binary> <source dir>
set -u
SRC=$2
fail=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_experiments_paired.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
{
    for s in 1 2 3 4 5; do
        ab=(0 0.82 0.83 0.80 0.81 0.81)
        printf 'n20_comining_s%d\t20\tcomining\t%d\t0.8%d\t0.01\t%s\t0.01\t0.9\t0.8\t0.85\t100\n' $s $s $s "${ab[$s]}"
        printf 'n20_coteach_s%d\t20\tcoteach\t%d\t0.80\t0.01\t0.81\t0.01\t0.9\t0.8\t0.84\t100\n' $s $s
    done
    printf 'n20_arcface_s1\t20\tarcface\t1\t0.70\t0.01\t-\t-\t-\t-\t-\t100\n'
    printf 'm02_n40_comining_s1\t40\tcomining\t1\t0.80\t0.01\t0.82\t0.01\t0.9\t0.8\t0.85\t100\n'
    printf 'm02_n40_comining_s2\t40\tcomining\t2\t0.80\t0.01\t0.82\t0.01\t0.9\t0.8\t0.85\t100\n'
    printf 'm02_n40_coteach_s2\t40\tcoteach\t2\t0.78\t0.01\t0.83\t0.01\t0.9\t0.8\t0.86\t100\n'
} > "$TMP/all.tsv"
awk -F'\t' -v a=comining -v b=coteach -f "$SRC/experiments/paired.awk" "$TMP/all.tsv" > "$TMP/paired.md"
rc=$?
cat "$TMP/paired.md"
check "paired.awk exits 0" test $rc = 0
check "header names the two modes" grep -qF "| mean comining - coteach | 95% interval | comining wins / losses | sign test p |" "$TMP/paired.md"
check "peer A: 5 seeds, +3.00 [+1.04, +4.96], 5 / 0, p 0.062" \
    grep -qF "| main | 20% | peer A accuracy | 5 | +3.00 | [+1.04, +4.96] | 5 / 0 | 0.062 |" "$TMP/paired.md"
check "A+B: +0.40 [-1.02, +1.82], 2 / 1, p 1.000" \
    grep -qF "| main | 20% | A+B accuracy | 5 | +0.40 | [-1.02, +1.82] | 2 / 1 | 1.000 |" "$TMP/paired.md"
check "detection F1: +0.010 on every seed" grep -qF "| main | 20% | detection F1 | 5 | +0.010 |" "$TMP/paired.md"
check "the m02 setting: the one seed with both modes, no interval" \
    grep -qF "| m02 | 40% | peer A accuracy | 1 | +2.00 | - | 1 / 0 | 1.000 |" "$TMP/paired.md"
check "8 lines (2 of header, 3 main, 3 m02), arcface nowhere" \
    test "$(wc -l < "$TMP/paired.md")" = 8 -a -z "$(grep arcface "$TMP/paired.md")"
# a variant named in the run (m02_n40_p2_sS, comining in the mode column) is a mode of its own
{
    cat "$TMP/all.tsv"
    printf 'm02_n40_p2_s1\t40\tcomining\t1\t0.83\t0.01\t0.82\t0.01\t0.9\t0.8\t0.85\t100\n'
} > "$TMP/p2.tsv"
awk -F'\t' -v a=p2 -v b=comining -f "$SRC/experiments/paired.awk" "$TMP/p2.tsv" > "$TMP/p2.md"
cat "$TMP/p2.md"
check "the mode comes from the run's name (p2 - comining: +3.00 on seed 1)" \
    grep -qF "| m02 | 40% | peer A accuracy | 1 | +3.00 | - | 1 / 0 | 1.000 |" "$TMP/p2.md"
awk -F'\t' -f "$SRC/experiments/paired.awk" "$TMP/all.tsv" > /dev/null 2>&1
check "without the two modes it refuses (exit 2)" test $? = 2
echo "test_experiments_paired: $([ $fail = 0 ] && echo "all passed" || echo "$fail FAILED")"
exit $((fail > 0))
