#!/bin/bash
# test_train_init.sh: `comine train --init` (fine-tuning from a model file).
# - a run started with --init M and a learning rate of 1e-9 ends with the convolution and
#   linear weights of M (within 1e-5; read back through `comine export` and python3-onnx), and
#   a run without --init does not; `--init A --init B` starts peer B from B;
# - a run that stopped before its first checkpoint starts from --init again when resumed;
# - `comine estimate --init M`: the cross-fit's networks start from M (M's network by default);
# - a model of another architecture is refused naming both; --init cannot change on --resume.
# usage: bash test_train_init.sh <comine binary> <source dir>
set -u
BIN=$1
fail=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
PY=/usr/bin/python3
[ -x "$PY" ] && "$PY" -c 'import onnx, numpy' 2>/dev/null || { echo "skipped: needs python3-onnx and numpy"; exit 77; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_train_init.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
net=(--net iresnet18 --width 0.125 --input 32 --emb-dim 32 --batch 8 --threads 1 --decode-threads 1 --quiet)
"$BIN" synth --out "$TMP/D" --ids 4 --per-id 4 --size 32 --quiet > /dev/null
"$BIN" train --data "$TMP/D" --out "$TMP/a" "${net[@]}" --epochs 1 --seed 1 > /dev/null 2>&1 &&
    "$BIN" train --data "$TMP/D" --out "$TMP/b" "${net[@]}" --epochs 1 --seed 2 > /dev/null 2>&1 ||
    { echo "FAIL training the starting models"; exit 1; }
"$BIN" train --data "$TMP/D" --out "$TMP/ft" "${net[@]}" --epochs 1 --seed 3 --lr 1e-9 --warmup-epochs 0 \
    --init "$TMP/a/peer_a.model" --init "$TMP/b/peer_b.model" > "$TMP/ft.log" 2>&1
check "train --init A --init B runs" test $? = 0
"$BIN" train --data "$TMP/D" --out "$TMP/none" "${net[@]}" --epochs 1 --seed 3 --lr 1e-9 --warmup-epochs 0 > /dev/null 2>&1
for m in a/peer_a b/peer_b ft/peer_a ft/peer_b none/peer_a; do
    "$BIN" export --model "$TMP/$m.model" --onnx "$TMP/${m//\//_}.onnx" > /dev/null 2>&1 || echo "FAIL export $m"
done
# largest |difference| over the conv / linear weights (initialisers of rank 4 or 2) of two exports
maxdiff() {
    "$PY" - "$1" "$2" <<'PY'
import sys, onnx, numpy as np
from onnx import numpy_helper
def w(p):
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(p).graph.initializer if len(t.dims) in (2, 4)}
a, b = w(sys.argv[1]), w(sys.argv[2])
print("%.3g" % max(float(np.abs(a[k] - b[k]).max()) for k in a))
PY
}
d_a=$(maxdiff "$TMP/a_peer_a.onnx" "$TMP/ft_peer_a.onnx")
d_b=$(maxdiff "$TMP/b_peer_b.onnx" "$TMP/ft_peer_b.onnx")
d_none=$(maxdiff "$TMP/a_peer_a.onnx" "$TMP/none_peer_a.onnx")
echo "     max |weight difference|: ft A vs init A $d_a, ft B vs init B $d_b, no --init vs A $d_none"
check "peer A starts from the first --init (weights within 1e-5)" awk -v d="$d_a" 'BEGIN { exit !(d != "" && d < 1e-5) }'
check "peer B starts from the second --init" awk -v d="$d_b" 'BEGIN { exit !(d != "" && d < 1e-5) }'
check "without --init the weights are not those of A" awk -v d="$d_none" 'BEGIN { exit !(d > 1e-3) }'
# a run that stopped before its first checkpoint, resumed: it starts over from --init
"$BIN" train --data "$TMP/D" --out "$TMP/ftr" "${net[@]}" --epochs 1 --seed 3 --lr 1e-9 --warmup-epochs 0 \
    --init "$TMP/a/peer_a.model" > /dev/null 2>&1
