#!/bin/bash
# tau_dedup.sh: the warm-up run of docs/NOISE_RATE.md, "The noise rate at the end of the
# warm-up": 200 synthetic identities, 10% of them split in two labels, 10% flips + 10% outliers;
# the noise rate estimated at the end of the warm-up (`comine estimate` from the run's table and
# from its checkpoint) and the duplicates found there (`comine dedup` on the run stopped at the
# end of the warm-up, its networks read from checkpoint.bin).  The separable case of the same
# section: experiments/tau_heldout.py and experiments/dedup_heldout.py.
#
# Each run is the first --tk epochs of a 24-epoch run (the learning-rate schedule of a full
# run); it is stopped once the end-of-warm-up table (cos_epoch<tk-1>.csv) and the checkpoint
# after it are written.
#
# usage: bash experiments/tau_dedup.sh <comine binary> <work folder>
set -eu
B=$(readlink -f "${1:?comine binary}")
W=${2:?work folder}
THREADS=${THREADS:-2}
TK=4
mkdir -p "$W"
cd "$W"

# synthetic faces: 200 training identities x 14 images (64 px) and 80 others (outliers' pool)
if [ ! -d syn200 ]; then
    "$B" synth --out all --ids 200 --per-id 14 --size 64 --seed 1 --quiet
    "$B" synth --out dist --ids 80 --first-id 340 --per-id 14 --size 64 --seed 1 --quiet
    mv all syn200
fi

# train the warm-up of a 24-epoch run and stop after it
warmup() { # data out
    local data=$1 out=$2
    [ -f "$out/done" ] && return 0
    rm -rf "$out"
    "$B" train --data "$data" --out "$out" --mode comining --net iresnet18 --width 0.25 --input 64 --epochs 24 \
        --tk $TK --s 32 --m 0.2 --tau 0.2 --batch 64 --seed 1 --threads "$THREADS" --cache --quiet >"$out.log" 2>&1 &
    local pid=$! table="$out/cos_epoch$((TK - 1)).csv"
    while kill -0 $pid 2>/dev/null; do
        if [ -f "$table" ] && [ "$out/checkpoint.bin" -nt "$table" ]; then sleep 3; break; fi
        sleep 3
    done
    kill $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    touch "$out/done"
}

{
    # 200 identities, 10% of them split in two labels, 10% flips and 10% outliers
    [ -f syn_dup20.txt ] || "$B" corrupt --data syn200 --out syn_dup20.txt --duplicate 0.1 --flip 0.1 --outlier 0.1 \
        --distractors dist --seed 4 >/dev/null
    warmup syn_dup20.txt run_dup20
    echo "== noise rate from the end-of-warm-up table"
    "$B" estimate --run run_dup20
    echo "== noise rate from the checkpoint (networks and heads at the end of the warm-up)"
    "$B" estimate --checkpoint run_dup20/checkpoint.bin --data syn_dup20.txt
    for score in centres means; do
        for of in all; do  # at the warm-up nothing is flagged yet: trusted = all
            echo "== dedup at the end of the warm-up: --score $score --means-of $of"
            "$B" dedup --run run_dup20 --score $score --means-of $of --out dup_${score}_$of.csv | grep "against"
        done
    done
}
