#!/bin/bash
# tau_init.sh: the noise rate with a face model of other people (docs/TAU_FACE_MODEL.md):
# `comine estimate --data --init M` (the cross-fit's networks start from M) and `comine estimate
# --model M` (M alone, no training), against the default cross-fit (networks from scratch).
#
# Models: one network of the LFW people outside the protocol's 298 with >= 2 images (DevTest's
# 496 and DevTrain's 886 with 2-4 images: 1,382 people, 4,728 images), one of 1,000 synthetic
# identities disjoint from the sets' (ids 1000-1999, 14 images each); clean labels, mode
# arcface, iresnet18 x0.25 @64, 16 epochs, s 32, m 0.2 (the networks of docs/DEDUP.md).
# Sets (the lists of `experiments/run.sh crossfit`, half flips and half outliers): the
# validation split's 20%, 40% and 50% sets (the learning rate of --init is chosen there, 0.01 or
# 0.1), then the LFW protocol's 20%, 40% and four 50% lists (corrupt --seed 1-4) and synthetic
# faces at 40% and 50% (corrupt --seed 4, 5, 6).  Two folds, 8 epochs per network, fold seed 1.
#
# usage: bash experiments/tau_init.sh <comine binary> <LFW folder> <run.sh data folder> <work folder> [lr]
#   lr: --init's learning rate on the check sets (default: the validation's choice, printed)
set -eu
B=$(readlink -f "${1:?comine binary}")
L=$(readlink -f "${2:?LFW folder (images/, lists/)}")
D=$(readlink -f "${3:?data folder of experiments/run.sh (data and crossfit stages)}")
W=${4:?work folder}
LR=${5:-}
mkdir -p "$W"
cd "$W"
for f in fit_n20.txt fit_n40.txt fit_n50.txt train_n20.txt train_n40.txt train_n50.txt people_fit.txt syn/ids syn/dist; do
    [ -e "$D/$f" ] || { echo "tau_init.sh: $D/$f missing: run experiments/run.sh data crossfit first" >&2; exit 1; }
done
# the other draws of the 50% lists (LFW: corrupt --seed 2-4; synthetic 40% and 50%: --seed 5, 6)
lfw() { "$B" corrupt --data "$L/images" --people "$L/lists/peopleDevTrain.txt" --min-per-id 5 --max-per-id 60 "$@"; }
for s in 2 3 4; do [ -s lfw_n50_c$s.txt ] || lfw --flip 0.25 --outlier 0.25 --seed $s --out lfw_n50_c$s.txt > /dev/null; done
for s in 4 5 6; do
    for n in 40 50; do
        f=$(awk -v n=$n 'BEGIN { printf "%.2f", n / 200 }')
        [ -s syn_n${n}_c$s.txt ] || "$B" corrupt --data "$D/syn/ids" --flip "$f" --outlier "$f" --distractors "$D/syn/dist" \
            --seed $s --out syn_n${n}_c$s.txt > /dev/null
    done
done

# the two networks of other people
if [ ! -s other.txt ]; then
    { awk 'NR > 1 && $2 >= 2' "$L/lists/peopleDevTest.txt"; awk 'NR > 1 && $2 >= 2 && $2 < 5' "$L/lists/peopleDevTrain.txt"; } \
        > other_people.body
    { wc -l < other_people.body; cat other_people.body; } > other_people.txt
    "$B" corrupt --data "$L/images" --people other_people.txt --out other.txt > /dev/null
fi
[ -d syn_other ] || "$B" synth --out syn_other --ids 1000 --first-id 1000 --per-id 14 --size 64 --seed 1 --quiet
for m in "o_s1 other.txt" "so_s1 syn_other"; do
    set -- $m
    [ -f $1/peer_a.model ] || "$B" train --data $2 --out $1 --mode arcface --net iresnet18 --width 0.25 --input 64 \
        --epochs 16 --s 32 --m 0.2 --seed 1 --threads 2 --cache --quiet > $1.log 2>&1
