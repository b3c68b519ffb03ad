#!/bin/bash
# test_train_resume.sh: crash safety and reproducibility of `comine train` on tiny data.
#  1. with --threads 1 two runs of the same seed and data write bit-identical peer_a.model,
#     peer_b.model, noise.csv and metrics (timing fields aside);
#  2. a run killed with SIGKILL at several random moments and continued each time with
#     `comine train --resume` (which must always succeed: the checkpoint is never corrupt)
#     ends with the same bytes, and its metrics.jsonl has each epoch exactly once;
#  3. SIGTERM / SIGINT write a checkpoint and exit 130, and the run continues to the same end;
#  4. --resume of a run killed before its first checkpoint starts it over; stale temporary
#     files are removed; a corrupted or truncated checkpoint is refused clearly.
# usage: bash test_train_resume.sh <comine binary> <source dir>   (COMINE_KILLS: kills, default 6)
set -u
BIN=$1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_train_resume.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
same() { cmp -s "$1" "$2"; }
# metrics.jsonl without the timing fields (seconds, images_per_s)
metrics() { sed -E 's/, "(seconds|images_per_s)": [^,}]*//g' "$1"; }
same_metrics() { [ "$(metrics "$1")" = "$(metrics "$2")" ]; }
epochs_of() { grep -o '"epoch": [0-9]*' "$1" | awk '{print $2}' | tr '\n' ' '; }

"$BIN" synth --out "$TMP/D" --ids 8 --per-id 8 --size 32 >/dev/null 2>&1 || { echo "FAIL synth"; exit 1; }
TRAIN=(--data "$TMP/D" --net iresnet18 --width 0.125 --input 32 --batch 16 --epochs 3 --tk 1
       --threads 1 --decode-threads 1 --seed 5 --quiet)

# 1. reproducibility
"$BIN" train "${TRAIN[@]}" --out "$TMP/ref" >"$TMP/ref.log" 2>&1
check "reference run finishes" test -s "$TMP/ref/peer_b.model"
"$BIN" train "${TRAIN[@]}" --out "$TMP/ref2" >/dev/null 2>&1
for f in peer_a.model peer_b.model noise.csv cos_epoch2.csv; do
    check "--threads 1 is bit-reproducible: $f" same "$TMP/ref/$f" "$TMP/ref2/$f"
done
check "--threads 1 is bit-reproducible: metrics.jsonl" same_metrics "$TMP/ref/metrics.jsonl" "$TMP/ref2/metrics.jsonl"
check "metrics.jsonl of the reference: epochs 0 1 2" test "$(epochs_of "$TMP/ref/metrics.jsonl")" = "0 1 2 "

# 2. SIGKILL at random moments, resume each time.  A moment is either a random delay after
# the start (start-up, the first steps) or a random delay after the checkpoint has been
# replaced 1-2 times (every step: the kill lands in a step, in a checkpoint write, or in the
# end-of-epoch reports).
RUN=$TMP/killed
kills=${COMINE_KILLS:-6}
RANDOM=$$
echo "     kill moments drawn with RANDOM seed $$"
hits=0 resumes=0 resume_failures=0
inode() { stat -c %i "$RUN/checkpoint.bin" 2>/dev/null || echo none; }
wait_checkpoints() { # PID N: until the checkpoint was replaced N times or PID ended
    local pid=$1 n=$2 last seen=0 now
    last=$(inode)
    while [ $seen -lt "$n" ] && kill -0 "$pid" 2>/dev/null; do
        sleep 0.005
        now=$(inode)
        if [ "$now" != "$last" ]; then seen=$((seen + 1)); last=$now; fi
    done
}
"$BIN" train "${TRAIN[@]}" --checkpoint-every 1 --out "$RUN" >>"$TMP/killed.log" 2>&1 &
pid=$!
# (a run killed before it recorded args.txt is not a run yet: there is nothing to resume)
while [ ! -e "$RUN/args.txt" ] && kill -0 $pid 2>/dev/null; do sleep 0.005; done
while :; do
    if [ $hits -lt "$kills" ]; then
        if [ $((RANDOM % 3)) = 0 ]; then
            sleep "$(printf '0.%03d' $((RANDOM % 250 + 20)))"
        else
            wait_checkpoints $pid $((RANDOM % 2 + 1))
            sleep "$(printf '0.%03d' $((RANDOM % 40)))"
        fi
        if kill -KILL $pid 2>/dev/null; then
            wait $pid 2>/dev/null
            hits=$((hits + 1))
            echo "     SIGKILL $hits: run folder held $(ls "$RUN" 2>/dev/null | tr '\n' ' ')"
            resumes=$((resumes + 1))
            "$BIN" train --resume "$RUN" >>"$TMP/killed.log" 2>&1 &
            pid=$!
            continue
        fi
    fi
    wait $pid
    rc=$?
    if [ $rc != 0 ]; then
        echo "FAIL the run or a resume after a SIGKILL failed (exit $rc):"; tail -5 "$TMP/killed.log"
        resume_failures=$((resume_failures + 1))
    fi
    break
