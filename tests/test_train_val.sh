#!/bin/bash
# test_train_val.sh: validation sets during training and `--tau auto`.
# - `--val PAIRS,BIN --val-every 2`: val.jsonl has a line every 2 steps and at each epoch end,
#   with each set's accuracies of A, B and the pair; metrics.jsonl carries the epoch-end ones
#   (per set, and val_acc_* of the first set); a .bin made from the same pairs gives the same
#   figures; best_a.model is the best of peer A on the first set (best.json), and `comine eval`
#   of it gives that accuracy; a run killed with SIGKILL and resumed ends with the same
#   val.jsonl and best.json as a run that was not;
# - `--tau auto`: the rate cross-fitted before the run (two half runs in RUN/tau_crossfit, on
#   disjoint halves of the samples), recorded in tau_estimate.json and metrics.jsonl, the drop
#   schedule grown to it; a resumed run reads it back without training the halves again, makes
#   it again from the finished halves when the file is gone, and refuses a damaged one; a bad
#   --tau and a missing --val file are refused.
# usage: bash test_train_val.sh <comine binary> <source dir>
set -u
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
fail=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_train_val.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
net=(--net iresnet18 --width 0.125 --input 32 --emb-dim 32 --batch 8 --threads 1 --decode-threads 1 --quiet)
"$BIN" synth --out D --ids 8 --per-id 6 --size 32 --quiet > /dev/null &&
    "$BIN" synth --out V --ids 6 --per-id 4 --size 32 --seed 9 --quiet > /dev/null &&
    "$BIN" pairs --data V --count 10 --out vp.txt > /dev/null &&
    "$BIN" pack --bin v.bin --pairs vp.txt --root V > /dev/null 2>&1 || { echo "FAIL making the data"; exit 1; }

val=(--val vp.txt,v.bin --val-root V --val-every 2)
"$BIN" train --data D --out R "${net[@]}" --epochs 3 "${val[@]}" > R.log 2>&1
check "train --val PAIRS,BIN --val-every 2 runs" test $? = 0
# 6 steps per epoch: validations after steps 2, 4, 6 of every epoch
check "val.jsonl: 9 lines (every 2 steps, the epoch ends included)" test "$(wc -l < R/val.jsonl 2>/dev/null)" = 9
check "val.jsonl: global steps 2, 4, ... 18" \
    test "$(sed 's/.*"global_step": \([0-9]*\).*/\1/' R/val.jsonl | tr '\n' ' ')" = "2 4 6 8 10 12 14 16 18 "
vals() { grep -o "\"val_$1_[a-z]*\": [0-9.]*" R/val.jsonl | sed 's/.*: //' | tr '\n' ' '; }
same=$([ -n "$(vals vp)" ] && [ "$(vals vp)" = "$(vals v)" ] && echo 0 || echo 1)
check "the .bin of the same pairs gives the same accuracies as the pairs file" test "$same" = 0
keys=0
for k in val_vp_a val_vp_b val_vp_pair val_v_a val_v_b val_v_pair val_acc_a val_acc_b val_acc_ensemble; do
    n=$(grep -c "\"$k\": [0-9.]" R/metrics.jsonl)
    [ "$n" = 3 ] || { echo "     metrics.jsonl: $k in $n of 3 lines"; keys=1; }
done
check "metrics.jsonl: every set's A, B and pair at each epoch end, val_acc_* of the first" test "$keys" = 0
best_a=$(grep -o '"val_vp_a": [0-9.]*' R/val.jsonl | awk '{ if ($2 > m) m = $2 } END { printf "%.6f", m }')
check "best.json: best_a is the best val_vp_a of val.jsonl ($best_a)" grep -q "\"best_a\": $best_a" R/best.json
acc=$("$BIN" eval --model R/best_a.model --pairs vp.txt --root V --threads 1 --json 2>/dev/null |
      sed 's/.*"accuracy": \([0-9.]*\).*/\1/')
check "comine eval of best_a.model gives that accuracy ($acc)" awk -v a="$acc" -v b="$best_a" 'BEGIN { exit !(a - b < 1e-6 && b - a < 1e-6) }'
check "best_b.model written" test -s R/best_b.model

# killed at some moment after a few validations, resumed: the same files as the run above
"$BIN" train --data D --out K "${net[@]}" --epochs 3 "${val[@]}" --checkpoint-every 1 > K.log 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null && [ "$(cat K/val.jsonl 2>/dev/null | wc -l)" -lt 4 ]; do sleep 0.01; done
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
"$BIN" train --resume K > K2.log 2>&1
check "the killed run resumes" test $? = 0
check "val.jsonl of the resumed run equals the uninterrupted one" cmp -s R/val.jsonl K/val.jsonl
check "best.json of the resumed run equals the uninterrupted one" cmp -s R/best.json K/best.json

# --tau auto: the rate estimated by cross-fitting before the run starts
"$BIN" train --data D --out T "${net[@]}" --epochs 4 --tk 3 --tau auto --tau-epochs 2 > T.log 2>&1
check "train --tau auto runs" test $? = 0
tau=$(sed 's/.*"tau": \([0-9.]*\).*/\1/' T/tau_estimate.json 2>/dev/null)
drops=$(sed 's/.*"drop_rate": \([0-9.e-]*\).*/\1/' T/metrics.jsonl | tr '\n' ' ')
echo "     tau estimate $tau; drop rates per epoch: $drops"
check "tau_estimate.json: cross-fitted, a rate in [0, 0.9]" awk -v t="$tau" -v m="$(grep -c '"method": "crossfit"' \
    T/tau_estimate.json 2>/dev/null)" 'BEGIN { exit !(m == 1 && t != "" && t >= 0 && t <= 0.9) }'
