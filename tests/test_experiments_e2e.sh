#!/bin/bash
# test_experiments_e2e.sh: experiments/run.sh end to end on a small fake LFW made here from
# comine's synthetic faces (JPEG, LFW naming: images/Name/Name_000n.jpg, a people file and an
# `N` pairs file).  Checks the data stage's noisy lists (line counts, flip and outlier flags),
# runs of the main, validation and margin stages (result.tsv fields, accuracies in [0, 1]), the
# tables, that a second invocation trains nothing, that a run killed (SIGTERM to run.sh's
# process group) after its first epoch is resumed from its checkpoint by the next invocation,
# and the vote stage's table, and the detect stage's (both rankings of the same runs).
# The PNG checks are skipped when comine is built without PLplot, and the whole test without
# setsid, ps or GNU tar: it then exits 77 (CTest: skipped) when nothing failed.
# usage: bash test_experiments_e2e.sh <comine binary> <source dir>
set -u
BIN=$1
SRC=$2
for tool in setsid ps; do
    command -v $tool >/dev/null 2>&1 || { echo "test_experiments_e2e: skipped (no $tool)"; exit 77; }
done
tar --version 2>/dev/null | grep -q 'GNU tar' || { echo "test_experiments_e2e: skipped (no GNU tar)"; exit 77; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_experiments_e2e.XXXXXX")
bg_pgid=""
cleanup() {
    [ -n "$bg_pgid" ] && kill -TERM -- "-$bg_pgid" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
fail=0
skipped=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
die() { echo "FAIL $*"; exit 1; }
is_png() { head -c 8 "$1" | od -An -tx1 | tr -d ' \n' | grep -q '^89504e470d0a1a0a$'; }

# ---- a fake LFW --------------------------------------------------------------------------
# People id00000..id00047 in the people file (LFW DevTrain's format): 24 training people
# (>= 5 images), then 24 outlier-pool people (4 images each: 96, enough for 20% outliers of
# the 220 training images).  run.sh holds out every 6th training person for validation; those
# have 25 images, so that its `comine pairs --count 600` finds 4 x C(25, 2) = 1,200 distinct
# matched pairs; the others have 6.  Test people id00048..id00067 (in images/, not in the
# people file): 4 images each, 40 matched and 40 mismatched pairs.  comine synth numbers an
# identity's images from 0000: one more is made and 0000 left out, so that tar can rename
# idN/000k.jpg to LFW's idN/idN_000k.jpg without a process per file.
LFW=$TMP/lfw
mkdir -p "$LFW/images" "$LFW/lists"
synth() { "$BIN" synth --out "$TMP/syn" --size 32 --format jpg --seed 1 --threads 1 --quiet "$@" >/dev/null ||
    die "comine synth $*"; }
for t in 0 6 12 18; do
    synth --first-id "$t" --ids 5 --per-id 7
    synth --first-id $((t + 5)) --ids 1 --per-id 26
done
synth --first-id 24 --ids 44 --per-id 5
tar -C "$TMP/syn" -cf - --exclude='*/0000.jpg' . |
    tar -C "$LFW/images" -xf - --transform 's|^\./||' --transform 's|^\(id[0-9]*\)/|\1/\1_|' || die "tar"
{ echo 48; for i in $(seq 0 47); do
      printf 'id%05d\t%d\n' "$i" "$(if [ "$i" -ge 24 ]; then echo 4; elif [ $(((i + 1) % 6)) -eq 0 ]; then echo 25; else echo 6; fi)"
  done; } > "$LFW/lists/peopleDevTrain.txt"
awk 'function who(k) { return sprintf("id%05d", 48 + k % 20) }
     BEGIN { OFS = "\t"; print 40
             for (k = 0; k < 40; k++) print who(k), k < 20 ? 1 : 3, k < 20 ? 2 : 4
             for (k = 0; k < 40; k++) print who(k), k % 4 + 1, who(k % 20 + 1 + int(k / 20)), (k + 1) % 4 + 1 }' \
    > "$LFW/lists/pairsDevTest.txt"
check "fake LFW: 68 people, 396 JPEG images in LFW naming" \
    test "$(ls "$LFW/images" | wc -l) $(find "$LFW/images" -name 'id?????_00??.jpg' | wc -l)" = "68 396"

# ---- data, main, val, table ---------------------------------------------------------------
W=$TMP/work
export COMINE_BIN=$BIN
run_sh() { "$SRC/experiments/run.sh" --work "$W" --lfw "$LFW" --seeds 1 --jobs 2 "$@"; }
RUNS="m02_n20_arcface_s1 n40_arcface_s1 n40_comining_s1 val_coteach"
ONLY='^(n40_(arcface|comining)_s1|val_coteach|m02_n20_arcface_s1)$'
run_sh --epochs 2 --only "$ONLY" data main val margin table > "$TMP/first.log" 2>&1
rc=$?
cat "$TMP/first.log"
check "run.sh data main val margin table: exit 0" test $rc -eq 0

# noisy lists: 220 training images; n/200 of them flipped (flag 1) and as many outliers (flag 2)
noise_counts() { awk -F'\t' '{ n[$3]++ } END { printf "%d %d %d %d", NR, n[0], n[1], n[2] }' "$1"; }
check "train_n0.txt: 220 lines, all clean" test "$(noise_counts "$W/data/train_n0.txt")" = "220 220 0 0"
check "train_n20.txt: 22 flips, 22 outliers" test "$(noise_counts "$W/data/train_n20.txt")" = "220 176 22 22"
check "train_n40.txt: 44 flips, 44 outliers" test "$(noise_counts "$W/data/train_n40.txt")" = "220 132 44 44"
check "fit_n40.txt: 20 people x 6, 24 flips, 24 outliers" test "$(noise_counts "$W/data/fit_n40.txt")" = "120 72 24 24"
check "fit_n20.txt: 20 people x 6, 12 flips, 12 outliers" test "$(noise_counts "$W/data/fit_n20.txt")" = "120 96 12 12"
check "val.txt: 4 held-out people x 25, clean" test "$(noise_counts "$W/data/val.txt")" = "100 100 0 0"
check "people_val.txt: the 4 held-out people" \
    test "$(tr '\n' ' ' < "$W/data/people_val.txt")" = "$(printf '4 id00005\t25 id00011\t25 id00017\t25 id00023\t25 ')"
check "val_pairs.txt: 1,200 pairs" test "$(wc -l < "$W/data/val_pairs.txt")" -eq 1200

# result.tsv: name noise mode seed acc_a std_a acc_ab std_ab precision recall f1 train_s
result_ok() { # result_ok RUN MODE PEERS(1|2) DETECTION(0|1)
    awk -F'\t' -v name="$1" -v mode="$2" -v peers="$3" -v det="$4" '
        function unit(v) { return v ~ /^[0-9.]+$/ && v >= 0 && v <= 1 }
        NR == 1 { ok = NF == 12 && $1 == name && $2 == 40 && $3 == mode && $4 == 1 && unit($5) && unit($6) &&
                       (peers == 2 ? unit($7) && unit($8) : $7 == "-" && $8 == "-") &&
                       (det ? unit($9) && unit($10) && unit($11) : $9 == "-" && $10 == "-" && $11 == "-") &&
                       $12 ~ /^[0-9]+$/ }
        END { exit !(NR == 1 && ok) }' "$W/runs/$1/result.tsv"
}
check "n40_arcface_s1/result.tsv: 12 fields, one peer, no detection" result_ok n40_arcface_s1 arcface 1 0
check "n40_comining_s1/result.tsv: 12 fields, A and A+B, detection" result_ok n40_comining_s1 comining 2 1
check "val_coteach/result.tsv: 12 fields, A and A+B, detection" result_ok val_coteach coteach 2 1
for r in $RUNS; do cat "$W/runs/$r/result.tsv"; done
R=$W/results
check "no other run trained" test "$(ls "$W/runs" | grep -v '\.log$' | sort | tr '\n' ' ')" = "$RUNS "
check "table.md: header and the 40% arcface and comining rows" bash -c \
    "grep -q '^| noise | mode |' '$R/table.md' && grep -Eq '^\| 40% \| arcface \| 1 \| [0-9.]+ \| - \|' '$R/table.md' &&
     grep -Eq '^\| 40% \| comining \| 1 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|' '$R/table.md' &&
     test \$(wc -l < '$R/table.md') -eq 4"
check "summary.tsv: header and 2 rows" bash -c \
    "head -1 '$R/summary.tsv' | grep -q '^noise	mode	seeds	acc_a	acc_a_std	acc_ab	acc_ab_std' && test \$(wc -l < '$R/summary.tsv') -eq 3"
check "m02_n20_arcface_s1/result.tsv: 20% noise, arcface, one peer" \
    awk -F'\t' '{ exit !(NF == 12 && $2 == 20 && $3 == "arcface" && $5 ~ /^[0-9.]+$/ && $7 == "-") }' \
    "$W/runs/m02_n20_arcface_s1/result.tsv"
check "margin.md: the m 0.2 run beside the m 0.5 runs of the main stage (40% arcface, comining)" bash -c \
    "grep -Eq '^\| 20% \| arcface \| 0\.2 \| 1 \| [0-9.]+ \| - \| - \|$' '$R/margin.md' &&
     grep -Eq '^\| 40% \| arcface \| 0\.5 \| 1 \| [0-9.]+ \| - \| - \|$' '$R/margin.md' &&
     grep -Eq '^\| 40% \| comining \| 0\.5 \| 1 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|$' '$R/margin.md' &&
     test \$(wc -l < '$R/margin.md') -eq 5"
check "table.md: the m 0.2 run is not in it" bash -c "! grep -q '20%' '$R/table.md'"
check "validation.md: the val_coteach row" grep -Eq '^\| coteach \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|' "$R/validation.md"
check "detection_n40_s1.tsv: comining's 2 epochs" test "$(grep -c '^comining	' "$R/detection_n40_s1.tsv")" -eq 2
printf 'x\ty\n1\t2\n' > "$TMP/probe.tsv"
if "$BIN" plot --table "$TMP/probe.tsv" --x x --y y --out "$TMP/probe.png" 2>&1 | grep -q "plots are unavailable"; then
    echo "skipped: PNG checks (built without PLplot, or no pngcairo driver)"
    skipped=$((skipped + 1))
else
    for f in accuracy_vs_noise accuracy_vs_noise_ab detection_f1_n40_s1 cos_hist_n40_comining_s1; do
        check "$f.png is a PNG" is_png "$R/$f.png"
    done
fi

# ---- a second invocation trains nothing -----------------------------------------------------
sums() { for r in $RUNS; do cksum "$W/runs/$r/metrics.jsonl" "$W/runs/$r/result.tsv"; done; }
sums > "$TMP/sums.before"
run_sh --epochs 2 --only "$ONLY" data main val margin table > "$TMP/second.log" 2>&1
rc=$?
cat "$TMP/second.log"
check "second invocation: exit 0" test $rc -eq 0
check "second invocation: no run started or resumed" bash -c "! grep -Eq '(start|resume|done) +[nv]' '$TMP/second.log'"
sums > "$TMP/sums.after"
check "second invocation: metrics.jsonl and result.tsv unchanged" cmp -s "$TMP/sums.before" "$TMP/sums.after"

# ---- an interrupted run is resumed ----------------------------------------------------------
# run.sh in a session of its own (its process group is then its pid); SIGTERM to the group
# after the first epoch: comine saves a checkpoint and stops.
O=$W/runs/n40_oracle_s1
setsid "$SRC/experiments/run.sh" --work "$W" --lfw "$LFW" --seeds 1 --jobs 2 --epochs 3 --only '^n40_oracle_s1$' main \
    > "$TMP/killed.log" 2>&1 &
pid=$!
pgid=$(ps -o pgid= -p "$pid" | tr -d ' ')
if [ "$pgid" != "$pid" ] || [ "$pgid" = "$(ps -o pgid= -p $$ | tr -d ' ')" ]; then
    kill -TERM "$pid"; die "run.sh did not get a process group of its own"
fi
bg_pgid=$pgid
for i in $(seq 1200); do
    [ -s "$O/metrics.jsonl" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
epochs_done=$(wc -l < "$O/metrics.jsonl" 2>/dev/null)
check "SIGTERM after the oracle run's first epoch (of 3)" test "${epochs_done:-0}" -ge 1 -a "${epochs_done:-0}" -le 2
kill -TERM -- "-$pgid" 2>/dev/null
wait "$pid"
bg_pgid=""
cat "$TMP/killed.log"
for i in $(seq 100); do ps -o pid= -g "$pgid" >/dev/null || break; sleep 0.1; done
check "killed: no result.tsv, a checkpoint" bash -c "test ! -e '$O/result.tsv' && test -s '$O/checkpoint.bin'"
run_sh --epochs 3 --only '^n40_oracle_s1$' main > "$TMP/resumed.log" 2>&1
rc=$?
cat "$TMP/resumed.log"
check "rerun after the kill: exit 0" test $rc -eq 0
check "rerun after the kill: 'resume n40_oracle_s1'" grep -q 'resume n40_oracle_s1' "$TMP/resumed.log"
check "rerun after the kill: result.tsv" result_ok n40_oracle_s1 oracle 1 0
check "rerun after the kill: 3 epochs in metrics.jsonl" test "$(grep -c '"epoch"' "$O/metrics.jsonl")" -eq 3

# ---- the vote stage: validation runs at 20% and 40%, the paired stage's comining runs -----
run_sh --epochs 2 --paired-seeds 1 vote > "$TMP/vote.log" 2>&1
rc=$?
cat "$TMP/vote.log"
check "vote stage: exit 0" test $rc -eq 0
check "vote.md: 4 runs and the choice" bash -c \
    "test \$(grep -Ec '^\| (val_n[24]0_comining_m02|m02_n[24]0_comining_s1) \|( [0-9.]+ / [0-9.]+ / [0-9.]+ \|){6}\$' '$R/vote.md') -eq 4 &&
     grep -q 'chosen T = 0\.[2-7]' '$R/vote.md' && grep -q '^40% noise, 1 seeds: F1' '$R/vote.md'"

# ---- the detect stage: the same runs (nothing retrained), both rankings of the noise report --
run_sh --epochs 2 --paired-seeds 1 detect > "$TMP/detect.log" 2>&1
rc=$?
cat "$TMP/detect.log"
check "detect stage: exit 0, nothing trained" bash -c "test $rc -eq 0 && ! grep -q 'start ' '$TMP/detect.log'"
check "detect.md: a row per two-peer run with both rankings, the paired summary" bash -c \
    "test \$(grep -Ec '^\| [a-z]+ \| (val_n[24]0_comining_m02|m02_n[24]0_comining_s1|n40_comining_s1) \|( [0-9.]+ / [0-9.]+ / [0-9.]+ \|){2}\$' '$R/detect.md') -ge 4 &&
     grep -Eq '^\| [a-z]+ \| m02_n40_comining \| 1 \| [0-9.]+ \| [0-9.]+ \|' '$R/detect.md'"

if [ $fail -ne 0 ]; then echo "test_experiments_e2e: $fail check(s) FAILED"; exit 1; fi
if [ $skipped -ne 0 ]; then echo "test_experiments_e2e: the checks that ran passed; the PNG checks skipped (see above)"; exit 77; fi
echo "test_experiments_e2e: all checks passed"