done
echo "     $hits SIGKILLs during the run, $resumes resumes"
check "killed at least 3 times during training (up to $kills)" test $hits -ge 3
check "every resume succeeded (every checkpoint was readable)" test $resume_failures = 0
for f in peer_a.model peer_b.model noise.csv cos_epoch0.csv cos_epoch2.csv; do
    check "after $hits kills and resumes: $f bit-identical to the uninterrupted run" same "$TMP/ref/$f" "$RUN/$f"
done
check "metrics.jsonl has epochs 0 1 2 once each" test "$(epochs_of "$RUN/metrics.jsonl")" = "0 1 2 "
check "metrics.jsonl equal to the uninterrupted run's (timing aside)" same_metrics "$TMP/ref/metrics.jsonl" "$RUN/metrics.jsonl"
check "no temporary files left" test -z "$(ls "$RUN" | grep '\.tmp\.')"

# SIGTERM (and SIGINT): a checkpoint, exit status 130, then --resume ends the same
for sig in TERM INT; do
    R=$TMP/sig$sig
    "$BIN" train "${TRAIN[@]}" --out "$R" >"$TMP/sig.log" 2>&1 &
    pid=$!
    while [ ! -e "$R/checkpoint.bin" ] && kill -0 $pid 2>/dev/null; do sleep 0.005; done
    kill -$sig $pid 2>/dev/null
    wait $pid
    rc=$?
    check "SIG$sig after the first epoch: exit $rc = 130, 'checkpoint saved'" \
        bash -c "[ $rc = 130 ] && grep -q 'interrupted at epoch .*: checkpoint saved; continue with comine train --resume' '$TMP/sig.log'"
    "$BIN" train --resume "$R" >/dev/null 2>&1
    check "  ... --resume finishes" test $? = 0
    for f in peer_a.model peer_b.model noise.csv; do
        check "  ... with the uninterrupted run's $f" same "$TMP/ref/$f" "$R/$f"
    done
done

# 4. killed before the first checkpoint: --resume starts over; stale temporaries removed
R3=$TMP/early
mkdir -p "$R3"
printf '%s\n' "${TRAIN[@]}" --out "$R3" >"$R3/args.txt"
echo '{"epoch": 0, "loss_a": 1}' >"$R3/metrics.jsonl"
echo partial >"$R3/checkpoint.bin.tmp.12345"
"$BIN" train --resume "$R3" >"$TMP/early.log" 2>&1
check "--resume with no checkpoint yet starts over and finishes" test $? = 0
check "  ... with the uninterrupted run's models" same "$TMP/ref/peer_a.model" "$R3/peer_a.model"
check "  ... and its metrics (the stale line dropped)" same_metrics "$TMP/ref/metrics.jsonl" "$R3/metrics.jsonl"
check "  ... and the stale temporary file removed" test ! -e "$R3/checkpoint.bin.tmp.12345"

# a corrupted checkpoint is refused clearly (and nothing is overwritten)
cp "$TMP/ref/checkpoint.bin" "$TMP/ck.bak"
printf '\x55' | dd of="$TMP/ref/checkpoint.bin" bs=1 seek=5000 conv=notrunc 2>/dev/null
"$BIN" train --resume "$TMP/ref" >"$TMP/bad.log" 2>&1
rc=$?
check "a corrupted checkpoint: --resume fails (exit $rc) naming the checksum" \
    bash -c "[ $rc != 0 ] && grep -q 'checkpoint.bin: checksum mismatch' '$TMP/bad.log'"
truncate -s 1000 "$TMP/ref/checkpoint.bin"
"$BIN" train --resume "$TMP/ref" >"$TMP/bad.log" 2>&1
rc=$?
check "a truncated checkpoint: --resume fails (exit $rc) with a clear message" \
    bash -c "[ $rc != 0 ] && grep -q 'checkpoint.bin: checksum mismatch: the checkpoint is truncated or corrupted' '$TMP/bad.log'"

if [ $fail = 0 ]; then echo "test_train_resume: all checks passed"; else echo "test_train_resume: $fail FAILED"; fi
[ $fail = 0 ]
