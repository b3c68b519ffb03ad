#!/usr/bin/env bash
# run.sh: the LFW experiment of docs/EXPERIMENTS.md, from scratch, resumable.
#
#   experiments/run.sh [options] [STAGE...]
#
# Stages (default: data main val margin table):
#   data   the noisy training lists (0%, 20%, 40%: half label flips, half outliers) and the
#          validation split (training identities only)
#   main   the table: every mode x noise rate x seed, trained, verified on pairsDevTest, and
#          scored for noise detection
#   val    the hyper-parameter study on the validation split (never on pairsDevTest)
#   margin the validation study's best change (m 0.2 for 0.5) on pairsDevTest at 20% and 40%
#          noise: arcface, comining and coteach, every seed; reported beside the table
#   paired comining against coteach at m 0.2, 20% and 40% noise, over --paired-seeds (the
#          margin stage's runs are reused for its seeds): the paired differences per seed
#   finetune  the fine-tuning recipe: comining pre-trained on one half of the training people
#          (clean), then started from (--init) on the other half at 40% noise for a few epochs,
#          against comining from scratch on that half; detection and pairsDevTest (not run by
#          default: results/finetune.md)
#   dup    duplicate identities and the unknown noise rate: 10% of the training identities split
#          in two labels plus 20% / 40% noise, comining with and without --merge-duplicates;
#          and --tau auto on the plain 20% / 40% sets against the true tau (the m 0.2 runs of
#          the margin stage); results/dup.md (not run by default)
#   reweight  the re-weighting study on the validation split (never on pairsDevTest), 40% noise,
#          m 0.2, seed 1: dm 0.1 / 0.2 / 0.3, the re-weighting from epoch Tk on or ramped with the
#          drop rate (--reweight-schedule), `weight` always and ramped, coteach as the baseline
#          (results/reweight.md; not run by default)
#   ramp   the validation's best re-weighting (--reweight-schedule ramp) confirmed on pairsDevTest:
#          comining with it at m 0.2, 20% and 40% noise, over --paired-seeds, paired with the
#          paired stage's comining (default schedule) and coteach runs (results/ramp.md; not
#          run by default)
#   scale  the multi-process and Partial FC settings against one process on pairsDevTest (40%
#          noise, m 0.2, comining): 2 ranks x 1 thread (mpiexec; the --paired-seeds' first two)
#          and --sample-rate 0.1 (the first three), paired with the paired stage's runs of the
#          same seeds (results/scale.md; not run by default)
#   subcenter  Sub-center ArcFace (--subcenters 3, the paper's K) at 40% noise, m 0.2, every seed:
#          arcface and comining with it, also with --subcenter-drop (sc3d_), against the margin
#          stage's arcface and comining and the oracle (results/subcenter.md; not run by default)
#   vote   the noise report's vote threshold: chosen on the validation split (comining at m 0.2,
#          20% and 40% noise), checked on the paired stage's comining runs (results/vote.md;
#          not run by default)
#   scval  the epoch of --subcenter-drop chosen on the validation split (40% noise, seed 1):
#          arcface --subcenters 3 with no drop and drops at 6, 12, 18; comining with drops at 5
#          and 12 against the vote stage's plain comining; arcface's pick on pairsDevTest, every
#          seed (results/scval.md; not run by default)
#   taupost the noise rate estimated after a run (comine estimate on the finished peers), with the
#          drop rate right or wrong: 0-50% noise (results/taupost.md; not run by default)
#   crossfit the noise rate by cross-fitting (`comine estimate --data`) on the training set and
#          on synthetic faces at 0-50% noise, with --by-image 0.5 (the default) and 0
#          (results/crossfit.md; the validation split's: results/crossfit_val.md, --by-image 0,
#          0.5 and 1, and 40% of one kind of noise); comining with --tau auto
#          against the true tau at 20% and 40% noise over --paired-seeds (results/tauauto.md;
#          not run by default)
#   detect the noise report ranked by the peers' embeddings (`clean --rank embed`) against the
#          votes, on the vote stage's runs and every other finished two-peer run
#          (experiments/detect.sh, results/detect.md; not run by default)
#   table  results/table.md, results/summary.tsv, results/margin.md, results/paired.md, plots
#
# Options:
#   --work DIR     where runs and results go (default runs/experiments)
#   --lfw DIR      the LFW folder (default ../shared/data/lfw112, or $COMINE_LFW)
#   --seeds "S.."  training seeds (default "1 2 3")
#   --paired-seeds "S.."  seeds of the paired stage (default "1 2 3 4 5")
#   --min-per-id N  training identities: DevTrain people with >= N images (default 5: 298
#                  people; 3: about 630); the others give the outliers.  Use its own --work.
#   --jobs N       runs at a time, each on one thread (default: the number of cores)
#   --epochs N     epochs of every run (default 24)
#   --only REGEX   main/val: only the runs whose name matches (e.g. 'n40_')
#
# A finished run leaves RUN/result.tsv and is skipped next time; an interrupted one is
# continued from its checkpoint (`comine train --resume`).  Each run's log is RUN.log.
# (The whole script is one block, read before it runs: editing it during a run is safe.)
set -euo pipefail
{
caller=$PWD
cd "$(dirname "$0")/.."
root=$PWD
abs() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$caller" "$1" ;; esac; }

work=$root/runs/experiments
lfw=$(abs "${COMINE_LFW:-$root/../shared/data/lfw112}")
seeds="1 2 3"
paired_seeds="1 2 3 4 5"
min_per_id=5
jobs=$(nproc 2>/dev/null || echo 2)
epochs=24
only=""
stages=()
while [ $# -gt 0 ]; do
  case "$1" in
    --work) work=$(abs "$2"); shift 2 ;;
    --lfw) lfw=$(abs "$2"); shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --paired-seeds) paired_seeds=$2; shift 2 ;;
    --min-per-id) min_per_id=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    data|main|val|margin|paired|finetune|dup|reweight|ramp|scale|subcenter|vote|scval|taupost|crossfit|detect|table) stages+=("$1"); shift ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#stages[@]} -gt 0 ] || stages=(data main val margin paired table)

