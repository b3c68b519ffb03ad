#!/bin/bash
# dedup_more.sh: the duplicate-identity measurements of docs/DEDUP.md: `comine dedup`'s scores
# (--score means and ratio) on finished comining runs, the scores of experiments/dedup_more.py,
# dedup through the epochs of a run (a copy of checkpoint.bin after every epoch), and networks
# trained on other LFW people (`comine dedup --model`), alone, with a run's own peer, and
# fine-tuned on each set (`train --init`, then `comine dedup --run`); the synthetic sets with
# other noise fine-tuned from a network of other synthetic identities.
#
# Data, 10% of the identities split in two labels (30 pairs), alone (_d) and with 10% flips +
# 10% outliers (_dn): LFW, the DevTrain people with >= 5 images, at most 60 each (298
# identities, 3,678 images); synthetic faces, 300 identities x 14 images at 64 px, outliers from
# 40 others.  Two draws: the one the score was chosen on (corrupt --seed 2, train --seed 1) and
# the one that checks it (v_: corrupt --seed 3, train --seed 2).  comining, iresnet18 x0.25 @64,
# s 32, m 0.2, tau 0.2; LFW 8 epochs, synthetic 16.
#
# usage: bash experiments/dedup_more.sh <comine binary> <LFW folder> <work folder>
set -eu
B=$(readlink -f "${1:?comine binary}")
L=$(readlink -f "${2:?LFW folder (images/, lists/)}")
W=${3:?work folder}
PY=/usr/bin/python3
HERE=$(dirname "$(readlink -f "$0")")
mkdir -p "$W"
cd "$W"

[ -d syn300 ] || "$B" synth --out syn300 --ids 300 --per-id 14 --size 64 --seed 1 --quiet
[ -d dist40 ] || "$B" synth --out dist40 --ids 40 --first-id 300 --per-id 14 --size 64 --seed 1 --quiet
lfw() { "$B" corrupt --data "$L/images" --people "$L/lists/peopleDevTrain.txt" --min-per-id 5 --max-per-id 60 "$@"; }
for s in 2 3; do
    p=$([ $s = 2 ] && echo "" || echo v_)
    [ -s ${p}lfw_d.txt ] || lfw --duplicate 0.1 --seed $s --out ${p}lfw_d.txt >/dev/null
    [ -s ${p}lfw_dn.txt ] || lfw --duplicate 0.1 --flip 0.1 --outlier 0.1 --seed $s --out ${p}lfw_dn.txt >/dev/null
    [ -s ${p}syn_d.txt ] || "$B" corrupt --data syn300 --duplicate 0.1 --seed $s --out ${p}syn_d.txt >/dev/null
    [ -s ${p}syn_dn.txt ] || "$B" corrupt --data syn300 --duplicate 0.1 --flip 0.1 --outlier 0.1 --distractors dist40 \
        --seed $s --out ${p}syn_dn.txt >/dev/null
done

# train DATA EPOCHS SEED OUT [snapshots]: a comining run; with `snapshots`, a copy of its
# checkpoint (and noise.csv, args.txt) in OUT.snaps/eN after each one it writes
train() {
    local data=$1 epochs=$2 seed=$3 out=$4 snaps=${5:-}
    [ -f "$out/peer_b.model" ] && return 0
    rm -rf "$out" "$out.snaps"
    "$B" train --data "$data" --out "$out" --mode comining --net iresnet18 --width 0.25 --input 64 --epochs "$epochs" \
        --s 32 --m 0.2 --tau 0.2 --seed "$seed" --threads 2 --cache --quiet >"$out.log" 2>&1 &
    local pid=$! last=""
    while kill -0 $pid 2>/dev/null; do
        if [ -n "$snaps" ] && [ -f "$out/checkpoint.bin" ]; then
            local m; m=$(stat -c %Y "$out/checkpoint.bin")
            if [ "$m" != "$last" ]; then
                sleep 1
                local e; e=$(od -An -t d4 -j 40 -N 4 "$out/checkpoint.bin" | tr -d ' ')
                mkdir -p "$out.snaps/e$e"
                cp "$out/checkpoint.bin" "$out/noise.csv" "$out/args.txt" "$out.snaps/e$e/" 2>/dev/null || true
                last=$m
            fi
        fi
        sleep 1
    done
    wait $pid
}
embed() { local r=$1 d=$2 p; for p in a b; do [ -s "$r/emb_$p.npy" ] || \
    "$B" embed --model "$r/peer_$p.model" --data "$d" --out "$r/emb_$p.npy" --threads 2 --quiet >/dev/null; done; }

