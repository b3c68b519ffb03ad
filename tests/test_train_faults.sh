#!/bin/bash
# test_train_faults.sh: `comine train` (and the other report writers) under faults, on tiny data.
#  1. full disk (a file-size limit, ulimit -f) while writing the checkpoint, the report files
#     (metrics.jsonl, noise.csv) and the model files: a clear error naming the file, the
#     previous file intact, nothing half-written, no temporary left; the run then continues
#     to the same result as an uninterrupted one;  the same for `comine corrupt`, `comine
#     clean` (lists) and `comine embed` (.npy): never a half-written output;
#  2. NaN injection (--inject-nan): one non-finite step is skipped, logged and counted, and
#     training finishes; K in a row (--max-bad-steps K) stop the run with a clear message and
#     the last good checkpoint intact (continuing from it gives the uninterrupted result).
# usage: bash test_train_faults.sh <comine binary> <source dir>
set -u
BIN=$1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_train_faults.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
same() { cmp -s "$1" "$2"; }
kb() { echo $(( $(stat -c %s "$1") / 1024 )); }
no_temporaries() { [ -z "$(ls "$1" | grep '\.tmp\.')" ]; }
# every line of metrics.jsonl is a whole JSON object
whole_jsonl() { [ ! -e "$1" ] || ! grep -qv '^{"epoch": [0-9]*,.*}$' "$1"; }
# noise.csv: the header and one row per sample (64), each with 8 fields
whole_noise() { [ "$(awk -F, 'NR > 1 && NF == 8' "$1" | wc -l)" = 64 ] && head -1 "$1" | grep -q '^index,path'; }
inode() { stat -c %i "$1" 2>/dev/null || echo none; }
# drop one option (and its value) from a run's args.txt
drop_arg() { awk -v o="$2" 'skip { skip = 0; next } $0 == o { skip = 1; next } { print }' "$1/args.txt" >"$1/args.new" &&
             mv "$1/args.new" "$1/args.txt"; }

"$BIN" synth --out "$TMP/D" --ids 8 --per-id 8 --size 32 >/dev/null 2>&1 || { echo "FAIL synth"; exit 1; }
TRAIN=(--data "$TMP/D" --net iresnet18 --width 0.125 --input 32 --batch 16 --epochs 3 --tk 1
       --threads 1 --decode-threads 1 --seed 3)
"$BIN" train "${TRAIN[@]}" --quiet --out "$TMP/ref" >"$TMP/ref.log" 2>&1
check "reference run finishes" test -s "$TMP/ref/peer_a.model"

# ---- 1. full disk --------------------------------------------------------------------
# a. the checkpoint: continue a run (stopped after its first checkpoint) under a limit below
#    the checkpoint's size
R=$TMP/full_ckpt
"$BIN" train "${TRAIN[@]}" --quiet --out "$R" >/dev/null 2>&1 &
pid=$!
while [ ! -e "$R/checkpoint.bin" ] && kill -0 $pid 2>/dev/null; do sleep 0.005; done
kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
cp "$R/checkpoint.bin" "$TMP/ckpt.before"
(ulimit -f $(( $(kb "$TMP/ckpt.before") / 2 )); "$BIN" train --resume "$R" >"$TMP/full1.log" 2>&1)
rc=$?
grep 'comine train:' "$TMP/full1.log" | sed 's/^/     /'
check "checkpoint past the size limit: exit $rc != 0" test $rc != 0
check "  ... a clear message naming checkpoint.bin (File too large)" \
    grep -q "checkpoint.bin: cannot write the checkpoint (.*File too large.*); the previous one is kept" "$TMP/full1.log"
check "  ... the previous checkpoint intact" same "$TMP/ckpt.before" "$R/checkpoint.bin"
check "  ... no temporary file left" no_temporaries "$R"
check "  ... metrics.jsonl whole" whole_jsonl "$R/metrics.jsonl"
check "  ... noise.csv whole" whole_noise "$R/noise.csv"
"$BIN" train --resume "$R" >"$TMP/full1b.log" 2>&1
check "  ... then --resume finishes" test $? = 0
for f in peer_a.model peer_b.model noise.csv; do
    check "  ... with the uninterrupted run's $f" same "$TMP/ref/$f" "$R/$f"
done

# b. the report files: a limit below noise.csv's size (reached before any checkpoint)
R=$TMP/full_reports
lim=$(( $(kb "$TMP/ref/noise.csv") - 1 ))
(ulimit -f $lim; "$BIN" train "${TRAIN[@]}" --quiet --out "$R" >"$TMP/full2.log" 2>&1)
rc=$?
grep 'comine train:' "$TMP/full2.log" | sed 's/^/     /'
check "noise.csv past the size limit (${lim} KiB): exit $rc != 0, a message naming noise.csv" \
    bash -c "[ $rc != 0 ] && grep -q 'noise.csv: write failed (File too large); the previous file is kept' '$TMP/full2.log'"
check "  ... no half-written noise.csv" test ! -e "$R/noise.csv"
check "  ... metrics.jsonl whole" whole_jsonl "$R/metrics.jsonl"
check "  ... no temporary file left" no_temporaries "$R"

