#!/bin/bash
# test_train_reweight_cli.sh: `comine train --reweight-schedule always|from-tk|ramp`.
# - always is the default (the same models as a run without the option);
# - from-tk before epoch tk is the plain form: two epochs with --tk 2 give the same models as
#   --dm 0 (margin) and as --w 1 (weight), and differ from the same run with the re-weighting
#   always on (so the comparison can fail);
# - ramp: epoch 0 is plain (one epoch = the --dm 0 run), a later epoch uses a part of dm
#   (three epochs differ from both --dm 0 and always);
# - the schedule is recorded in args.txt and a resumed run keeps it; a bad value is refused.
# usage: bash test_train_reweight_cli.sh <comine binary> <source dir>
set -u
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
fail=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
same() { cmp -s "$1/peer_a.model" "$2/peer_a.model" && cmp -s "$1/peer_b.model" "$2/peer_b.model"; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_train_reweight_cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
"$BIN" synth --out S --ids 10 --per-id 8 --size 32 --quiet > /dev/null &&
    "$BIN" corrupt --data S --flip 0.2 --seed 1 --out noisy.txt > /dev/null 2>&1 || { echo "FAIL making the data"; exit 1; }
base=(--data noisy.txt --mode comining --net iresnet18 --width 0.125 --input 32 --emb-dim 32 --batch 16 --threads 1
      --decode-threads 1 --tk 2 --tau 0.2 --dm 0.3 --quiet)
run() { local out=$1; shift; "$BIN" train "${base[@]}" "$@" --out "$out" > "$out.log" 2>&1; }

run D --epochs 2 && run A --epochs 2 --reweight-schedule always && run T --epochs 2 --reweight-schedule from-tk &&
    run Z --epochs 2 --dm 0
check "the four two-epoch runs train" test $? = 0
check "always is the default" same D A
check "from-tk before tk = --dm 0" same T Z
check "... and differs from the re-weighting always on" eval '! same T A'
run WT --epochs 2 --reweight weight --w 3 --reweight-schedule from-tk && run W1 --epochs 2 --reweight weight --w 1 &&
    run W3 --epochs 2 --reweight weight --w 3
check "weight: from-tk before tk = --w 1" same WT W1
check "... and differs from --w 3 always on" eval '! same WT W3'
run R1 --epochs 1 --reweight-schedule ramp && run Z1 --epochs 1 --dm 0
check "ramp: epoch 0 = --dm 0" same R1 Z1
run R3 --epochs 3 --reweight-schedule ramp && run Z3 --epochs 3 --dm 0 && run A3 --epochs 3
check "ramp: three epochs differ from --dm 0 and from always" eval '! same R3 Z3 && ! same R3 A3'
check "args.txt records the schedule" grep -q -- "--reweight-schedule" R3/args.txt
tr '\n' ' ' < R3/args.txt | grep -q -- "--reweight-schedule ramp"
check "... as ramp" test $? = 0

# resumed: the schedule comes back from args.txt
run K --epochs 3 --reweight-schedule ramp --checkpoint-every 1 &
pid=$!
while kill -0 $pid 2>/dev/null && [ "$(cat K/metrics.jsonl 2>/dev/null | wc -l)" -lt 1 ]; do sleep 0.01; done
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
"$BIN" train --resume K > K2.log 2>&1
check "a killed ramp run resumes" test $? = 0
check "... and ends as the run that was not stopped" same K R3

"$BIN" train "${base[@]}" --reweight-schedule later --out X > X.log 2>&1
rc=$?
check "a bad schedule is refused" test $rc = 2 -a -n "$(grep -F "always|from-tk|ramp" X.log)"

if [ $fail -ne 0 ]; then echo "$fail check(s) failed"; exit 1; fi
echo "all checks passed"