for name in lfw_d lfw_dn syn_d syn_dn v_lfw_d v_lfw_dn v_syn_d v_syn_dn; do
    epochs=$(case $name in *lfw*) echo 8 ;; *) echo 16 ;; esac)
    seed=$(case $name in v_*) echo 2 ;; *) echo 1 ;; esac)
    snaps=$(case $name in lfw_dn | syn_dn) echo 1 ;; *) echo "" ;; esac)
    train $name.txt "$epochs" "$seed" r_$name $snaps
    embed r_$name $name.txt
    echo "== $name"
    for score in means ratio; do
        "$B" dedup --run r_$name --data $name.txt --score $score --out r_$name/dedup_$score.csv --threads 2 |
            sed -n "s/^against.*: \(precision.*\)/--score $score: \1/p"
    done
    $PY "$HERE/dedup_more.py" means r_$name $name.txt
    $PY "$HERE/dedup_more.py" heads r_$name $name.txt
    if [ -n "$snaps" ]; then
        echo "-- dedup after each epoch (the networks of the checkpoint), --score means and ratio"
        for e in $(ls r_$name.snaps | sed 's/^e//' | sort -n); do
            for score in means ratio; do
                printf "epoch %2d %-5s " "$e" $score
                "$B" dedup --run r_$name.snaps/e$e --data $name.txt --score $score --out r_$name.snaps/e$e/$score.csv \
                    --threads 2 | sed -n 's/^against.*: \(precision.*\)/\1/p'
            done
        done
    fi
done

# ---- a network trained on other people: the LFW people outside the 298 with >= 2 images (DevTest's
# 496 and DevTrain's 886 with 2-4 images: 1,382 people, 4,728 images), clean labels, mode
# arcface, seeds 1 and 2; `comine dedup --model` alone, the two together, and each with one of a
# run's own peers
if [ ! -s other.txt ]; then
    { awk 'NR > 1 && $2 >= 2' "$L/lists/peopleDevTest.txt"; awk 'NR > 1 && $2 >= 2 && $2 < 5' "$L/lists/peopleDevTrain.txt"; } \
        > other_people.body
    { wc -l < other_people.body; cat other_people.body; } > other_people.txt
    "$B" corrupt --data "$L/images" --people other_people.txt --out other.txt >/dev/null
fi
for s in 1 2; do
    [ -f o_s$s/peer_a.model ] || "$B" train --data other.txt --out o_s$s --mode arcface --net iresnet18 --width 0.25 \
        --input 64 --epochs 16 --s 32 --m 0.2 --seed $s --threads 2 --cache --quiet >o_s$s.log 2>&1
done
for name in lfw_d lfw_dn v_lfw_d v_lfw_dn; do
    echo "== $name, networks trained on other people"
    for models in "o_s1/peer_a.model" "o_s2/peer_a.model" "o_s1/peer_a.model o_s2/peer_a.model" \
        "o_s1/peer_a.model r_$name/peer_a.model" "o_s2/peer_a.model r_$name/peer_b.model"; do
        for score in ratio means; do
            args=""; for m in $models; do args="$args --model $m"; done
            # shellcheck disable=SC2086
            printf "%-45s %-5s %s\n" "$models" $score "$("$B" dedup $args --data $name.txt --score $score \
                --out o_$name.csv --threads 2 | sed -n 's/^against.*: \(precision.*\)/\1/p')"
        done
    done
done