rows() { tail -n +2 "$1" 2>/dev/null | wc -l; }
check "the half runs: 24 + 24 of the 48 samples, a model each" \
    test "$(rows T/tau_crossfit/half1/noise.csv) $(rows T/tau_crossfit/half2/noise.csv)" = "24 24" \
    -a -s T/tau_crossfit/half1/peer_a.model -a -s T/tau_crossfit/half2/peer_a.model
halves=$(cat T/tau_crossfit/half1/noise.csv T/tau_crossfit/half2/noise.csv | cut -d, -f2 | grep -v '^[a-z]*$' | sort |
         uniq -d | wc -l)
check "no sample in both halves" test "$halves" = 0
check "drop rate 0, tau / 3, tau * 2/3, tau" awk -v t="$tau" -v d="$drops" 'BEGIN {
    split(d, r, " "); e = 1e-5; exit !(r[1] == 0 && (r[2] - t / 3) < e && (t / 3 - r[2]) < e &&
                                     (r[3] - t * 2 / 3) < e && (t * 2 / 3 - r[3]) < e && (r[4] - t) < e && (t - r[4]) < e) }'
check "metrics.jsonl: tau_estimate in every epoch" test "$(grep -c '"tau_estimate": [0-9]' T/metrics.jsonl)" = 4
"$BIN" train --data D --out T2 "${net[@]}" --epochs 3 --tk 3 --tau auto --tau-epochs 2 > /dev/null 2>&1
touch -d '1 minute ago' T2/tau_crossfit/half1/checkpoint.bin T2/tau_crossfit/half2/checkpoint.bin
"$BIN" train --resume T2 --epochs 4 > /dev/null 2>&1
tau2=$(sed 's/.*"tau": \([0-9.]*\).*/\1/' T2/tau_estimate.json 2>/dev/null)
drop4=$(sed -n 4p T2/metrics.jsonl | sed 's/.*"drop_rate": \([0-9.e-]*\).*/\1/')
check "resumed: tau read back (epoch 4 drop rate $drop4 = tau $tau2), the halves not trained again" \
    awk -v t="$tau2" -v d="$drop4" -v n="$(find T2/tau_crossfit -name checkpoint.bin -newer T2/tau_estimate.json | wc -l)" \
    'BEGIN { exit !(n == 0 && d != "" && (d - t) < 1e-5 && (t - d) < 1e-5) }'
rm -f T2/tau_estimate.json
"$BIN" train --resume T2 --epochs 5 > /dev/null 2>&1
tau3=$(sed 's/.*"tau": \([0-9.]*\).*/\1/' T2/tau_estimate.json 2>/dev/null)
check "tau_estimate.json deleted: estimated again from the finished halves ($tau3 = $tau2)" test -n "$tau3" -a "$tau3" = "$tau2"
echo '{"tau": oops}' > T2/tau_estimate.json
out=$("$BIN" train --resume T2 --epochs 6 2>&1); rc=$?
check "a damaged tau_estimate.json refused naming it" test $rc != 0 -a -n "$(grep -F "tau_estimate.json" <<< "$out")"
"$BIN" train --data D --out T3 "${net[@]}" --epochs 1 --tk 1 --tau auto --tau-epochs 1 --tau-folds 3 \
    --tau-by-image 0 > T3.log 2>&1
check "--tau-folds 3 --tau-by-image 0: three runs of 32 samples each (two folds of 16), both in tau_estimate.json" \
    test "$(rows T3/tau_crossfit/fold1/noise.csv) $(rows T3/tau_crossfit/fold2/noise.csv) \
$(rows T3/tau_crossfit/fold3/noise.csv) $(grep -c '"folds": 3, "by_image": 0}' T3/tau_estimate.json 2>/dev/null)" = \
    "32 32 32 1"
check "tau_estimate.json: by_image 0.5 by default" grep -q '"by_image": 0.5}' T/tau_estimate.json
out=$("$BIN" train --data D --out B0 "${net[@]}" --tau auto --tau-by-image 1.5 2>&1); rc=$?
check "--tau-by-image 1.5 refused" test $rc = 2 -a -n "$(grep -F -- "--tau-by-image" <<< "$out")"
out=$("$BIN" train --data D --out B1 "${net[@]}" --tau sometimes 2>&1); rc=$?
check "--tau sometimes refused" test $rc = 2 -a -n "$(grep -F "option --tau: 'sometimes'" <<< "$out")"
out=$("$BIN" train --data D --out B2 "${net[@]}" --val nothere.txt 2>&1); rc=$?
check "a missing --val file refused naming it" test $rc != 0 -a -n "$(grep -F "nothere.txt" <<< "$out")"
out=$("$BIN" train --data D --out B3 "${net[@]}" --epochs 1 --val-pairs vp.txt --val-root V 2>&1); rc=$?
check "--val-pairs still works, with a warning" test $rc = 0 -a -n "$(grep -F -- "--val" <<< "$out")"

[ $fail = 0 ] && echo "all passed" || echo "$fail failed"
exit $((fail > 0))
