#!/bin/bash
# test_clean_embed_cli.sh: `comine clean` ranking suspects by the peers' embeddings (its default
# when the run has its models).  A tiny comining run on synthetic faces with label flips, then:
# the JSON names the ranking and the rate (the drop rate of the run's last epoch), the number of
# suspects is round(rate x samples), suspects.csv has the cos column in ascending order, the
# cleaned list and .rec hold exactly the other samples, --rate and --rank votes change what they
# should, two runs agree byte for byte; with peer A alone, the cosines match an independent
# computation in numpy from `comine embed`'s embeddings (when /usr/bin/python3 has numpy); and
# misuse is refused with a clear message: no models, --rate with votes, a run without a drop
# rate, data that is not the run's, data that has gone.
# usage: bash test_clean_embed_cli.sh <comine binary> <source dir>
set -u
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_clean_embed_cli.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT
fail=0
skipped=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
cd "$TMP" || exit 1
"$BIN" synth --out S --ids 8 --per-id 6 --size 32 --seed 5 --quiet > /dev/null &&
    "$BIN" corrupt --data S --out noisy.txt --flip 0.25 --seed 2 > /dev/null ||
    { echo "FAIL making the data"; exit 1; }
"$BIN" train --data noisy.txt --out run --mode comining --epochs 3 --tau 0.3 --tk 1 --net iresnet18 --width 0.125 \
    --input 32 --emb-dim 64 --batch 16 --threads 1 --decode-threads 2 --quiet > train.out 2>&1
check "train 3 epochs" test $? -eq 0 -a -s run/peer_b.model
N=48

"$BIN" clean --run run --out clean.txt --json --quiet > c.json 2> c.err
check "clean (default ranking) exits 0" test $? -eq 0
ranking=$(sed -n 's/.*"ranking": "\([a-z]*\)".*/\1/p' c.json)
rate=$(sed -n 's/.*"rate": \([0-9.]*\),.*/\1/p' c.json)
sus=$(sed -n 's/.*"suspects": \([0-9]*\),.*/\1/p' c.json)
check "the default ranking is embed ($ranking)" test "$ranking" = embed
last=$(tail -1 run/metrics.jsonl | sed -n 's/.*"drop_rate": \([0-9.e-]*\).*/\1/p')
check "the rate is the last epoch's drop rate ($rate = $last)" awk -v a="$rate" -v b="$last" 'BEGIN { exit !(a == b) }'
want=$(awk -v r="$rate" -v n=$N 'BEGIN { printf "%d", r * n + 0.5 }')
check "suspects = round(rate x $N) = $want ($sus)" test "$sus" = "$want"
check "suspects.csv: the header with cos" test "$(head -1 run/suspects.csv)" = "rank,index,path,label,votes,rounds,score,truth,cos"
check "suspects.csv: $sus rows" test "$(($(wc -l < run/suspects.csv) - 1))" = "$sus"
check "suspects.csv: cos ascending with the rank" \
    awk -F, 'NR > 2 && $NF + 0 < prev { bad = 1 } NR > 1 { prev = $NF + 0 } END { exit bad }' run/suspects.csv
check "the cleaned list holds the other $((N - sus)) samples" test "$(wc -l < clean.txt)" = $((N - sus))
cut -d, -f3 run/suspects.csv | tail -n +2 | sort > sus_paths
cut -f1 clean.txt | sort > kept_paths
check "no suspect is in the cleaned list; together they are the data set" \
    test -z "$(comm -12 sus_paths kept_paths)" -a "$(sort -m sus_paths kept_paths | sort -u | wc -l)" = $N

"$BIN" clean --run run --out clean2.txt --suspects s2.csv --quiet --top 3 > c2.out 2>&1
check "a second clean gives the same suspects byte for byte" cmp -s run/suspects.csv s2.csv
check "the text names the ranking and the models" grep -q "lowest cosine .* peer_a.model + peer_b.model" c2.out
"$BIN" clean --run run --out clean3.txt --suspects s3.csv --rate 0.25 --quiet --top 0 > c3.out 2>&1
check "--rate 0.25 flags 12" test $? -eq 0 -a "$(($(wc -l < s3.csv) - 1))" = 12
"$BIN" clean --run run --out clean4.txt --suspects s4.csv --rank votes --top 0 > c4.out 2>&1
votes=$(awk -F, 'NR > 1 && $5 > 0 && $4 / $5 >= 0.5' run/noise.csv | wc -l)
check "--rank votes flags what the votes flag ($votes)" test $? -eq 0 -a "$(($(wc -l < s4.csv) - 1))" = "$votes"
check "--rank votes: the header without cos" test "$(head -1 s4.csv)" = "rank,index,path,label,votes,rounds,score,truth"
"$BIN" clean --run run --out-rec rec/clean.rec --suspects s5.csv --quiet --top 0 > c5.out 2>&1
check "--out-rec holds the $((N - sus)) kept images" grep -q "cleaned RecordIO: rec/clean.rec .*: $((N - sus)) images" c5.out