# ---- the two networks of other people fine-tuned on each LFW set (comining, --init, the
# fine-tuning recipe of EXPERIMENTS.md: 8 epochs, lr 0.01, no warm-up, Tk 2), then dedup --run
for name in lfw_dn v_lfw_dn lfw_d v_lfw_d; do
    seed=$(case $name in v_*) echo 2 ;; *) echo 1 ;; esac)
    [ -f f_$name/peer_b.model ] || "$B" train --data $name.txt --out f_$name --mode comining --net iresnet18 --width 0.25 \
        --input 64 --epochs 8 --lr 0.01 --warmup-epochs 0 --tk 2 --s 32 --m 0.2 --tau 0.2 --seed "$seed" \
        --init o_s1/peer_a.model --init o_s2/peer_a.model --threads 2 --cache --quiet >f_$name.log 2>&1
    for score in ratio means; do
        printf "== %s, fine-tuned from the networks of other people: --score %-5s %s\n" $name $score \
            "$("$B" dedup --run f_$name --data $name.txt --score $score --out f_$name/$score.csv --threads 2 |
               sed -n 's/^against.*: \(precision.*\)/\1/p')"
    done
done

# ---- a network trained on 1,000 other synthetic identities (ids 1000-1999, 14 images each,
# clean labels, mode arcface, 16 epochs): `comine dedup --model` on the four synthetic sets
[ -d syn_other ] || "$B" synth --out syn_other --ids 1000 --first-id 1000 --per-id 14 --size 64 --seed 1 --quiet
[ -f so_s1/peer_a.model ] || "$B" train --data syn_other --out so_s1 --mode arcface --net iresnet18 --width 0.25 \
    --input 64 --epochs 16 --s 32 --m 0.2 --seed 1 --threads 2 --cache --quiet >so_s1.log 2>&1
for name in syn_d syn_dn v_syn_d v_syn_dn; do
    for score in ratio means; do
        printf "== %s, a network of 1,000 other synthetic identities: --score %-5s %s\n" $name $score \
            "$("$B" dedup --model so_s1/peer_a.model --data $name.txt --score $score --out so_$name.csv --threads 2 |
               sed -n 's/^against.*: \(precision.*\)/\1/p')"
    done
done

# ---- the automatic threshold's k (docs/DEDUP.md): every set and network above, `--all`, the rule at
# k = 1.25 .. 2.25 (draw 1: the sets the score was chosen on; draw 2: the v_ sets)
args=()
for r in r_lfw_d r_lfw_dn r_syn_d r_syn_dn r_v_lfw_d r_v_lfw_dn r_v_syn_d r_v_syn_dn f_lfw_d f_lfw_dn f_v_lfw_d f_v_lfw_dn; do
    name=${r#*_}
    "$B" dedup --run $r --data $name.txt --all --out all_$r.csv --threads 2 >/dev/null
    args+=("$(case $name in v_*) echo 2 ;; *) echo 1 ;; esac):all_$r.csv:$name.txt.duplicates.tsv")
done
for name in syn_d syn_dn v_syn_d v_syn_dn lfw_d lfw_dn v_lfw_d v_lfw_dn; do
    model=$(case $name in *syn*) echo so_s1/peer_a.model ;; *) echo o_s1/peer_a.model ;; esac)
    "$B" dedup --model $model --data $name.txt --all --out all_m_$name.csv --threads 2 >/dev/null
    args+=("$(case $name in v_*) echo 2 ;; *) echo 1 ;; esac):all_m_$name.csv:$name.txt.duplicates.tsv")
done
$PY "$HERE/dedup_ksigma.py" "${args[@]}"

# ---- the synthetic sets with other noise, comining started from the network of other synthetic
# identities (the fine-tuning recipe above, both peers from it), then dedup --run
for name in syn_dn v_syn_dn; do
    seed=$(case $name in v_*) echo 2 ;; *) echo 1 ;; esac)
    [ -f fs_$name/peer_b.model ] || "$B" train --data $name.txt --out fs_$name --mode comining --net iresnet18 \
        --width 0.25 --input 64 --epochs 8 --lr 0.01 --warmup-epochs 0 --tk 2 --s 32 --m 0.2 --tau 0.2 --seed "$seed" \
        --init so_s1/peer_a.model --threads 2 --cache --quiet >fs_$name.log 2>&1
    for score in ratio means; do
        printf "== %s, fine-tuned from the network of other synthetic identities: --score %-5s %s\n" $name $score \
            "$("$B" dedup --run fs_$name --data $name.txt --score $score --out fs_$name/$score.csv --threads 2 |
               sed -n 's/^against.*: \(precision.*\)/\1/p')"
    done
done