rm -f "$TMP/ftr/checkpoint.bin" "$TMP/ftr"/peer_?.model
"$BIN" train --resume "$TMP/ftr" > "$TMP/ftr.log" 2>&1
check "a run resumed without a checkpoint runs" test $? = 0 -a -f "$TMP/ftr/peer_a.model"
"$BIN" export --model "$TMP/ftr/peer_a.model" --onnx "$TMP/ftr_peer_a.onnx" > /dev/null 2>&1 || echo "FAIL export ftr"
d_r=$(maxdiff "$TMP/a_peer_a.onnx" "$TMP/ftr_peer_a.onnx")
check "resumed without a checkpoint, it starts from --init again (max |difference| $d_r)" \
    awk -v d="$d_r" 'BEGIN { exit !(d != "" && d < 1e-5) }'
# `comine estimate --init`: the cross-fit's networks start from the model (its network taken
# from the file when no --net, --width, --input or --emb-dim is given)
"$BIN" synth --out "$TMP/E" --ids 6 --per-id 5 --size 32 --seed 2 --quiet > /dev/null
"$BIN" estimate --data "$TMP/E" --out "$TMP/cf" --init "$TMP/a/peer_a.model" --epochs 1 --lr 1e-9 --batch 8 \
    --threads 1 --decode-threads 1 --json > "$TMP/cf.json" 2> "$TMP/cf.log"
check "estimate --init runs with the model's network" test $? = 0 -a -f "$TMP/cf/half2/peer_a.model"
"$BIN" export --model "$TMP/cf/half2/peer_a.model" --onnx "$TMP/cf_half2.onnx" > /dev/null 2>&1 || echo "FAIL export cf"
d_cf=$(maxdiff "$TMP/a_peer_a.onnx" "$TMP/cf_half2.onnx")
check "estimate --init: a fold's network starts from it (max |difference| $d_cf)" \
    awk -v d="$d_cf" 'BEGIN { exit !(d != "" && d < 1e-5) }'
out=$("$BIN" estimate --data "$TMP/D" --out "$TMP/cf2" --init "$TMP/a/peer_a.model" --width 0.25 --input 32 \
      --emb-dim 32 --epochs 1 --batch 8 --threads 1 2>&1); rc=$?
check "estimate --init with another --width is refused naming both networks" \
    test $rc != 0 -a -n "$(grep -F -- "--init $TMP/a/peer_a.model: the model is iresnet18 width 0.125" <<< "$out")"
out=$("$BIN" estimate --data "$TMP/D" --out "$TMP/cf3" --init "$TMP/none.model" 2>&1); rc=$?
check "estimate --init of a missing file: a clear error" \
    test $rc != 0 -a -n "$(grep -F -- "option --init: " <<< "$out" | grep -F "$TMP/none.model")"
out=$("$BIN" train --data "$TMP/D" --out "$TMP/bad" --net iresnet18 --width 0.25 --input 32 --emb-dim 32 --batch 8 \
      --epochs 1 --quiet --init "$TMP/a/peer_a.model" 2>&1); rc=$?
check "an --init of another width is refused naming both networks" \
    test $rc != 0 -a -n "$(grep -F -- "--init $TMP/a/peer_a.model: the model is iresnet18 width 0.125" <<< "$out")"
out=$("$BIN" train --resume "$TMP/ft" --init "$TMP/a/peer_a.model" 2>&1); rc=$?
check "--init cannot change on --resume" test $rc = 2 -a -n "$(grep -F "option --init cannot change on --resume" <<< "$out")"
# --resume with a longer run and other threads: one more epoch, recorded for later resumes
"$BIN" train --resume="$TMP/ft" --epochs 2 --threads 1 > "$TMP/resume.log" 2>&1
check "--resume=DIR --epochs 2 --threads 1 runs one more epoch" \
    test $? = 0 -a "$(wc -l < "$TMP/ft/metrics.jsonl")" = 2
check "args.txt now ends with --epochs 2" test "$(tail -n 2 "$TMP/ft/args.txt" | tr '\n' ' ')" = "--epochs 2 "
check "train.log holds dated progress lines of both sessions (a --quiet run)" \
    test "$(grep -cE '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} (epoch [12]/|finished)' "$TMP/ft/train.log")" -ge 4
echo "test_train_init: $([ $fail = 0 ] && echo "all passed" || echo "$fail FAILED")"
exit $((fail > 0))