if [ ! -f "$lfw/lists/pairsDevTest.txt" ] || [ ! -d "$lfw/images" ]; then
  echo "run.sh: no LFW at '$lfw' (expected images/ and lists/pairsDevTest.txt); set --lfw or COMINE_LFW" >&2
  exit 2
fi

bin=$(abs "${COMINE_BIN:-$root/build/release/comine}")
if [ -z "${COMINE_BIN:-}" ]; then
  scripts/deps.sh
  cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" --target comine >/dev/null
fi
mkdir -p "$work/data" "$work/runs" "$work/results"
data=$work/data
images=$lfw/images
pairs=$lfw/lists/pairsDevTest.txt

# The common training set-up: METHOD.md's PyTorch reference run.
common=(--net iresnet18 --width 0.25 --input 64 --batch 64 --epochs "$epochs" --lr 0.1 --lr-schedule cosine
        --warmup-epochs 1 --s 32 --m 0.5 --fallback easy --tk 5 --threads 1 --decode-threads 1 --quiet)

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# ---- data ----------------------------------------------------------------------------------
# Training identities: DevTrain people with >= 5 images (--min-per-id), at most 60 each (298
# people, 3,678 images); outliers are images of the DevTrain people with fewer images.  The noisy sets
# use one data seed, so every training seed sees the same noisy labels.
# The validation split: every 6th training identity (in the people file's order) is held out,
# its images (clean) make verification pairs; the other identities, noised at 40%, train.
# train_nNOISE.txt: NOISE% of the samples noisy, half flips, half outliers
make_train_set() {
  local n=$1 people=$lfw/lists/peopleDevTrain.txt
  local f; f=$(awk -v n="$n" 'BEGIN { printf "%.2f", n / 200 }')
  # with fewer than 5 images an identity can lose them all to 40% noise: each keeps one
  local keep=(); [ "$min_per_id" -lt 5 ] && keep=(--keep-one)
  [ -s "$data/train_n$n.txt" ] && return 0
  "$bin" corrupt --data "$images" --people "$people" --min-per-id "$min_per_id" --max-per-id 60 \
    --flip "$f" --outlier "$f" --seed 1 "${keep[@]}" --out "$data/train_n$n.txt.tmp"
  mv "$data/train_n$n.txt.tmp" "$data/train_n$n.txt"
}
stage_data() {
  local n people=$lfw/lists/peopleDevTrain.txt
  for n in 0 20 40; do make_train_set "$n"; done
  if [ ! -s "$data/val_pairs.txt" ]; then
    # people with >= min_per_id images in the order of the people file; every 6th is a validation identity
    awk -v min="$min_per_id" 'NR > 1 && $2 >= min { k++; if (k % 6 == 0) print > "'"$data/people_val.body"'"; else print > "'"$data/people_fit.body"'" }
         NR > 1 && $2 < min { print > "'"$data/people_fit.body"'" }' "$people"
    for s in val fit; do
      { wc -l < "$data/people_$s.body" | tr -d ' '; cat "$data/people_$s.body"; } > "$data/people_$s.txt"
      rm "$data/people_$s.body"
    done
    "$bin" corrupt --data "$images" --people "$data/people_fit.txt" --min-per-id "$min_per_id" --max-per-id 60 \
      --flip 0.2 --outlier 0.2 --seed 1 $([ "$min_per_id" -lt 5 ] && echo --keep-one) --out "$data/fit_n40.txt"
    "$bin" corrupt --data "$images" --people "$data/people_val.txt" --min-per-id "$min_per_id" --max-per-id 60 \
      --seed 1 --out "$data/val.txt"
    "$bin" pairs --data "$data/val.txt" --count 600 --seed 1 --out "$data/val_pairs.txt.tmp"
    mv "$data/val_pairs.txt.tmp" "$data/val_pairs.txt"
  fi
  [ -s "$data/fit_n20.txt" ] || { "$bin" corrupt --data "$images" --people "$data/people_fit.txt" --min-per-id \
    "$min_per_id" --max-per-id 60 --flip 0.1 --outlier 0.1 --seed 1 $([ "$min_per_id" -lt 5 ] && echo --keep-one) \
    --out "$data/fit_n20.txt.tmp" && mv "$data/fit_n20.txt.tmp" "$data/fit_n20.txt"; }
}