done

# est NAME LIST [args]: one cross-fitted estimate (resumed from its fold runs when there), its
# error printed as a table row
est() {
    local name=$1 list=$2; shift 2
    if [ ! -s $name.json ]; then
        "$B" estimate --data "$list" --out $name --batch 64 --s 32 --m 0.2 --epochs 8 --seed 1 --threads 2 \
            --decode-threads 1 --samples $name.samples.csv --json "$@" > $name.json.tmp 2> $name.log ||
            { echo "tau_init.sh: $name failed (see $W/$name.log)" >&2; return 0; }
        mv $name.json.tmp $name.json
    fi
    awk -v r="$name" '{ for (i = 1; i <= NF; i++) { gsub(/[",:{}]/, "", $i) } }
        { for (i = 1; i < NF; i++) v[$i] = $(i + 1) }
        END { printf "| %s | %.3f | %.3f | %+.3f | %.2f |\n", r, v["true_rate"], v["tau_estimate"],
              v["tau_estimate"] - v["true_rate"], v["lambda"] }' $name.json
}
# rank NAME LIST MODEL: `comine estimate --model` (no training)
rank() {
    local out
    out=$("$B" estimate --model "$3" --data "$2" --json)
    printf '%s\n' "$out" | awk -v r="$1" '{ for (i = 1; i <= NF; i++) { gsub(/[",:{}]/, "", $i) } }
        { for (i = 1; i < NF; i++) v[$i] = $(i + 1) }
        END { printf "| %s | %.3f | %.3f | %+.3f | - |\n", r, v["true_rate"], v["tau_estimate"],
              v["tau_estimate"] - v["true_rate"] }'
}
O=$PWD/o_s1/peer_a.model
S=$PWD/so_s1/peer_a.model
echo "| estimate | true rate | estimate | error | lambda |"
echo "|---|---|---|---|---|"
# the validation split: the learning rate of --init
for n in 20 40 50; do
    est val_n${n} "$D/fit_n$n.txt" --net iresnet18 --width 0.25 --input 64 --lr 0.1
    for lr in 0.01 0.1; do est init_val_n${n}_lr$lr "$D/fit_n$n.txt" --init "$O" --lr $lr; done
    rank model_val_n$n "$D/fit_n$n.txt" "$O"
done
if [ -z "$LR" ]; then
    LR=$(for lr in 0.01 0.1; do
        cat init_val_n20_lr$lr.json init_val_n40_lr$lr.json init_val_n50_lr$lr.json | tr -d '\n' |
            awk -v lr=$lr '{ n = split($0, a, "\"error\": "); s = 0; for (i = 2; i <= n; i++) { e = a[i] + 0; s += e < 0 ? -e : e }
                             print s, lr }'
    done | sort -g | head -n 1 | cut -d' ' -f2)
fi
echo "(--init's learning rate on the check sets: $LR)"
# the checks: LFW (a network of other LFW people), synthetic faces (one of other synthetic identities)
for t in "lfw_n20 $D/train_n20.txt" "lfw_n40 $D/train_n40.txt" "lfw_n50 $D/train_n50.txt" \
    "lfw_n50_c2 lfw_n50_c2.txt" "lfw_n50_c3 lfw_n50_c3.txt" "lfw_n50_c4 lfw_n50_c4.txt"; do
    set -- $t
    est $1 $2 --net iresnet18 --width 0.25 --input 64 --lr 0.1
    est init_$1 $2 --init "$O" --lr $LR
    rank model_$1 $2 "$O"
done
for s in 4 5 6; do
    for n in 40 50; do
        est syn_n${n}_c$s syn_n${n}_c$s.txt --net iresnet18 --width 0.25 --input 64 --lr 0.1
        est init_syn_n${n}_c$s syn_n${n}_c$s.txt --init "$S" --lr $LR
        rank model_syn_n${n}_c$s syn_n${n}_c$s.txt "$S"
    done
done