# peer A alone: the cosines against numpy on comine embed's embeddings
mkdir one && cp run/peer_a.model run/noise.csv run/metrics.jsonl run/args.txt one/
"$BIN" clean --run one --out one.txt --rank embed --quiet --top 0 > one.out 2>&1
check "one peer: clean --rank embed" test $? -eq 0 -a -n "$(grep 'embedded by peer_a.model)' one.out)"
"$BIN" embed --model run/peer_a.model --data noisy.txt --out a.npy --quiet > /dev/null 2>&1
if /usr/bin/python3 -c 'import numpy' 2> /dev/null; then
    /usr/bin/python3 - > py.out 2>&1 <<'EOF'
import csv, numpy as np
e = np.load("a.npy").astype(np.float64)
rows = list(csv.DictReader(open("one/noise.csv")))
lab = np.array([int(r["label"]) for r in rows])
trusted = np.array([not (int(r["rounds"]) > 0 and int(r["votes"]) / int(r["rounds"]) >= 0.5) for r in rows])
cos = {}
for i in range(len(rows)):
    same = lab == lab[i]
    use = same & trusted if (same & trusted).any() else same
    use = use.copy(); use[i] = False
    if use.any():
        r = e[use].sum(0)
        cos[i] = float(e[i] @ r / np.linalg.norm(r))
got = {int(r["index"]): float(r["cos"]) for r in csv.DictReader(open("one/suspects.csv"))}
worst = max(abs(got[i] - cos[i]) for i in got)
k = len(got)
lowest = sorted(cos, key=lambda i: (cos[i], i))[:k]
assert sorted(lowest) == sorted(got), ("not the lowest", sorted(lowest), sorted(got))
assert worst < 2e-5, worst
print("max |cos - numpy| %.2g over %d suspects" % (worst, k))
EOF
    rc=$?
    sed 's/^/     /' py.out
    check "one peer: the suspects and their cosines match numpy" test $rc -eq 0
else
    echo "skipped: the numpy check (/usr/bin/python3 with numpy absent)"
    skipped=$((skipped + 1))
fi

# misuse
mkdir nomodel && cp run/noise.csv run/args.txt nomodel/
"$BIN" clean --run nomodel --out x.txt --rank embed > bad1.out 2>&1
check "--rank embed without peer_a.model is refused" test $? -ne 0 -a -n "$(grep 'no peer_a.model' bad1.out)"
"$BIN" clean --run nomodel --out auto.txt --top 0 > auto.out 2>&1
check "auto without models ranks by votes" test $? -eq 0 -a -n "$(grep 'suspects (score >= 0.5)' auto.out)"
"$BIN" clean --run run --out x.txt --rank votes --rate 0.2 > bad2.out 2>&1
check "--rate with --rank votes is refused" test $? -ne 0 -a -n "$(grep -- '--rate' bad2.out)"
mkdir norate && cp run/peer_a.model run/noise.csv run/args.txt norate/ && echo '{"epoch": 0}' > norate/metrics.jsonl
"$BIN" clean --run norate --out x.txt --quiet > bad3.out 2>&1
check "a run without a drop rate asks for --rate" test $? -ne 0 -a -n "$(grep 'no drop_rate.*--rate' bad3.out)"
"$BIN" corrupt --data S --out other.txt --flip 0.1 --seed 9 > /dev/null
"$BIN" clean --run run --out x.txt --data other.txt --quiet > bad4.out 2>&1
check "--data that is not the run's is refused" test $? -ne 0 -a -n "$(grep 'not the data of this run' bad4.out)"
mv S S.moved
"$BIN" clean --run run --out x.txt --quiet > bad5.out 2>&1
check "data that has gone is named" test $? -ne 0 -a -n "$(grep "the run's training data" bad5.out)"
check "nothing written on refusal" test ! -e x.txt

echo "$fail check(s) failed, $skipped skipped"
[ $fail -eq 0 ] || exit 1
[ $skipped -eq 0 ] || exit 77
exit 0
