#!/usr/bin/env bash
# demo.sh: the README's main job.  Builds comine, makes a noisy training set, trains
# `comining` (two peers) and plain `arcface` (one network) with the same budget, then prints
# how well each run found the wrong labels and the verification accuracy of each model.
#
# With ../shared/data/lfw112 present (or COMINE_LFW=DIR): a short version of the LFW experiment
# (docs/EXPERIMENTS.md): DevTrain people with >= 5 images (at most 60 each), 40% noise (half
# label flips, half outliers), tested on pairsDevTest.  Otherwise: comine's own synthetic faces
# with 30% noise, tested on pairs of held-out synthetic identities.
#   scripts/demo.sh [WORK_DIR]        (default: runs/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" --target comine
bin=$PWD/build/release/comine
work=${1:-runs/demo}
rm -rf "$work"
mkdir -p "$work"
threads=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)

lfw=${COMINE_LFW:-../shared/data/lfw112}
if [ -d "$lfw/images" ] && [ -f "$lfw/lists/pairsDevTest.txt" ]; then
  echo "== data: LFW ($lfw), 40% noise (20% label flips + 20% outliers)"
  data="$work/train.txt"
  "$bin" corrupt --data "$lfw/images" --people "$lfw/lists/peopleDevTrain.txt" --min-per-id 5 --max-per-id 60 \
    --flip 0.2 --outlier 0.2 --seed 1 --out "$data"
  pairs="$lfw/lists/pairsDevTest.txt"
  root="$lfw/images"
  train_opts=(--net iresnet18 --width 0.25 --input 64 --batch 64 --epochs 8 --lr 0.1 --s 32 --m 0.2
              --tau 0.4 --tk 3)
else
  echo "== data: synthetic faces (no LFW found at $lfw), 30% noise (15% label flips + 15% outliers)"
  "$bin" synth --out "$work/synth" --ids 60 --per-id 40 --size 32 --seed 1 --quiet
  "$bin" synth --out "$work/others" --first-id 60 --ids 40 --per-id 10 --size 32 --seed 1 --quiet
  "$bin" synth --out "$work/test" --first-id 100 --ids 60 --per-id 10 --size 32 --seed 1 --quiet
  data="$work/train.txt"
  "$bin" corrupt --data "$work/synth" --flip 0.15 --outlier 0.15 --distractors "$work/others" --seed 1 --out "$data"
  pairs="$work/test_pairs.txt"
  root="$work/test"
  "$bin" pairs --data "$work/test" --count 600 --seed 1 --out "$pairs"
  train_opts=(--net iresnet18 --width 0.25 --input 32 --batch 64 --epochs 20 --lr 0.1 --s 32 --m 0.2
              --tau 0.3 --tk 5)
fi

for mode in comining arcface; do
  echo "== train: $mode"
  "$bin" train --data "$data" --out "$work/$mode" --mode "$mode" "${train_opts[@]}" --seed 1 --threads "$threads"
done

# a field of a JSON object on stdin ("a.b" for nested keys); empty for null
jfield() {
  python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k] if v is not None else None
print("" if v is None else v)' "$1"
}

echo "== evaluate on $(basename "$pairs")"
summary=()
for mode in comining arcface; do
  models=(--model "$work/$mode/peer_a.model")
  [ -f "$work/$mode/peer_b.model" ] && models+=(--model "$work/$mode/peer_b.model")
  json=$("$bin" eval "${models[@]}" --pairs "$pairs" --root "$root" --json)
  acc=$(printf '%s' "$json" | jfield accuracy)
  std=$(printf '%s' "$json" | jfield accuracy_std)
  det="-"
  if [ "$mode" != arcface ]; then
    cj=$("$bin" clean --run "$work/$mode" --out "$work/$mode/cleaned.txt" --json)
    [ -n "$(printf '%s' "$cj" | jfield detection)" ] &&
      det=$(printf 'P %.4f  R %.4f  F1 %.4f' "$(printf '%s' "$cj" | jfield detection.precision)" \
              "$(printf '%s' "$cj" | jfield detection.recall)" "$(printf '%s' "$cj" | jfield detection.f1)")
  fi
  summary+=("$(printf '%-9s verification accuracy %.4f +- %.4f   noise detection: %s' "$mode" "$acc" "$std" "${det:--}")")
done
echo
echo "== summary ($(( $(date +%s) - start )) s)"
printf '%s\n' "${summary[@]}"
echo "run folders: $work/comining, $work/arcface (metrics.jsonl, noise.csv, models); plots: comine report --run DIR --out DIR/report"