# ---- one run --------------------------------------------------------------------------------
# run_one NAME DATA PAIRS PAIRS_ROOT NOISE MODE SEED [train options...]
# Trains (or resumes), verifies peer A and, with two peers, A+B, scores detection, and writes
# RUN/result.tsv: name noise mode seed acc_a std_a acc_ab std_ab precision recall f1 train_s
run_one() {
  local name=$1 list=$2 vpairs=$3 vroot=$4 noise=$5 mode=$6 seed=$7
  shift 7
  # --ranks P (first, optional): train under mpiexec with P ranks of one thread each
  local launch=()
  if [ "${1:-}" = --ranks ]; then
    launch=(mpiexec -np "$2" --oversubscribe --bind-to none); shift 2
  fi
  local dir=$work/runs/$name
  [ -s "$dir/result.tsv" ] && return 0
  local logf=$work/runs/$name.log
  if [ ! -f "$dir/trained" ]; then
    if [ -f "$dir/checkpoint.bin" ]; then
      log "resume $name"
      "${launch[@]}" "$bin" train --resume "$dir" >> "$logf" 2>&1 || { log "FAILED $name (see $logf)"; return 1; }
    else
      log "start  $name"
      rm -rf "$dir"
      "${launch[@]}" "$bin" train --data "$list" --out "$dir" --mode "$mode" --seed "$seed" "${common[@]}" "$@" > "$logf" 2>&1 ||
        { log "FAILED $name (see $logf)"; return 1; }
    fi
    touch "$dir/trained"
  fi
  local a ab="-	-" det="-	-	-"
  a=$("$bin" eval --model "$dir/peer_a.model" --pairs "$vpairs" --root "$vroot" --threads 1 --decode-threads 1 --json |
      sed -n 's/.*"accuracy": *\([0-9.]*\).*"accuracy_std": *\([0-9.]*\).*/\1\t\2/p')
  if [ -f "$dir/peer_b.model" ]; then
    ab=$("$bin" eval --model "$dir/peer_a.model" --model "$dir/peer_b.model" --pairs "$vpairs" --root "$vroot" \
         --threads 1 --decode-threads 1 --json |
         sed -n 's/.*"accuracy": *\([0-9.]*\).*"accuracy_std": *\([0-9.]*\).*/\1\t\2/p')
  fi
  if [ "$mode" != arcface ] && [ "$mode" != oracle ] && [ "$noise" != 0 ]; then
    det=$("$bin" clean --run "$dir" --rank votes --out "$dir/cleaned.txt" --top 0 |
          sed -n 's/.*precision \([0-9.]*\) recall \([0-9.]*\) F1 \([0-9.]*\).*/\1\t\2\t\3/p' | head -1)
  fi
  local secs
  secs=$(sed -n 's/.*"seconds": *\([0-9.]*\).*/\1/p' "$dir/metrics.jsonl" | awk '{ s += $1 } END { printf "%.0f", s }')
  if [ -z "$a" ] || [ -z "$ab" ] || [ -z "$det" ]; then log "FAILED $name: evaluation gave no figure"; return 1; fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$noise" "$mode" "$seed" "$a" "$ab" "$det" "$secs" > "$dir/result.tsv.tmp"
  mv "$dir/result.tsv.tmp" "$dir/result.tsv"
  log "done   $name: $(cut -f5- "$dir/result.tsv" | tr '\t' ' ')"
}

# Runs the queued jobs (lines: run_one arguments) $jobs at a time, in order.
queue=()
enqueue() { local IFS=$'\x1f'; queue+=("$*"); }
drain() {
  local failed=0 item pid pids=()
  for item in "${queue[@]}"; do
    local IFS=$'\x1f'
    # shellcheck disable=SC2086
    set -- $item
    unset IFS
    if [ -n "$only" ] && ! [[ $1 =~ $only ]]; then continue; fi
    [ -s "$work/runs/$1/result.tsv" ] && continue
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    run_one "$@" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done   # bash keeps each status
  queue=()
  return $failed
}

# tau: the drop rate after warm-up is the noise rate (the paper's setting: the rate is taken as
# known); on clean data a user who does not know would still drop some: 0.1.
tau_for() { case "$1" in 0) echo 0.1 ;; 20) echo 0.2 ;; 40) echo 0.4 ;; esac; }

# The order is the order of importance: METHOD.md's reference (40%) first, then 0%, then 20%.
stage_main() {
  local n mode s
  for n in 40 0 20; do
    local modes="arcface comining coteach oracle nld"
    [ "$n" = 40 ] && modes="$modes self"
    [ "$n" = 0 ] && modes="arcface comining coteach nld"   # oracle on clean data is arcface
    for s in $seeds; do
      for mode in $modes; do
        enqueue "n${n}_${mode}_s$s" "$data/train_n$n.txt" "$pairs" "$images" "$n" "$mode" "$s" --tau "$(tau_for "$n")"
      done
    done
  done
  drain
}

# The validation study: what the defaults could change, at 40% noise, one seed, scored on the
# validation pairs.  Each line is a run name and its options.
stage_val() {
  local s=1
  while read -r name mode opts; do
    [ -n "$name" ] || continue
    # shellcheck disable=SC2086
    enqueue "val_${name}" "$data/fit_n40.txt" "$data/val_pairs.txt" "$data" 40 "$mode" "$s" $opts
  done <<'EOF'
arcface           arcface  --tau 0.4
coteach           coteach  --tau 0.4
comining_margin   comining --tau 0.4 --reweight margin --dm 0.2
comining_weight   comining --tau 0.4 --reweight weight --w 2
comining_tau30    comining --tau 0.3 --reweight margin --dm 0.2
comining_m02      comining --tau 0.4 --reweight margin --dm 0.2 --m 0.2
EOF
  drain
}

# The margin chosen on the validation split (m 0.2, the best row of stage_val) against the
# reference's m 0.5 on pairsDevTest, 20% and 40% noise, every seed, for arcface and the two
# modes that differ only in the re-weighting.  A check of the validation's choice, not a
# choice: the main table keeps the reference run's set-up.
stage_margin() {
  local n s mode
  for n in 20 40; do
    for s in $seeds; do
      for mode in arcface comining coteach; do
        enqueue "m02_n${n}_${mode}_s$s" "$data/train_n$n.txt" "$pairs" "$images" "$n" "$mode" "$s" \
          --tau "$(tau_for "$n")" --m 0.2
      done
    done
  done
  drain
}

