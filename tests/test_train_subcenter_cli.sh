#!/bin/bash
# test_train_subcenter_cli.sh: `comine train --subcenters S` (Sub-center ArcFace).
# - a run with 3 sub-centres trains, writes its models and noise.csv, and resumes from its
#   checkpoint byte-identical to a run that was not stopped;
# - resuming it with another --subcenters is refused;
# - dedup --run and estimate --checkpoint read the 3-centre heads;
# - --merge-duplicates with --subcenters > 1 is refused; --subcenters 0 is refused.
# - --subcenter-drop 2: mode arcface keeps each class's dominant sub-centre after epoch 2 and
#   lists the samples it leaves out (subcenter_dropped.csv: a header and as many rows as the
#   progress line says; none at 180 degrees, all at 0.001); a run killed before or after the
#   drop and resumed ends byte-identical to one that was not stopped; the checkpoint written
#   after it holds plain heads (dedup --run reads them); mode comining drops the sub-centres
#   but no sample; without --subcenters, or at the run's last epoch, it is refused.
# usage: bash test_train_subcenter_cli.sh <comine binary> <source dir>
set -u
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
fail=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_train_subcenter_cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
"$BIN" synth --out S --ids 10 --per-id 8 --size 32 --quiet > /dev/null &&
    "$BIN" corrupt --data S --flip 0.2 --seed 1 --out noisy.txt > /dev/null 2>&1 || { echo "FAIL making the data"; exit 1; }
train=(--data noisy.txt --net iresnet18 --width 0.125 --input 32 --emb-dim 32 --batch 16 --threads 1 --decode-threads 1
       --epochs 4 --tk 1 --tau 0.2 --subcenters 3 --checkpoint-every 1 --quiet)
"$BIN" train "${train[@]}" --out U > U.log 2>&1
check "train --subcenters 3 runs" test $? = 0
check "... and writes both models and noise.csv" test -s U/peer_a.model -a -s U/peer_b.model -a -s U/noise.csv

# killed after its second checkpoint, resumed
"$BIN" train "${train[@]}" --out K > /dev/null 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null && [ "$(cat K/metrics.jsonl 2>/dev/null | wc -l)" -lt 2 ]; do sleep 0.01; done
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
"$BIN" train --resume K > K.log 2>&1
check "killed and resumed" test $? = 0
check "... ends byte-identical (peer_a.model, peer_b.model, noise.csv)" \
    eval 'cmp -s U/peer_a.model K/peer_a.model && cmp -s U/peer_b.model K/peer_b.model && cmp -s U/noise.csv K/noise.csv'

"$BIN" train --resume U --epochs 6 --subcenters 2 > R.log 2>&1
rc=$?
check "resume with --subcenters 2 refused" test $rc != 0
check "... naming the option" grep -q -- "--subcenters" R.log
echo "     $(head -1 R.log)"

"$BIN" dedup --run U --out pairs.csv > D.log 2>&1
check "dedup --run reads the 3-centre run" test $? = 0 -a -s pairs.csv
"$BIN" estimate --checkpoint U/checkpoint.bin --data noisy.txt > E.log 2>&1
check "estimate --checkpoint reads the 3-centre heads" test $? = 0
"$BIN" dedup --run U --score centres --out pairs_c.csv > DC.log 2>&1
check "dedup --run --score centres reads the 3-centre heads" test $? = 0 -a -s pairs_c.csv

"$BIN" train "${train[@]}" --merge-duplicates --out M > M.log 2>&1
rc=$?
check "--merge-duplicates with --subcenters 3 refused" test $rc != 0
check "... saying why" grep -q "not with --subcenters 3" M.log
"$BIN" train "${train[@]}" --subcenters 0 --out Z > Z.log 2>&1
check "--subcenters 0 refused" test $? != 0

# --subcenter-drop
drop=("${train[@]}" --mode arcface --subcenter-drop 2)
"$BIN" train "${drop[@]}" --out DA > DA.log 2>&1
check "train --mode arcface --subcenter-drop 2 runs" test $? = 0
check "... says it keeps the dominant sub-centres" grep -q "after epoch 2 the heads keep each class's dominant" DA/train.log
left=$(sed -n 's/.*--subcenter-drop: \([0-9]*\) of 80 samples farther than 75 degrees.*/\1/p' DA/train.log)
check "... and how many samples it leaves out ($left)" test -n "$left"
check "... subcenter_dropped.csv has a header and one row per sample left out" \
    eval '[ "$(head -1 DA/subcenter_dropped.csv)" = "index,path,label,cos_dominant" ] &&
          [ "$(($(wc -l < DA/subcenter_dropped.csv) - 1))" = "$left" ]'
"$BIN" train "${drop[@]}" --subcenter-drop-angle 180 --out D180 > D180.log 2>&1
check "at 180 degrees no sample is left out" eval 'grep -q " 0 of 80 samples" D180/train.log && [ "$(wc -l < D180/subcenter_dropped.csv)" = 1 ]'
"$BIN" train "${drop[@]}" --subcenter-drop-angle 0.001 --out D0 > D0.log 2>&1
check "at 0.001 degrees every sample is left out" eval 'grep -q " 80 of 80 samples" D0/train.log && [ "$(wc -l < D0/subcenter_dropped.csv)" = 81 ]'
check "... and the model differs from the run that keeps them" eval '! cmp -s D0/peer_a.model D180/peer_a.model'
for at in 2 3; do
    "$BIN" train "${drop[@]}" --out DK$at > /dev/null 2>&1 &
    pid=$!
    while kill -0 $pid 2>/dev/null && [ "$(cat DK$at/metrics.jsonl 2>/dev/null | wc -l)" -lt $at ]; do sleep 0.01; done
    kill -KILL $pid 2>/dev/null
    wait $pid 2>/dev/null
    "$BIN" train --resume DK$at > DK$at.log 2>&1
    check "killed after $at epochs' metrics and resumed" test $? = 0
    check "... ends byte-identical (peer_a.model, subcenter_dropped.csv)" \
        eval "cmp -s DA/peer_a.model DK$at/peer_a.model && cmp -s DA/subcenter_dropped.csv DK$at/subcenter_dropped.csv"
done
"$BIN" dedup --run DA --score centres --out pairs_d.csv > DD.log 2>&1
check "dedup --run --score centres reads the heads after the drop" test $? = 0 -a -s pairs_d.csv
"$BIN" train "${train[@]}" --subcenter-drop 2 --out DC > DC.log 2>&1
check "comining --subcenter-drop 2 runs, drops sub-centres and no sample" \
    eval 'grep -q "dominant sub-centre" DC/train.log && ! grep -q "left out" DC/train.log && ! test -e DC/subcenter_dropped.csv'
"$BIN" train "${train[@]}" --subcenters 1 --subcenter-drop 2 --out DN > DN.log 2>&1
check "--subcenter-drop without --subcenters refused" eval "test $? != 0 && grep -q 'needs --subcenters' DN.log"
"$BIN" train "${train[@]}" --subcenter-drop 4 --out DL > DL.log 2>&1
check "--subcenter-drop at the last epoch refused" eval "test $? != 0 && grep -q 'before the last' DL.log"

if [ $fail -ne 0 ]; then echo "$fail check(s) failed"; exit 1; fi
echo "all checks passed"