# c. the model files: finishing a run (its checkpoint is past the last epoch) under a limit
#    below a model's size; the previous models stay
R=$TMP/full_models
cp -r "$TMP/ref" "$R"
printf '%s\n' "${TRAIN[@]}" --quiet --out "$R" >"$R/args.txt"
printf 'not the final model\n' >"$R/peer_a.model"
cp "$R/peer_a.model" "$TMP/model.before"
(ulimit -f $(( $(kb "$TMP/ref/peer_a.model") - 1 )); "$BIN" train --resume "$R" >"$TMP/full3.log" 2>&1)
rc=$?
grep 'comine train:' "$TMP/full3.log" | sed 's/^/     /'
check "model file past the size limit: exit $rc != 0, a message naming peer_a.model" \
    bash -c "[ $rc != 0 ] && grep -q 'peer_a.model: .*File too large' '$TMP/full3.log'"
check "  ... the previous peer_a.model intact" same "$TMP/model.before" "$R/peer_a.model"
check "  ... no temporary file left" no_temporaries "$R"

# d. the other report writers: a list (corrupt, clean), embeddings (.npy)
O=$TMP/other
mkdir -p "$O"
for what in corrupt clean embed; do
    case $what in
    corrupt) out=$O/noisy.txt; cmd=("$BIN" corrupt --data "$TMP/D" --out "$out" --flip 0.2) ;;
    clean) out=$O/clean.txt; cmd=("$BIN" clean --run "$TMP/ref" --out "$out" --suspects "$O/suspects.csv") ;;
    embed) out=$O/emb.npy; cmd=("$BIN" embed --model "$TMP/ref/peer_a.model" --data "$TMP/D" --out "$out" --threads 1) ;;
    esac
    "${cmd[@]}" >/dev/null 2>&1 && cp "$out" "$O/full.$what" || { echo "FAIL $what without a limit"; fail=$((fail + 1)); }
    printf 'previous\n' >"$out"
    (ulimit -f $(( $(kb "$O/full.$what") / 2 )); "${cmd[@]}" >"$O/$what.log" 2>&1)
    rc=$?
    grep -m1 "$(basename "$out")" "$O/$what.log" | sed 's/^/     /'
    check "comine $what past the size limit: exit $rc != 0, the previous $(basename "$out") intact" \
        bash -c "[ $rc != 0 ] && [ \"\$(cat '$out')\" = previous ]"
    check "  ... a message naming $(basename "$out")" grep -Eq "$(basename "$out"): (write failed|.*File too large)" "$O/$what.log"
    check "  ... no temporary file left" no_temporaries "$O"
done

# ---- 2. non-finite steps ----------------------------------------------------------------
R=$TMP/nan1
"$BIN" train "${TRAIN[@]}" --out "$R" --inject-nan 6 >"$TMP/nan1.log" 2>&1
rc=$?
check "one NaN step (global step 6): training finishes (exit $rc)" test $rc = 0
check "  ... the step is skipped and logged" grep -q "epoch 2 step 2: non-finite loss or gradient: step skipped (1 in a row)" "$TMP/nan1.log"
check "  ... metrics count it in epoch 1 only" \
    test "$(grep -o '"skipped_steps": [0-9]*' "$R/metrics.jsonl" | awk '{print $2}' | tr '\n' ' ')" = "0 1 0 "
"$BIN" embed --model "$R/peer_a.model" --data "$TMP/D" --out "$TMP/nan1.npy" --threads 1 >/dev/null 2>&1
check "  ... the model is written and loads (comine embed)" test $? = 0
R=$TMP/nan3
"$BIN" train "${TRAIN[@]}" --out "$R" --quiet --inject-nan 6:3 --max-bad-steps 3 >"$TMP/nan3.log" 2>&1
rc=$?
grep 'comine train:' "$TMP/nan3.log" | sed 's/^/     /'
check "3 NaN steps in a row with --max-bad-steps 3: training stops (exit $rc != 0)" test $rc != 0
check "  ... with a clear message" grep -q "3 consecutive steps with non-finite loss or gradients (epoch 2 step 4): training stopped; the last checkpoint in .* is intact" "$TMP/nan3.log"
check "  ... no model files written" test ! -e "$R/peer_a.model"
drop_arg "$R" --inject-nan
"$BIN" train --resume "$R" >"$TMP/nan3b.log" 2>&1
check "  ... the last good checkpoint continues (without --inject-nan) to the end" test $? = 0
for f in peer_a.model peer_b.model noise.csv; do
    check "  ... with the uninterrupted run's $f" same "$TMP/ref/$f" "$R/$f"
done
"$BIN" train "${TRAIN[@]}" --out "$TMP/nanbad" --inject-nan 0 >"$TMP/nanbad.log" 2>&1
check "--inject-nan 0 is refused" grep -q "option --inject-nan: '0' is not STEP\[:COUNT\]" "$TMP/nanbad.log"
check "--inject-nan is listed in --help as a testing aid" bash -c "'$BIN' train --help | grep -q 'inject-nan.*testing aid'"

if [ $fail = 0 ]; then echo "test_train_faults: all checks passed"; else echo "test_train_faults: $fail FAILED"; fi
[ $fail = 0 ]