# comining against coteach on the same noisy sets and seeds, at the validation's margin: enough
# seeds for a paired interval and a sign test (results/paired.md)
stage_paired() {
  local n s mode
  for n in 20 40; do
    for s in $paired_seeds; do
      for mode in comining coteach; do
        enqueue "m02_n${n}_${mode}_s$s" "$data/train_n$n.txt" "$pairs" "$images" "$n" "$mode" "$s" \
          --tau "$(tau_for "$n")" --m 0.2
      done
    done
  done
  drain
}

# The re-weighting ramp (the validation study's best detection) on pairsDevTest: runs named
# m02_nNOISE_ramp_sSEED so that paired.awk pairs them with the paired stage's comining and coteach
# runs of the same seed (results/ramp.md)
stage_ramp() {
  local n s
  for n in 20 40; do
    for s in $paired_seeds; do
      enqueue "m02_n${n}_ramp_s$s" "$data/train_n$n.txt" "$pairs" "$images" "$n" comining "$s" \
        --tau "$(tau_for "$n")" --m 0.2 --reweight-schedule ramp
    done
  done
  drain || true
  local res=$work/results
  cat "$work"/runs/m02_n*_{ramp,comining,coteach}_s*/result.tsv 2>/dev/null | sort > "$res/ramp.tsv" || true
  { echo "ramp against the default schedule:"; echo
    awk -F'\t' -v a=ramp -v b=comining -f "$root/experiments/paired.awk" "$res/ramp.tsv"; echo
    echo "ramp against coteach:"; echo
    awk -F'\t' -v a=ramp -v b=coteach -f "$root/experiments/paired.awk" "$res/ramp.tsv"; } > "$res/ramp.md"
  cat "$res/ramp.md"
}

# Data parallel and Partial FC against one process: runs named m02_n40_p2_sSEED (2 ranks x 1
# thread, per-rank batch norm over 32 images) and m02_n40_pfc01_sSEED (--sample-rate 0.1: with 298
# classes and batch 64 that is the batch's classes alone), paired with the paired stage's comining
# runs of the same seeds (results/scale.md)
stage_scale() {
  local s k=0
  for s in $paired_seeds; do
    k=$((k + 1))
    [ $k -le 3 ] && enqueue "m02_n40_pfc01_s$s" "$data/train_n40.txt" "$pairs" "$images" 40 comining "$s" \
      --tau 0.4 --m 0.2 --sample-rate 0.1
    [ $k -le 2 ] && enqueue "m02_n40_p2_s$s" "$data/train_n40.txt" "$pairs" "$images" 40 comining "$s" \
      --ranks 2 --tau 0.4 --m 0.2
  done
  drain || true
  local res=$work/results
  cat "$work"/runs/m02_n40_{p2,pfc01,comining}_s*/result.tsv 2>/dev/null | sort > "$res/scale.tsv" || true
  { echo "2 ranks x 1 thread against 1 process:"; echo
    awk -F'\t' -v a=p2 -v b=comining -f "$root/experiments/paired.awk" "$res/scale.tsv"; echo
    echo "--sample-rate 0.1 against every class:"; echo
    awk -F'\t' -v a=pfc01 -v b=comining -f "$root/experiments/paired.awk" "$res/scale.tsv"; } > "$res/scale.md"
  cat "$res/scale.md"
}

# The recipe "clean a new data set with a pre-trained model": the training people split in two
# halves by their order in the people file (odd / even); half P, clean, pre-trains a comining
# pair; half Q at 40% noise (outliers from the people with fewer images) is trained from
# scratch (24 epochs) or fine-tuned from P's pair (--init A --init B: new heads, 8 epochs, lr
# 0.01, the drop rate at tau after 2 epochs).  results/finetune.md.
stage_finetune() {
  local people=$lfw/lists/peopleDevTrain.txt s
  if [ ! -s "$data/ft_q_n40.txt" ]; then
    awk -v min="$min_per_id" 'NR > 1 && $2 >= min { k++; print > ("'"$data"'/ft_people_" (k % 2 ? "p" : "q") ".body") }
         NR > 1 && $2 < min { print > "'"$data/ft_people_q.body"'" }' "$people"
    for s in p q; do
      { wc -l < "$data/ft_people_$s.body" | tr -d ' '; cat "$data/ft_people_$s.body"; } > "$data/ft_people_$s.txt"
      rm "$data/ft_people_$s.body"
    done
    "$bin" corrupt --data "$images" --people "$data/ft_people_p.txt" --min-per-id "$min_per_id" --max-per-id 60 \
      --seed 1 --out "$data/ft_p.txt"
    "$bin" corrupt --data "$images" --people "$data/ft_people_q.txt" --min-per-id "$min_per_id" --max-per-id 60 \
      --flip 0.2 --outlier 0.2 --seed 1 $([ "$min_per_id" -lt 5 ] && echo --keep-one) --out "$data/ft_q_n40.txt.tmp"
    mv "$data/ft_q_n40.txt.tmp" "$data/ft_q_n40.txt"
  fi
  enqueue ft_pre "$data/ft_p.txt" "$pairs" "$images" 0 comining 1 --tau 0.1 --m 0.2
  drain
  local pre=$work/runs/ft_pre
  for s in $seeds; do
    enqueue "ft_scratch_n40_s$s" "$data/ft_q_n40.txt" "$pairs" "$images" 40 comining "$s" --tau 0.4 --m 0.2
    enqueue "ft_init_n40_s$s" "$data/ft_q_n40.txt" "$pairs" "$images" 40 comining "$s" --tau 0.4 --m 0.2 \
      --init "$pre/peer_a.model" --init "$pre/peer_b.model" --epochs 8 --lr 0.01 --warmup-epochs 0 --tk 2
  done
  drain
  local res=$work/results
  cat "$work"/runs/ft_*/result.tsv 2>/dev/null | sort > "$res/finetune.tsv" || true
  awk -F'\t' '
    $1 ~ /^ft_(scratch|init)_/ { k = $1; sub(/_s[0-9]+$/, "", k); n[k]++; a[k] += $5; ab[k] += $7; p[k] += $9
                                 r[k] += $10; f[k] += $11; t[k] += $12 }
    END { print "| run | seeds | DevTest peer A | DevTest A+B | detection P | R | F1 | train min (mean) |"
          print "|---|---|---|---|---|---|---|---|"
          for (k in n) printf "| %s | %d | %.1f | %.1f | %.3f | %.3f | %.3f | %.1f |\n", k, n[k], 100 * a[k] / n[k],
                              100 * ab[k] / n[k], p[k] / n[k], r[k] / n[k], f[k] / n[k], t[k] / n[k] / 60 }' \
    "$res/finetune.tsv" > "$res/finetune.md"
  cat "$res/finetune.md"
}

