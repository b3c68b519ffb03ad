#!/bin/bash
# modes_synth.sh: noise detection of every detecting mode in the same budget, on the data of
# the end-to-end test (tests/test_train_e2e.sh): synthetic faces, 50 identities x 40 images,
# 30% label flips.  Prints precision / recall / F1 of each mode's noise report and its time.
# usage: bash bench/modes_synth.sh <comine binary> [work dir] [seed]
set -eu
BIN=$(realpath "$1")
WORK=${2:-$(mktemp -d "${TMPDIR:-/tmp}/modes_synth.XXXXXX")}
SEED=${3:-1}
mkdir -p "$WORK"
[ -d "$WORK/syn" ] || "$BIN" synth --out "$WORK/syn" --ids 50 --per-id 40 --size 32 --seed 1 --quiet
[ -f "$WORK/noisy.txt" ] || "$BIN" corrupt --data "$WORK/syn" --out "$WORK/noisy.txt" --flip 0.3 --seed 2 >/dev/null
printf '%-9s %9s %9s %9s %8s\n' mode precision recall F1 seconds
for mode in self nld coteach comining; do
    rm -rf "$WORK/$mode"
    start=$(date +%s.%N)
    "$BIN" train --data "$WORK/noisy.txt" --out "$WORK/$mode" --mode "$mode" --net iresnet18 --width 0.25 \
        --input 32 --batch 64 --epochs 20 --tk 5 --tau 0.3 --s 32 --m 0.2 --seed "$SEED" --quiet > "$WORK/$mode.txt"
    end=$(date +%s.%N)
    line=$(grep 'detection against the ground truth' "$WORK/$mode.txt")
    p=$(echo "$line" | sed -n 's/.*precision \([0-9.]*\).*/\1/p')
    r=$(echo "$line" | sed -n 's/.*recall \([0-9.]*\).*/\1/p')
    f=$(echo "$line" | sed -n 's/.*F1 \([0-9.]*\).*/\1/p')
    printf '%-9s %9s %9s %9s %8.1f\n' "$mode" "$p" "$r" "$f" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')"
done
