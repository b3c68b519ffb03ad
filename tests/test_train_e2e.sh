#!/bin/bash
# test_train_e2e.sh: end to end on comine's built-in synthetic faces.  50 identities x 40
# images, 30% injected label flips; `comining` must flag the injected noise with precision and
# recall both >= 0.8 (the run prints them: 0.96 and 0.89 at the time of writing); `comine
# clean --rank votes` must report the same precision, recall and F1 from the run's noise
# report, and `comine clean`'s default ranking (the peers' embeddings) precision and recall
# >= 0.8 as well.
# usage: bash test_train_e2e.sh <comine binary> <source dir>
set -euo pipefail
BIN=$1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_train_e2e.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
"$BIN" synth --out "$TMP/syn" --ids 50 --per-id 40 --size 32 --seed 1 --quiet
"$BIN" corrupt --data "$TMP/syn" --out "$TMP/noisy.txt" --flip 0.3 --seed 2 >/dev/null
"$BIN" train --data "$TMP/noisy.txt" --out "$TMP/run" --mode comining --net iresnet18 --width 0.25 --input 32 \
    --batch 64 --epochs 20 --tk 5 --tau 0.3 --s 32 --m 0.2 --seed 1 --quiet | tee "$TMP/train.txt"
line=$(grep 'detection against the ground truth' "$TMP/train.txt") ||
    { echo "FAIL: the run printed no detection figures"; exit 1; }
p=$(echo "$line" | sed -n 's/.*precision \([0-9.]*\) recall.*/\1/p')
r=$(echo "$line" | sed -n 's/.*recall \([0-9.]*\) F1.*/\1/p')
f=$(echo "$line" | sed -n 's/.* F1 \([0-9.]*\).*/\1/p')
[ -n "$p" ] && [ -n "$r" ] && [ -n "$f" ] || { echo "FAIL: cannot read precision, recall and F1 in: $line"; exit 1; }
"$BIN" clean --run "$TMP/run" --out "$TMP/clean.txt" --rank votes --top 0 >"$TMP/clean.log"
grep -q "precision $p recall $r F1 $f" "$TMP/clean.log" ||
    { echo "FAIL: comine clean disagrees with the trainer's figures:"; cat "$TMP/clean.log"; exit 1; }
echo "comining on synthetic faces with 30% label flips: detection precision $p recall $r (need >= 0.8 each)"
fails=0
awk -v p="$p" 'BEGIN { exit !(p >= 0.8) }' || { echo "FAIL: detection precision $p below 0.8"; fails=$((fails + 1)); }
awk -v r="$r" 'BEGIN { exit !(r >= 0.8) }' || { echo "FAIL: detection recall $r below 0.8"; fails=$((fails + 1)); }
"$BIN" clean --run "$TMP/run" --out "$TMP/clean_embed.txt" --suspects "$TMP/suspects_embed.csv" --top 0 --quiet \
    >"$TMP/clean_embed.log"
line=$(grep 'detection (' "$TMP/clean_embed.log") || { echo "FAIL: clean printed no detection"; exit 1; }
p=$(echo "$line" | sed -n 's/.*precision \([0-9.]*\) recall.*/\1/p')
r=$(echo "$line" | sed -n 's/.*recall \([0-9.]*\) F1.*/\1/p')
echo "comine clean, ranked by the peers' embeddings: precision $p recall $r (need >= 0.8 each)"
awk -v p="$p" 'BEGIN { exit !(p >= 0.8) }' || { echo "FAIL: embedding ranking precision $p below 0.8"; fails=$((fails + 1)); }
awk -v r="$r" 'BEGIN { exit !(r >= 0.8) }' || { echo "FAIL: embedding ranking recall $r below 0.8"; fails=$((fails + 1)); }
[ $fails = 0 ] || exit 1
echo "5 passed, 0 failed"