# The re-weighting of C studied on the validation split (when and how strongly C is
# re-weighted), in the order of importance; results/reweight.md.
stage_reweight() {
  local s=1 name mode opts
  while read -r name mode opts; do
    [ -n "$name" ] || continue
    # shellcheck disable=SC2086
    enqueue "rw_${name}" "$data/fit_n40.txt" "$data/val_pairs.txt" "$data" 40 "$mode" "$s" --tau 0.4 --m 0.2 $opts
  done <<'EOF'
dm02              comining --dm 0.2
coteach           coteach
dm02_fromtk       comining --dm 0.2 --reweight-schedule from-tk
dm02_ramp         comining --dm 0.2 --reweight-schedule ramp
dm01              comining --dm 0.1
dm03              comining --dm 0.3
weight2           comining --reweight weight --w 2
weight2_ramp      comining --reweight weight --w 2 --reweight-schedule ramp
EOF
  drain
  local res=$work/results
  { echo "| run (validation pairs, 40% noise, seed 1) | peer A | A+B | detection P | R | F1 |"
    echo "|---|---|---|---|---|---|"
    cat "$work"/runs/rw_*/result.tsv 2>/dev/null |
      awk -F'\t' '{ printf "| %s | %.1f | %.1f | %s | %s | %s |\n", $1, 100 * $5, 100 * $7, $9, $10, $11 }'; } \
    > "$res/reweight.md"
  cat "$res/reweight.md"
}

# Sub-center ArcFace, one network and under comining's two peers, at 40% noise (seed-major:
# a stopped stage leaves whole seeds); the baselines are the margin stage's runs and the oracle.
stage_subcenter() {
  local s mode
  for s in $seeds; do
    for mode in arcface comining; do
      enqueue "sc3_n40_${mode}_s$s" "$data/train_n40.txt" "$pairs" "$images" 40 "$mode" "$s" --tau 0.4 --m 0.2 \
        --subcenters 3
      # the second stage: the dominant sub-centres only, from half the run (arcface, which also
      # leaves out the faces beyond 75 degrees) or from the end of the warm-up (comining, before its votes count)
      enqueue "sc3d_n40_${mode}_s$s" "$data/train_n40.txt" "$pairs" "$images" 40 "$mode" "$s" --tau 0.4 --m 0.2 \
        --subcenters 3 --subcenter-drop "$([ "$mode" = arcface ] && echo 12 || echo 5)"
      enqueue "m02_n40_${mode}_s$s" "$data/train_n40.txt" "$pairs" "$images" 40 "$mode" "$s" --tau 0.4 --m 0.2
    done
    enqueue "m02_n40_oracle_s$s" "$data/train_n40.txt" "$pairs" "$images" 40 oracle "$s" --tau 0.4 --m 0.2
  done
  drain
  local res=$work/results
  cat "$work"/runs/sc3_n40_*/result.tsv "$work"/runs/sc3d_n40_*/result.tsv "$work"/runs/m02_n40_{arcface,comining,oracle}_s*/result.tsv 2>/dev/null |
    sort > "$res/subcenter.tsv" || true
  awk -F'\t' '
    { k = $1; sub(/_s[0-9]+$/, "", k); n[k]++; a[k] += $5; a2[k] += $5 * $5; ab[k] += ($7 == "-" ? $5 : $7)
      f[k] += ($11 == "-" ? 0 : $11); hasf[k] = ($11 != "-") }
    END { for (k in n) { m = a[k] / n[k]; v = n[k] > 1 ? (a2[k] - n[k] * m * m) / (n[k] - 1) : 0
                         printf "| %s | %d | %.1f +- %.1f | %.1f | %s |\n", k, n[k], 100 * m, 100 * sqrt(v > 0 ? v : 0),
                                100 * ab[k] / n[k], hasf[k] ? sprintf("%.3f", f[k] / n[k]) : "-" } }' \
    "$res/subcenter.tsv" | sort | { echo "| run | seeds | DevTest peer A (mean +- sd over seeds) | A+B | detection F1 |"
                                     echo "|---|---|---|---|---|"; cat; } > "$res/subcenter.md"
  cat "$res/subcenter.md"
}

