#!/bin/bash
# test_estimate_cli.sh: `comine estimate` end to end, on a tiny run.
#   --run: the end-of-warm-up table by default (--tk - 1), --epoch, every estimator printed, the
#     true rate from the table's truth column (the share of flips and outliers of the list),
#     --json with the same estimate as the text; --model / --model2 and --checkpoint with --data
#     (the `outside` estimator, the heads of the checkpoint; the rank estimate, the estimate with
#     --model); cross-fitting with --data --out (every sample ranked once, the same estimate again
#     from the finished halves).
#   errors: a run folder without cos tables, a missing --epoch table, a table with a bad line,
#     a corrupted checkpoint, a checkpoint of another data set, two models of different sizes,
#     an empty data set, a missing option, conflicting sources; cross-fitting without --out, with
#     one sample per label, on an empty data set.
# usage: bash test_estimate_cli.sh <comine binary> <source dir>
set -u
BIN=${1:?comine binary}
TMP=$(mktemp -d /tmp/comine_estimate_cli.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
expect_fail() {
    local what=$1 pat=$2; shift 2
    if "$BIN" "$@" >"$TMP/out" 2>"$TMP/err"; then bad "error $what: accepted"; return; fi
    if grep -q -- "$pat" "$TMP/err"; then ok "error $what -> $(head -n 1 "$TMP/err")"
    else bad "error $what: message lacks '$pat': $(cat "$TMP/err")"; fi
}
in_unit() { awk -v x="$1" 'BEGIN { exit !(x + 0 >= 0 && x + 0 <= 1) }'; }

# ---- data: 16 identities x 6 images, 20% flips and 10% outliers from 4 more identities ----
"$BIN" synth --out "$TMP/all" --ids 20 --per-id 6 --size 32 --seed 3 --quiet >/dev/null || { echo "FAIL synth"; exit 1; }
mkdir -p "$TMP/syn" "$TMP/dis"
for i in $(seq 0 19); do d=$(printf id%05d "$i"); if [ "$i" -lt 16 ]; then mv "$TMP/all/$d" "$TMP/syn/"; else mv "$TMP/all/$d" "$TMP/dis/other_$d"; fi; done
"$BIN" corrupt --data "$TMP/syn" --out "$TMP/d.txt" --flip 0.2 --outlier 0.1 --distractors "$TMP/dis" --seed 5 >/dev/null \
    || { echo "FAIL corrupt"; exit 1; }
n=$(wc -l < "$TMP/d.txt")
noisy=$(awk -F'\t' '$3 == 1 || $3 == 2' "$TMP/d.txt" | wc -l)
true_rate=$(awk -v a="$noisy" -v b="$n" 'BEGIN { printf "%.4f", a / b }')
"$BIN" train --data "$TMP/d.txt" --out "$TMP/run" --net iresnet18 --width 0.125 --input 32 --emb-dim 64 --batch 16 \
    --epochs 3 --tk 2 --s 32 --m 0.2 --threads 1 --decode-threads 2 --quiet >/dev/null || { echo "FAIL training"; exit 1; }
check "the run wrote the end-of-warm-up table (epoch 1) and the last (epoch 2)" test -f "$TMP/run/cos_epoch1.csv" -a -f "$TMP/run/cos_epoch2.csv"

# ---- --run ----
if "$BIN" estimate --run "$TMP/run" >"$TMP/r.txt" 2>"$TMP/r.err"; then ok "estimate --run"; else bad "estimate --run: $(cat "$TMP/r.err")"; fi
check "--run reads the end of the warm-up (--tk 2: epoch 1)" grep -q "cos_epoch1.csv (epoch 1)" "$TMP/r.txt"
for m in mixture beta mirror; do
    v=$(awk -v m="$m" '$1 == m { print $2 }' "$TMP/r.txt")
    check "estimator $m printed, in [0, 1] ($v)" in_unit "${v:--1}"
done
check "--run: no argmax, the outside estimator says why" grep -q "outside  -" "$TMP/r.txt"
tau=$(awk '/^tau estimate:/ { print $3 }' "$TMP/r.txt")
check "tau estimate in [0, 1] ($tau)" in_unit "${tau:--1}"
check "true rate from the table's truth column = the list's share of flips and outliers ($true_rate)" \
    grep -q "true noise rate: $true_rate ($noisy of $n samples" "$TMP/r.txt"
"$BIN" estimate --run "$TMP/run" --epoch 2 >"$TMP/r2.txt" 2>&1 || bad "estimate --epoch 2"
check "--epoch 2 reads cos_epoch2.csv" grep -q "cos_epoch2.csv (epoch 2)" "$TMP/r2.txt"
"$BIN" estimate --run "$TMP/run" --json >"$TMP/r.json" 2>&1 || bad "estimate --json"
check "--json: one object with tau_estimate, the estimators and the truth" \
    grep -q '^{"source": ".*", "epoch": 1, "samples": '"$n"', "peers": 2, "tau_estimate": .*"mixture": .*"true_rate": ' "$TMP/r.json"
jt=$(sed 's/.*"tau_estimate": \([^,]*\),.*/\1/' "$TMP/r.json")
check "--json's estimate = the text's ($jt vs $tau)" awk -v a="$jt" -v b="$tau" 'BEGIN { exit !((a - b) < 1e-4 && (b - a) < 1e-4) }'
if [ -x /usr/bin/python3 ]; then
    check "--json parses as JSON" /usr/bin/python3 -c "import json,sys; d=json.load(open('$TMP/r.json')); assert 0 <= d['tau_estimate'] <= 1"
fi

# ---- models and data ----
"$BIN" estimate --model "$TMP/run/peer_a.model" --model "$TMP/run/peer_b.model" --data "$TMP/d.txt" >"$TMP/m.txt" 2>"$TMP/m.err" \
    || bad "estimate --model --model --data: $(cat "$TMP/m.err")"
check "--model: leave-one-out centres, said so" grep -q "model files hold no ArcFace head" "$TMP/m.txt"
v=$(awk '$1 == "outside" { print $2 }' "$TMP/m.txt")
check "--model: the outside estimator computed ($v)" in_unit "${v:--1}"
check "--model: two peers" grep -q "$n samples, 2 peers" "$TMP/m.txt"
"$BIN" estimate --checkpoint "$TMP/run/checkpoint.bin" --data "$TMP/d.txt" --json >"$TMP/c.json" 2>"$TMP/c.err" \
    || bad "estimate --checkpoint: $(cat "$TMP/c.err")"
check "--checkpoint: both peers' networks and heads (JSON, outside computed)" grep -q '"peers": 2, .*"outside": [0-9]' "$TMP/c.json"
"$BIN" estimate --model "$TMP/run/peer_a.model" --data "$TMP/d.txt" >"$TMP/m1.txt" 2>&1 || bad "estimate with one model"
check "one model: one peer" grep -q "$n samples, 1 peer$" "$TMP/m1.txt"

check "--model: the rank estimate is the estimate" grep -q "^tau estimate: .* (rank)" "$TMP/m.txt"
v=$(awk '$1 == "rank" { print $2 }' "$TMP/m.txt")
check "--model: rank printed, in [0, 1] ($v)" in_unit "${v:--1}"
check "--checkpoint: rank in the JSON, not the estimate (the run's own heads)" \
    grep -q '"rank": [0-9].*"rank_lambda": 0\.[0-9]*' "$TMP/c.json"
check "--checkpoint: the estimate by the rule of the cosines" grep -q '"method": "\(beta\|outside\)"' "$TMP/c.json"
check "--checkpoint: the rank's null half by image by default" grep -q '"by_image": 0.5, ' "$TMP/c.json"
for w in 0 1; do
    "$BIN" estimate --model "$TMP/run/peer_a.model" --data "$TMP/d.txt" --by-image $w --json >"$TMP/mw$w.json" 2>/dev/null
    v=$(sed -n 's/.*"rank": \([0-9.e-]*\),.*/\1/p' "$TMP/mw$w.json")
    check "--model --by-image $w: a rank estimate ($v), said in the JSON" \
        bash -c "grep -q '\"by_image\": $w, ' '$TMP/mw$w.json' && awk -v v='${v:--1}' 'BEGIN { exit !(v >= 0 && v <= 1) }'"
done
expect_fail "--by-image with --run (no ranks)" "option --by-image" estimate --run "$TMP/run" --by-image 0.5

: > "$TMP/empty0.txt"
# ---- cross-fitting: --data --out ----
"$BIN" estimate --data "$TMP/d.txt" --out "$TMP/cf" --net iresnet18 --width 0.125 --input 32 --emb-dim 32 --batch 16 \
    --epochs 2 --rounds 1 --s 32 --m 0.2 --threads 1 --decode-threads 2 --json >"$TMP/cf.json" 2>"$TMP/cf.err" \
    || bad "estimate --data --out: $(cat "$TMP/cf.err")"
check "cross-fitting: every sample ranked, method crossfit, 2 epochs, 1 round" \
    grep -q '"samples": '"$n"', "tau_estimate": [0-9.e-]*, "method": "crossfit", "lambda": 0\.[0-9]*, "epochs": 2, "rounds": 1, ' "$TMP/cf.json"
cft=$(sed 's/.*"true_rate": \([0-9.e-]*\).*/\1/' "$TMP/cf.json")
check "cross-fitting: the true rate of the list ($cft = $true_rate)" \
    awk -v a="$cft" -v b="$true_rate" 'BEGIN { exit !(a != "" && (a - b) < 1e-4 && (b - a) < 1e-4) }'
check "cross-fitting: two half runs of $n samples in all" \
    test "$(($(tail -n +2 "$TMP/cf/half1/noise.csv" | wc -l) + $(tail -n +2 "$TMP/cf/half2/noise.csv" | wc -l)))" = "$n"
cp "$TMP/cf.json" "$TMP/cf1.json"
"$BIN" estimate --data "$TMP/d.txt" --out "$TMP/cf" --net iresnet18 --width 0.125 --input 32 --emb-dim 32 --batch 16 \
    --epochs 2 --rounds 1 --s 32 --m 0.2 --threads 1 --decode-threads 2 --json >"$TMP/cf.json" 2>/dev/null
check "cross-fitting again on the finished halves: the same estimate" cmp -s "$TMP/cf.json" "$TMP/cf1.json"
check "cross-fitting: wrong labels taken as half on images at random by default" \
    grep -q '"by_image": 0.5, ' "$TMP/cf1.json"
"$BIN" estimate --data "$TMP/d.txt" --out "$TMP/cf" --net iresnet18 --width 0.125 --input 32 --emb-dim 32 --batch 16 \
    --epochs 2 --s 32 --m 0.2 --threads 1 --decode-threads 2 --by-image 0 --json >"$TMP/cfu.json" 2>/dev/null
tu=$(sed -n 's/.*"tau_estimate": \([0-9.e-]*\),.*/\1/p' "$TMP/cfu.json")
check "--by-image 0 (Storey's uniform null) on the finished halves: an estimate ($tu), said in the JSON" \
    awk -v t="$tu" -v m="$(grep -c '"by_image": 0, ' "$TMP/cfu.json")" \
        'BEGIN { exit !(m == 1 && t != "" && t >= 0 && t <= 1) }'
expect_fail "--by-image 1.5" "by-image" estimate --data "$TMP/d.txt" --out "$TMP/cf" --by-image 1.5
touch -d '1 minute ago' "$TMP/cf/half1/checkpoint.bin" "$TMP/cf/half2/checkpoint.bin"
touch "$TMP/stamp"
"$BIN" estimate --data "$TMP/d.txt" --out "$TMP/cf" --net iresnet18 --width 0.125 --input 32 --emb-dim 32 --batch 16 \
    --epochs 2 --rounds 2 --s 32 --m 0.2 --threads 1 --decode-threads 2 >"$TMP/cf2.txt" 2>&1 \
    || bad "estimate --rounds 2: $(cat "$TMP/cf2.txt")"
t1=$(sed -n 's/.*"tau_estimate": \([0-9.e-]*\),.*/\1/p' "$TMP/cf1.json")
r1=$(sed -n 's/.*round 1 of 2: noise rate \([0-9.]*\).*/\1/p' "$TMP/cf2.txt")
check "two rounds: round 1 is the one-round estimate, read back ($r1 = $t1)" \
    awk -v a="${r1:-x}" -v b="$t1" 'BEGIN { exit !(a != "x" && (a - b) < 6e-4 && (b - a) < 6e-4) }'
check "two rounds: round 1's halves not trained again" \
    test "$(find "$TMP/cf/half1" "$TMP/cf/half2" -name checkpoint.bin -newer "$TMP/stamp" | wc -l)" = 0
check "two rounds: round 2's networks in OUT/round2" test -s "$TMP/cf/round2/half1/peer_a.model" -a -s "$TMP/cf/round2/half2/peer_a.model"
kept=$(($(tail -n +2 "$TMP/cf/round2/half1/noise.csv" | wc -l) + $(tail -n +2 "$TMP/cf/round2/half2/noise.csv" | wc -l)))
check "two rounds: round 2 trains without the ceil(min($t1, 0.9) x $n) most suspicious samples ($kept kept)" \
    awk -v k="$kept" -v n="$n" -v t="$t1" 'BEGIN { d = n - k; e = (t < 0.9 ? t : 0.9) * n; exit !(d >= e - 0.5 && d <= e + 1.5) }'
r2=$(sed -n 's/^tau estimate: \([0-9.]*\) .*/\1/p' "$TMP/cf2.txt")
p2=$(sed -n 's/.*round 2 of 2: noise rate \([0-9.]*\).*/\1/p' "$TMP/cf2.txt")
check "two rounds: the estimate is round 2's ($r2 = $p2)" \
    awk -v a="${r2:-x}" -v b="${p2:-y}" 'BEGIN { exit !(a != "x" && b != "y" && (a - b) < 6e-4 && (b - a) < 6e-4) }'
check "two rounds: said in the report" grep -q "2 rounds" "$TMP/cf2.txt"
expect_fail "cross-fitting with 0 rounds" "rounds" estimate --data "$TMP/d.txt" --out "$TMP/cf" --rounds 0
# three folds: each network trains on two folds of every label and ranks the third
"$BIN" estimate --data "$TMP/d.txt" --out "$TMP/cfk" --folds 3 --net iresnet18 --width 0.125 --input 32 --emb-dim 32 \
    --batch 16 --epochs 1 --s 32 --m 0.2 --threads 1 --decode-threads 2 --samples "$TMP/cfk.csv" --json \
    >"$TMP/cfk.json" 2>"$TMP/cfk.err" || bad "estimate --folds 3: $(cat "$TMP/cfk.err")"
check "three folds: every sample ranked, said in the JSON" grep -q '"samples": '"$n"', .*"folds": 3, ' "$TMP/cfk.json"
check "three folds: runs OUT/fold1 .. fold3, no halves" \
    test -s "$TMP/cfk/fold1/peer_a.model" -a -s "$TMP/cfk/fold3/peer_a.model" -a ! -e "$TMP/cfk/half1"
check "three folds: every sample trained on by two networks" \
    test "$(cat "$TMP/cfk"/fold[123]/noise.csv | grep -vc '^index')" = $((2 * n))
# per label of c samples, each network leaves out floor(c / 3) or ceil(c / 3) of them
check "three folds: each label split in equal folds (within one)" awk -F'[,\t]' '
    FNR == 1 { f++ } f == 1 { c[$2]++; next } FNR > 1 { t[f, $3]++ }
    END { for (k = 2; k <= 4; k++) for (y in c) { h = c[y] - t[k, y]; if (h < int(c[y] / 3) || h > int((c[y] + 2) / 3)) exit 1 }
          exit f != 4 }' "$TMP/d.txt" "$TMP/cfk/fold1/noise.csv" "$TMP/cfk/fold2/noise.csv" "$TMP/cfk/fold3/noise.csv"
check "three folds: a p-value for every sample" test "$(awk -F, 'NR > 1 && $4 != ""' "$TMP/cfk.csv" | wc -l)" = "$n"
expect_fail "cross-fitting with 1 fold" "folds" estimate --data "$TMP/d.txt" --out "$TMP/cf" --folds 1
expect_fail "cross-fitting with 11 folds" "folds" estimate --data "$TMP/d.txt" --out "$TMP/cf" --folds 11
awk -F'\t' '!seen[$2]++' "$TMP/d.txt" > "$TMP/ones.txt"
"$BIN" synth --out "$TMP/extra" --ids 3 --per-id 1 --size 32 --seed 11 --quiet >/dev/null
{ cat "$TMP/d.txt"; find "$TMP/extra" -name '*.png' | sort | awk -v OFS='\t' '{ print $1, 15 + NR, 0 }'; } > "$TMP/single.txt"
"$BIN" estimate --data "$TMP/single.txt" --out "$TMP/cf3" --net iresnet18 --width 0.125 --input 32 --emb-dim 32 \
    --batch 16 --epochs 1 --s 32 --m 0.2 --threads 1 --decode-threads 2 --json >"$TMP/cf3.json" 2>/dev/null
check "cross-fitting: the 3 labels of one sample are not ranked (no centre in the other half): $n samples" \
    grep -q '"samples": '"$n"', ' "$TMP/cf3.json"
expect_fail "cross-fitting with one sample per label" "labels with 2 samples or more" estimate --data "$TMP/ones.txt" \
    --out "$TMP/cf1" --net iresnet18 --width 0.125 --input 32 --emb-dim 32 --epochs 1 --threads 1
expect_fail "cross-fitting an empty data set" "no samples\|empty\|labels with 2" estimate --data "$TMP/empty0.txt" \
    --out "$TMP/cf2" --net iresnet18 --width 0.125 --input 32 --emb-dim 32 --epochs 1 --threads 1

# ---- bad input ----
mkdir -p "$TMP/notable"
cp "$TMP/run/args.txt" "$TMP/notable/"
expect_fail "a run folder without cos tables" "has no cos_epoch" estimate --run "$TMP/notable"
expect_fail "a run folder that does not exist" "not a folder" estimate --run "$TMP/nothere"
expect_fail "--epoch without its table" "cos_epoch7.csv does not exist" estimate --run "$TMP/run" --epoch 7
mkdir -p "$TMP/badtab"
{ head -n 3 "$TMP/run/cos_epoch1.csv"; echo "3,zz,0,0.5,0.4"; } > "$TMP/badtab/cos_epoch0.csv"
expect_fail "a table with a bad line (line 4)" "cos_epoch0.csv:4" estimate --run "$TMP/badtab"
cp "$TMP/run/checkpoint.bin" "$TMP/broken.bin"
printf 'x' | dd of="$TMP/broken.bin" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_fail "a corrupted checkpoint" "checksum mismatch" estimate --checkpoint "$TMP/broken.bin" --data "$TMP/d.txt"
awk -F'\t' '$2 < 8' "$TMP/d.txt" > "$TMP/half.txt"
expect_fail "a checkpoint of another data set" "holds heads of 16 classes" estimate --checkpoint "$TMP/run/checkpoint.bin" --data "$TMP/half.txt"
"$BIN" train --data "$TMP/d.txt" --out "$TMP/other" --net iresnet18 --width 0.125 --input 32 --emb-dim 32 --batch 16 \
    --epochs 1 --tk 1 --threads 1 --quiet >/dev/null || bad "training the other-size model"
expect_fail "two models of different sizes" "dimensions" estimate --model "$TMP/run/peer_a.model" --model "$TMP/other/peer_a.model" --data "$TMP/d.txt"
: > "$TMP/empty.txt"
expect_fail "an empty data set" "empty\|no images\|no samples" estimate --model "$TMP/run/peer_a.model" --data "$TMP/empty.txt"
expect_fail "no source" "option --data" estimate
expect_fail "--data alone without --out" "option --out" estimate --data "$TMP/d.txt"
expect_fail "a cross-fitting option with --model" "option --epochs: only for cross-fitting" estimate --model "$TMP/run/peer_a.model" \
    --data "$TMP/d.txt" --epochs 3
expect_fail "--model without --data" "option --data" estimate --model "$TMP/run/peer_a.model"
expect_fail "--run and --model together" "one of --run" estimate --run "$TMP/run" --model "$TMP/run/peer_a.model" --data "$TMP/d.txt"
expect_fail "--epoch without --run" "only with --run" estimate --model "$TMP/run/peer_a.model" --data "$TMP/d.txt" --epoch 1

if [ "$fails" -gt 0 ]; then echo "test_estimate_cli: $fails check(s) FAILED"; exit 1; fi
echo "test_estimate_cli: all checks passed"
