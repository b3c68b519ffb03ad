#!/bin/bash
# test_train_merge_cli.sh: `comine train --merge-duplicates`.
# - at the end of the warm-up the pairs found are merged: duplicates.csv lists them,
#   merge_map.tsv maps every old label, metrics.jsonl's `classes` drops from then on, and
#   noise.csv carries the merged labels (the list's labels through the map);
# - a run killed after the merge (or before it) and resumed ends byte-identical to a run that
#   was not (models and noise.csv): the resumed run relabels its data from merge_map.tsv;
# - a threshold nothing passes merges nothing; a damaged merge_map.tsv is refused naming
#   the file and line.
# usage: bash test_train_merge_cli.sh <comine binary> <source dir>
set -u
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
fail=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_train_merge_cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
"$BIN" synth --out S --ids 12 --per-id 8 --size 32 --quiet > /dev/null &&
    "$BIN" corrupt --data S --duplicate 0.25 --seed 1 --out dup.txt > /dev/null 2>&1 || { echo "FAIL making the data"; exit 1; }
# threshold 0: every mutual-nearest pair of labels merges (the mechanics, whatever the network learnt)
train=(--data dup.txt --net iresnet18 --width 0.125 --input 32 --emb-dim 32 --batch 16 --threads 1 --decode-threads 1
       --epochs 5 --tk 2 --merge-duplicates --merge-threshold 0 --checkpoint-every 1 --quiet)
"$BIN" train "${train[@]}" --out U > U.log 2>&1
check "train --merge-duplicates runs" test $? = 0
pairs=$(($(wc -l < U/duplicates.csv) - 1))
classes=$(grep -o '"classes": [0-9]*' U/metrics.jsonl | sed 's/.*: //' | tr '\n' ' ')
echo "     $pairs pairs merged; classes per epoch: $classes"
check "pairs found and merged" test "$pairs" -ge 1
check "classes: 15 for the warm-up, 15 - pairs after it" test "$classes" = "15 15 $((15 - pairs)) $((15 - pairs)) $((15 - pairs)) "
check "merge_map.tsv maps the 15 labels" test "$(($(wc -l < U/merge_map.tsv) - 1))" = 15
mapped=$(awk -F'\t' 'FNR == NR { if (FNR > 1) m[$1] = $2; next } { print m[$2] }' U/merge_map.tsv dup.txt | tr '\n' ' ')
labels=$(awk -F, 'NR > 1 { print $(NF - 5) }' U/noise.csv | tr '\n' ' ')
check "noise.csv's labels are the list's through merge_map.tsv" test -n "$mapped" -a "$mapped" = "$labels"

# killed after the merge, resumed
"$BIN" train "${train[@]}" --out K > /dev/null 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null && [ "$(cat K/metrics.jsonl 2>/dev/null | wc -l)" -lt 3 ]; do sleep 0.01; done
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
"$BIN" train --resume K > K.log 2>&1
check "killed after the merge: resumes" test $? = 0
check "... and ends byte-identical (peer_a.model, peer_b.model, noise.csv, merge_map.tsv)" \
    eval 'cmp -s U/peer_a.model K/peer_a.model && cmp -s U/peer_b.model K/peer_b.model && cmp -s U/noise.csv K/noise.csv &&
          cmp -s U/merge_map.tsv K/merge_map.tsv'
# killed during the warm-up, resumed
"$BIN" train "${train[@]}" --out W > /dev/null 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null && [ ! -s W/metrics.jsonl ]; do sleep 0.01; done
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
"$BIN" train --resume W > W.log 2>&1
check "killed in the warm-up: resumes and ends byte-identical" \
    eval 'cmp -s U/peer_a.model W/peer_a.model && cmp -s U/noise.csv W/noise.csv'

"$BIN" train "${train[@]}" --merge-threshold 1 --out N > /dev/null 2>&1
check "a threshold nothing passes: no merge (classes stay 15)" \
    test "$(grep -c '"classes": 15' N/metrics.jsonl)" = 5 -a ! -e N/merge_map.tsv
# a damaged map, on resume past the merge
cp -r U D
sed -i '5s/.*/4\tseven/' D/merge_map.tsv
out=$("$BIN" train --resume D --epochs 6 2>&1); rc=$?
check "a damaged merge_map.tsv is refused naming file and line" \
    test $rc != 0 -a -n "$(grep -F "merge_map.tsv: line 5" <<< "$out")"
[ $fail = 0 ] && echo "all passed" || echo "$fail failed"
exit $((fail > 0))