# The noise report's vote threshold (flagged: in N in at least this share of the epochs after
# the warm-up), chosen on the validation split at 20% and 40% noise, then checked on the
# paired stage's comining runs (their votes re-read by clean; experiments/vote.sh, results/vote.md)
stage_scval() {
  local e s
  enqueue val_sc3_n40_arcface "$data/fit_n40.txt" "$data/val_pairs.txt" "$data" 40 arcface 1 --tau 0.4 --m 0.2 --subcenters 3
  for e in 6 12 18; do
    enqueue "val_sc3d${e}_n40_arcface" "$data/fit_n40.txt" "$data/val_pairs.txt" "$data" 40 arcface 1 --tau 0.4 --m 0.2 \
      --subcenters 3 --subcenter-drop "$e"
  done
  enqueue val_n40_comining_m02 "$data/fit_n40.txt" "$data/val_pairs.txt" "$data" 40 comining 1 --tau 0.4 --m 0.2
  for e in 5 12; do
    enqueue "val_sc3d${e}_n40_comining" "$data/fit_n40.txt" "$data/val_pairs.txt" "$data" 40 comining 1 --tau 0.4 \
      --m 0.2 --subcenters 3 --subcenter-drop "$e"
  done
  # the validation's pick for arcface (6) on pairsDevTest, beside the subcenter stage's drop at 12
  for s in $seeds; do
    enqueue "sc3d6_n40_arcface_s$s" "$data/train_n40.txt" "$pairs" "$images" 40 arcface "$s" --tau 0.4 --m 0.2 \
      --subcenters 3 --subcenter-drop 6
  done
  drain || true
  cat "$work"/runs/val_sc3*_n40_*/result.tsv "$work"/runs/val_n40_comining_m02/result.tsv \
      "$work"/runs/sc3*_n40_arcface_s*/result.tsv 2>/dev/null | sort |
    awk -F'\t' 'BEGIN { print "| run (40% noise; val_: validation pairs, seed 1) | peer A | A+B | detection F1 |"; print "|---|---|---|---|" }
                { printf "| %s | %.1f | %s | %s |\n", $1, 100 * $5, $7 == "-" ? "-" : sprintf("%.1f", 100 * $7), $11 }' |
    tee "$work/results/scval.md"
}
# The noise rate estimated after a run (`comine estimate` on the finished peers and the data),
# with the drop rate right or wrong: comining at m 0.2, seed 1, 0-50% noise with --tau 0.2 (the
# default), and 20% / 40% noise with the other one's tau (results/taupost.md; not run by default)
stage_taupost() {
  local n
  for n in 10 30 50; do make_train_set "$n"; done
  enqueue tauw_n20_t40_comining_s1 "$data/train_n20.txt" "$pairs" "$images" 20 comining 1 --tau 0.4 --m 0.2
  enqueue tauw_n40_t20_comining_s1 "$data/train_n40.txt" "$pairs" "$images" 40 comining 1 --tau 0.2 --m 0.2
  for n in 10 50 30 0; do
    enqueue "tauw_n${n}_t20_comining_s1" "$data/train_n$n.txt" "$pairs" "$images" "$n" comining 1 --tau 0.2 --m 0.2
  done
  drain || true
  local dir
  { echo "| run | true rate | tau used | mixture | beta | mirror | outside | estimate (rule) |"
    echo "|---|---|---|---|---|---|---|---|"
    for dir in "$work"/runs/tauw_n*_t*_comining_s1 "$work"/runs/m02_n20_comining_s1 "$work"/runs/m02_n40_comining_s1; do
      [ -s "$dir/result.tsv" ] || continue
      local js k row=""
      js=$("$bin" estimate --model "$dir/peer_a.model" --model2 "$dir/peer_b.model" \
             --data "$(sed -n 2p "$dir/args.txt")" --decode-threads 2 --json 2> /dev/null) || continue
      for k in true_rate mixture beta mirror outside tau_estimate; do
        row="$row $(printf '%s' "$js" | sed -n "s/.*\"$k\": *\([0-9.e-]*\).*/\1/p")"
      done
      # shellcheck disable=SC2086
      printf '%s\n' $row | paste -sd' ' | awk -v r="${dir##*/}" -v t="$(grep -A1 -x -- --tau "$dir/args.txt" | tail -1)" \
        '{ printf "| %s | %.3f | %s | %.3f | %.3f | %.3f | %.3f | %.3f |\n", r, $1, t, $2, $3, $4, $5, $6 }'
    done; } | tee "$work/results/taupost.md"
}
# Cross-fitted noise-rate estimates (`comine estimate --data`, the settings of the protocol's
# network, 8 epochs per network; one, two and three rounds on the validation split, one and two
# on the rest; 2, 3 and 4 folds on the validation split over 4 seeds, at 50% 2 and 4) on
# the training set at 0-50% noise and on synthetic faces at the same rates; then comining with
# `--tau auto` (one round, two folds: the defaults) against the true tau at 20% and 40% noise.
crossfit_row() { # name list [epochs [rounds [folds [seed [by_image]]]]]
  local name=$1 list=$2 epochs=${3:-8} rounds=${4:-1} folds=${5:-2} seed=${6:-1} by_image=${7:-0.5} js
  mkdir -p "$work/crossfit"
  name=${name}_e$epochs
  [ "$folds" != 2 ] && name=${name}_k$folds
  [ "$seed" != 1 ] && name=${name}_s$seed
  # a further round trains in OUT/roundR and reads the earlier rounds' runs back; another
  # --by-image ranks the same runs again
  local tag=$name; [ "$rounds" -gt 1 ] && tag=${name}_r$rounds
  [ "$by_image" != 0.5 ] && tag=${tag}_w$by_image
  if ! js=$("$bin" estimate --data "$list" --out "$work/crossfit/$name" --net iresnet18 --width 0.25 --input 64 \
              --batch 64 --lr 0.1 --s 32 --m 0.2 --epochs "$epochs" --rounds "$rounds" --folds "$folds" \
              --seed "$seed" --by-image "$by_image" --threads 2 --decode-threads 1 --json 2> "$work/crossfit/$tag.log"); then
    log "FAILED crossfit $tag (see $work/crossfit/$tag.log)"
    return 0
  fi
  local k v=()
  for k in true_rate tau_estimate lambda samples; do v+=("$(printf '%s' "$js" | sed -n "s/.*\"$k\": *\([0-9.e-]*\).*/\1/p")"); done
  awk -v r="$tag" -v t="${v[0]}" -v e="${v[1]}" -v l="${v[2]}" -v n="${v[3]}" \
    'BEGIN { printf "| %s | %d | %.3f | %.3f | %+.3f | %.2f |\n", r, n, t, e, e - t, l }'
}
stage_crossfit() {
  local n f r syn=$data/syn
  for n in 0 10 20 30 40 50; do make_train_set "$n"; done
  [ -s "$data/fit_n50.txt" ] || { "$bin" corrupt --data "$images" --people "$data/people_fit.txt" --min-per-id \
    "$min_per_id" --max-per-id 60 --flip 0.25 --outlier 0.25 --seed 1 $([ "$min_per_id" -lt 5 ] && echo --keep-one) \
    --out "$data/fit_n50.txt.tmp" && mv "$data/fit_n50.txt.tmp" "$data/fit_n50.txt"; }
  if [ ! -s "$syn/n50.txt" ]; then
    mkdir -p "$syn"
    [ -d "$syn/ids" ] || "$bin" synth --out "$syn/ids" --ids 200 --per-id 14 --size 64 --seed 1 --quiet
    [ -d "$syn/dist" ] || "$bin" synth --out "$syn/dist" --ids 80 --first-id 340 --per-id 14 --size 64 --seed 1 --quiet
    for n in 0 10 20 30 40 50; do
      f=$(awk -v n="$n" 'BEGIN { printf "%.2f", n / 200 }')
      "$bin" corrupt --data "$syn/ids" --flip "$f" --outlier "$f" --distractors "$syn/dist" --seed 4 \
        --out "$syn/n$n.txt.tmp" > /dev/null && mv "$syn/n$n.txt.tmp" "$syn/n$n.txt"
    done
  fi
  # the validation split (the training people only): one, two and three rounds
  { echo "| data set | samples ranked | true rate | estimate | error | lambda |"
    echo "|---|---|---|---|---|---|"
    for r in 1 2 3; do for n in 20 40; do crossfit_row "fit_n$n" "$data/fit_n$n.txt" 8 "$r"; done; done
    for s in 1 2 3 4; do for n in 20 40; do for k in 2 3 4; do
      crossfit_row "fit_n$n" "$data/fit_n$n.txt" 8 1 "$k" "$s"
    done; done; done
    for s in 1 2; do for k in 2 4; do crossfit_row "fit_n50" "$data/fit_n50.txt" 8 1 "$k" "$s"; done; done
    # the law of a wrong label's p-value (--by-image 0, 0.5, 1) on the protocol's sets and on
    # 40% of one kind: outliers, flips to a uniform label, flips by image (a permutation)
    for v in "out 0 0.4" "flip 0.4 0" "perm 0.4 0 --flip-mode permute"; do
      set -- $v
      [ -s "$data/fit_n40_$1.txt" ] || "$bin" corrupt --data "$images" --people "$data/people_fit.txt" --min-per-id \
        "$min_per_id" --max-per-id 60 --flip "$2" --outlier "$3" "${@:4}" --seed 1 --out "$data/fit_n40_$1.txt.tmp" \
        > /dev/null && mv "$data/fit_n40_$1.txt.tmp" "$data/fit_n40_$1.txt"
    done
    for w in 0 0.5 1; do
      for s in 1 2 3 4; do for n in 20 40; do crossfit_row "fit_n$n" "$data/fit_n$n.txt" 8 1 2 "$s" "$w"; done; done
      for s in 1 2; do crossfit_row "fit_n50" "$data/fit_n50.txt" 8 1 2 "$s" "$w"; done
      for s in 1 2 3 4; do
        for k in out flip perm; do crossfit_row "fit_n40_$k" "$data/fit_n40_$k.txt" 8 1 2 "$s" "$w"; done
      done
    done; } | tee "$work/results/crossfit_val.md"
  { echo "| data set | samples ranked | true rate | estimate | error | lambda |"
    echo "|---|---|---|---|---|---|"
    for r in 1 2; do
      for n in 0 10 20 30 40 50; do crossfit_row "lfw_n$n" "$data/train_n$n.txt" 8 "$r"; done
      for n in 0 10 20 30 40 50; do crossfit_row "syn_n$n" "$syn/n$n.txt" 8 "$r"; done
    done
    # the 50% set again: two more seeds of the folds, and four folds
    for s in 2 3 4 5; do crossfit_row "lfw_n50" "$data/train_n50.txt" 8 1 2 "$s"; done
    for n in 0 10 20 30 40 50; do
      crossfit_row "lfw_n$n" "$data/train_n$n.txt" 8 1 2 1 0; crossfit_row "syn_n$n" "$syn/n$n.txt" 8 1 2 1 0
    done
    for s in 2 3 4 5; do crossfit_row "lfw_n50" "$data/train_n50.txt" 8 1 2 "$s" 0; done
    crossfit_row "lfw_n50" "$data/train_n50.txt" 8 1 4; } | tee "$work/results/crossfit.md"
  local crossfit_epochs=8 crossfit_rounds=1
  local s auto=tauauto; [ "$crossfit_rounds" -gt 1 ] && auto=tauauto_r$crossfit_rounds
  for s in $paired_seeds; do
    for n in 20 40; do
      enqueue "${auto}_n${n}_comining_s$s" "$data/train_n$n.txt" "$pairs" "$images" "$n" comining "$s" --tau auto \
        --tau-epochs "$crossfit_epochs" --tau-rounds "$crossfit_rounds" --m 0.2
      enqueue "m02_n${n}_comining_s$s" "$data/train_n$n.txt" "$pairs" "$images" "$n" comining "$s" \
        --tau "$(tau_for "$n")" --m 0.2
    done
  done
  drain || true
  local r
  { echo "| run | tau used | DevTest peer A | A+B | detection P | R | F1 |"
    echo "|---|---|---|---|---|---|---|"
    for s in $paired_seeds; do
      for n in 20 40; do
        for r in "$work/runs/${auto}_n${n}_comining_s$s" "$work/runs/m02_n${n}_comining_s$s"; do
          [ -s "$r/result.tsv" ] || continue
          local tau; tau=$(tail -n 1 "$r/metrics.jsonl" | sed -n 's/.*"tau": *\([0-9.]*\).*/\1/p')
          awk -F'\t' -v t="${tau:--}" '{ printf "| %s | %s | %.1f | %s | %s | %s | %s |\n", $1, t, 100 * $5,
              $7 == "-" ? "-" : sprintf("%.1f", 100 * $7), $9, $10, $11 }' "$r/result.tsv"
        done
      done
    done; } | tee "$work/results/tauauto.md"
}
enqueue_vote_runs() {
  local n s
  for n in 20 40; do
    enqueue "val_n${n}_comining_m02" "$data/fit_n$n.txt" "$data/val_pairs.txt" "$data" "$n" comining 1 \
      --tau "$(tau_for "$n")" --m 0.2
  done
  for s in $paired_seeds; do
    for n in 20 40; do
      enqueue "m02_n${n}_comining_s$s" "$data/train_n$n.txt" "$pairs" "$images" "$n" comining "$s" --tau "$(tau_for "$n")" --m 0.2
    done
  done
}
stage_vote() {
  enqueue_vote_runs
  drain || true
  bash "$root/experiments/vote.sh" "$bin" "$work" | tee "$work/results/vote.md"
}
stage_detect() {
  enqueue_vote_runs
  drain || true
  bash "$root/experiments/detect.sh" "$bin" "$work" | tee "$work/results/detect.md"
}

# Duplicates and --tau auto (one seed each, in the order of importance)
stage_dup() {
  local people=$lfw/lists/peopleDevTrain.txt n s=1
  for n in 40 20; do
    local f; f=$(awk -v n="$n" 'BEGIN { printf "%.2f", n / 200 }')
    [ -s "$data/dup_n$n.txt" ] && continue
    "$bin" corrupt --data "$images" --people "$people" --min-per-id "$min_per_id" --max-per-id 60 --duplicate 0.1 \
      --flip "$f" --outlier "$f" --seed 1 --out "$data/dup_n$n.txt.tmp" > /dev/null
    local t; for t in "$data/dup_n$n.txt.tmp".*; do mv "$t" "$data/dup_n$n.txt${t#"$data/dup_n$n.txt.tmp"}"; done
    mv "$data/dup_n$n.txt.tmp" "$data/dup_n$n.txt"
  done
  for n in 40 20; do
    enqueue "dup_n${n}_merge_s$s" "$data/dup_n$n.txt" "$pairs" "$images" "$n" comining "$s" --tau "$(tau_for "$n")" \
      --m 0.2 --merge-duplicates
    enqueue "dup_n${n}_nomerge_s$s" "$data/dup_n$n.txt" "$pairs" "$images" "$n" comining "$s" --tau "$(tau_for "$n")" \
      --m 0.2
    enqueue "tauauto_n${n}_comining_s$s" "$data/train_n$n.txt" "$pairs" "$images" "$n" comining "$s" --tau auto --m 0.2
    enqueue "m02_n${n}_comining_s$s" "$data/train_n$n.txt" "$pairs" "$images" "$n" comining "$s" --tau "$(tau_for "$n")" \
      --m 0.2
  done
  drain
  local res=$work/results r
  { echo "| run | DevTest peer A | A+B | detection P | R | F1 | merged pairs (P / R vs truth) | tau used |"
    echo "|---|---|---|---|---|---|---|---|"
    for r in "$work"/runs/dup_n*_s$s "$work"/runs/tauauto_n*_s$s "$work"/runs/m02_n*_comining_s$s; do
      [ -s "$r/result.tsv" ] || continue
      local name; name=$(basename "$r")
      local merged="-" tau
      if [ -f "$r/duplicates.csv" ]; then
        local noise=${name#dup_n}; noise=${noise%%_*}
        merged=$(awk -F'[,\t]' 'FNR == NR { if (FNR > 1) t[$1 < $2 ? $1 "-" $2 : $2 "-" $1] = 1; n_t++; next }
                  FNR > 1 { n_f++; if (($1 "-" $2) in t) tp++ }
                  END { printf "%d (%.2f / %.2f)", n_f, n_f ? tp / n_f : 0, tp / (n_t - 1) }' \
                  "$data/dup_n$noise.txt.duplicates.tsv" "$r/duplicates.csv")
      fi
      tau=$(tail -n 1 "$r/metrics.jsonl" | sed -n 's/.*"tau": *\([0-9.]*\).*/\1/p')
      awk -F'\t' -v m="$merged" -v t="${tau:--}" '{ printf "| %s | %.1f | %s | %s | %s | %s | %s | %s |\n", $1, 100 * $5,
          $7 == "-" ? "-" : sprintf("%.1f", 100 * $7), $9, $10, $11, m, t }' "$r/result.tsv"
    done; } > "$res/dup.md"
  cat "$res/dup.md"
}

# ---- table: experiments/table.sh ----------------------------------------------------------
. "$root/experiments/table.sh"

status=0
for st in "${stages[@]}"; do
  log "stage $st"
  # a subshell outside any || list, so that set -e holds inside the stage
  set +e
  ( set -e; "stage_$st" )
  rc=$?
  set -e
  [ $rc -eq 0 ] || { log "stage $st failed"; status=1; }
done
exit $status
}
