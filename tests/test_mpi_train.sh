#!/bin/bash
# test_mpi_train.sh: data-parallel `comine train` under mpiexec (2 ranks x 1 thread) against
# one process with the same global batch.  With per-rank batch norm a 2-rank run is not the
# one-process run; its exact one-process reference is `--bn-groups 2` (ghost batch norm:
# each half of the batch normalised on its own, the running statistics the mean of the two
# updates; docs/SCALING.md).  Compared:
#  1. the sets C, XA, XB, N of every step of the first epoch (drop rate tau from the start,
#     --tk 0): the running means of the progress lines, step by step;
#  2. both peers' model files after 3 steps: every parameter and running statistic within
#     float tolerance (and the one-process run with whole-batch batch norm, for scale), on
#     runs at drop rate 0 (every sample in C, re-weighted by its margin).  With a drop, two
#     samples whose losses lie within rounding of each other can be ranked either way (the two
#     runs' sums round differently, and by how much depends on the CPU's BLAS kernels): one
#     sample in another set changes the weights far beyond rounding, so no tolerance can
#     compare them;
#  3. a short comining run (64 samples, votes in 2 epochs): noise.csv holds every sample, each
#     voted on in both epochs whichever rank read it, and its votes add up to the N sets of
#     metrics.jsonl; metrics.jsonl says "ranks": 2.  Its flags are not compared with the
#     one-process run's: on a run this small they are decided by near-ties (over seeds 1-10 the
#     two runs flagged 2-10 samples each and differed in 0-5);
#  4. one rank killed with SIGKILL: the job exits non-zero within seconds; `--resume` under
#     mpiexec finishes the run, to the same models as the run that was never killed;
#  5. Partial FC (--sample-rate 0.5, 48 classes, batch 16: 24 classes a step): 2 ranks end a
#     3-step run with the weights of the one-process run with --bn-groups 2 and the same rate
#     (tolerance as 2), and the same set sizes step by step: both draw the same classes; a
#     2-epoch run of it killed (SIGKILL to one rank) after its first epoch and resumed under
#     mpiexec ends with the uninterrupted run's bytes.
#  6. a bad image met by one rank: reported once, the other samples trained;
#  7. `comine estimate --data` (cross-fitting) under mpiexec: one report, from rank 0; the
#     folds' runs on both ranks; a missing data set ends the job.
# usage: bash test_mpi_train.sh <comine binary> <source dir>
# Skips (77) without mpiexec (COMINE_MPIEXEC, set by CTest when comine is built with MPI).
set -u
BIN=$1
MPIEXEC=${COMINE_MPIEXEC:-}
if [ -z "$MPIEXEC" ] || ! [ -x "$MPIEXEC" ]; then
    echo "skip: comine built without MPI or mpiexec not found (COMINE_MPIEXEC)"
    exit 77
fi
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_mpi_yield_when_idle=1
MPI=("$MPIEXEC" -np 2 --oversubscribe)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_mpi_train.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
sets() { grep -o 'step [0-9]*/[0-9]* .*| C [0-9.]* XA [0-9.]* XB [0-9.]* N [0-9.]*' "$1" | sed -E 's/\| [0-9]+ img\/s //; s/\| loss.*\| C/| C/'; }

"$BIN" synth --out "$TMP/D3" --ids 6 --per-id 8 --size 32 >/dev/null 2>&1 || { echo "FAIL synth"; exit 1; }
"$BIN" synth --out "$TMP/D" --ids 8 --per-id 8 --size 32 >/dev/null 2>&1 || { echo "FAIL synth"; exit 1; }
COMMON=(--net iresnet18 --width 0.125 --input 32 --batch 16 --threads 1 --decode-threads 1 --seed 5)

# 1 + 2: three steps (48 samples, batch 16), drop rate 0.2 from the first step
STEP3=(--data "$TMP/D3" "${COMMON[@]}" --epochs 1 --tk 0 --log-every 1)
"$BIN" train "${STEP3[@]}" --bn-groups 2 --out "$TMP/ghost" >"$TMP/ghost.log" 2>&1
"${MPI[@]}" "$BIN" train "${STEP3[@]}" --out "$TMP/mpi" >"$TMP/mpi.log" 2>&1
check "2 ranks: the run finishes" test -s "$TMP/mpi/peer_b.model"
check "2 ranks: the banner says 2 ranks" grep -q '; 2 ranks' "$TMP/mpi.log"
check "2 ranks: one progress line per step (rank 0 prints alone)" test "$(sets "$TMP/mpi.log" | wc -l)" = 3
check "the same set sizes C XA XB N on every step of the first epoch" \
    test "$(sets "$TMP/mpi.log")" = "$(sets "$TMP/ghost.log")"
sets "$TMP/mpi.log" | sed 's/^/     /'
cat >"$TMP/cmp.py" <<'EOF'
import struct, sys
import numpy as np
def load(path):
    b = open(path, "rb").read()
    assert b[:8] == b"COMINEMD", path
    hb = struct.unpack_from("<I", b, 12)[0]
    return np.frombuffer(b[20 + hb:len(b) - 4], dtype="<f4").astype(np.float64)
a, b = load(sys.argv[1]), load(sys.argv[2])
err = np.abs(a - b) / (1e-4 + np.abs(b))
print("%.3g" % err.max())
EOF
STEP3W=(--data "$TMP/D3" "${COMMON[@]}" --epochs 1 --tk 0 --tau 0 --quiet)
"$BIN" train "${STEP3W[@]}" --bn-groups 2 --out "$TMP/ghost0" >/dev/null 2>&1
"$BIN" train "${STEP3W[@]}" --out "$TMP/serial0" >/dev/null 2>&1
"${MPI[@]}" "$BIN" train "${STEP3W[@]}" --out "$TMP/mpi0" >/dev/null 2>&1
for k in a b; do
    e=$($PY "$TMP/cmp.py" "$TMP/mpi0/peer_$k.model" "$TMP/ghost0/peer_$k.model" 2>&1)
    s=$($PY "$TMP/cmp.py" "$TMP/serial0/peer_$k.model" "$TMP/ghost0/peer_$k.model" 2>&1)
    echo "     peer $k after 3 steps: max |w2 - w1| / (1e-4 + |w1|) = $e vs --bn-groups 2; $s for whole-batch BN"
    check "peer $k: weights and running statistics within float tolerance (5e-3) after 3 steps (drop rate 0)" \
        $PY -c "import sys; sys.exit(0 if float('$e') < 5e-3 else 1)"
done

# 3: a short comining run (votes from epoch 1 on)
RUN3=(--data "$TMP/D" "${COMMON[@]}" --epochs 3 --tk 1 --quiet)
"$BIN" train "${RUN3[@]}" --bn-groups 2 --out "$TMP/ghost3" >/dev/null 2>&1
"${MPI[@]}" "$BIN" train "${RUN3[@]}" --checkpoint-every 1 --out "$TMP/mpi3" >"$TMP/mpi3.log" 2>&1
check "2 ranks: the comining run finishes" test -s "$TMP/mpi3/noise.csv"
rows=$(awk -F, 'NR > 1' "$TMP/mpi3/noise.csv" | wc -l)
both=$(awk -F, 'NR > 1 && $5 == 2' "$TMP/mpi3/noise.csv" | wc -l)
check "noise.csv: 64 samples, each voted on in both voting epochs ($rows rows, $both with 2 rounds)" \
    test "$rows" = 64 -a "$both" = 64
votes=$(awk -F, 'NR > 1 { v += $4 } END { print v + 0 }' "$TMP/mpi3/noise.csv")
n_sets=$(grep -o '"epoch": [12],.*"n_noisy": [0-9.]*' "$TMP/mpi3/metrics.jsonl" |
         awk -F'"n_noisy": ' '{ s += $2 * 4 } END { printf "%.0f", s }')
echo "     noise.csv: $votes votes, $(awk -F, 'NR > 1 && $7 == 1' "$TMP/mpi3/noise.csv" | wc -l) flagged;" \
     "one process: $(awk -F, 'NR > 1 && $7 == 1' "$TMP/ghost3/noise.csv" | wc -l) flagged"
check "noise.csv's votes ($votes) add up to the N sets of metrics.jsonl's voting epochs ($n_sets)" \
    test -n "$n_sets" -a "$votes" = "$n_sets"
check "every metrics.jsonl line has \"ranks\": 2" test "$(grep -c '"ranks": 2' "$TMP/mpi3/metrics.jsonl")" = 3

# 4: kill one rank mid-run; the job ends within seconds; --resume finishes it
RUN=$TMP/killed
"${MPI[@]}" "$BIN" train "${RUN3[@]}" --checkpoint-every 1 --out "$RUN" >"$TMP/killed.log" 2>&1 &
job=$!
for _ in $(seq 400); do [ -s "$RUN/metrics.jsonl" ] && break; sleep 0.05; done
victim=""
for p in $(pgrep -P $job); do
    if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q ' train '; then victim=$p; fi
done
check "found a rank to kill (mid-run)" test -n "$victim" -a -s "$RUN/metrics.jsonl"
[ -n "$victim" ] && kill -9 "$victim"
t0=$(date +%s.%N)
for _ in $(seq 300); do kill -0 $job 2>/dev/null || break; sleep 0.05; done
wait $job
rc=$?
t=$(echo "$(date +%s.%N) - $t0" | bc)
echo "     job exit status $rc, $t s after the kill"
check "a killed rank ends the job with a non-zero status" test $rc -ne 0
check "... within 10 seconds" test "$(echo "$t < 10" | bc)" = 1
"${MPI[@]}" "$BIN" train --resume "$RUN" >"$TMP/resume.log" 2>&1
check "--resume under mpiexec finishes the run" test $? -eq 0 -a -s "$RUN/peer_b.model"
for f in peer_a.model peer_b.model noise.csv; do
    check "the resumed run ends with the uninterrupted run's $f" cmp -s "$RUN/$f" "$TMP/mpi3/$f"
done

# 5: Partial FC, 2 ranks against one process
"$BIN" synth --out "$TMP/D48" --ids 48 --per-id 1 --size 32 >/dev/null 2>&1 || { echo "FAIL synth"; exit 1; }
PFC=(--data "$TMP/D48" --net iresnet18 --width 0.125 --input 32 --batch 16 --threads 1 --decode-threads 1 --seed 5
     --epochs 1 --tk 0 --log-every 1 --sample-rate 0.5)
"$BIN" train "${PFC[@]}" --bn-groups 2 --out "$TMP/pfc1" >"$TMP/pfc1.log" 2>&1
"${MPI[@]}" "$BIN" train "${PFC[@]}" --out "$TMP/pfc2" >"$TMP/pfc2.log" 2>&1
"$BIN" train "${PFC[@]}" --sample-rate 1 --bn-groups 2 --out "$TMP/pfc_full" >/dev/null 2>&1
check "--sample-rate 0.5, 2 ranks: the run finishes" test -s "$TMP/pfc2/peer_b.model"
check "--sample-rate 0.5: the same set sizes C XA XB N on every step as one process" \
    test "$(sets "$TMP/pfc2.log")" = "$(sets "$TMP/pfc1.log")" -a "$(sets "$TMP/pfc2.log" | wc -l)" = 3
for k in a b; do
    e=$($PY "$TMP/cmp.py" "$TMP/pfc2/peer_$k.model" "$TMP/pfc1/peer_$k.model" 2>&1)
    s=$($PY "$TMP/cmp.py" "$TMP/pfc_full/peer_$k.model" "$TMP/pfc1/peer_$k.model" 2>&1)
    echo "     --sample-rate 0.5, peer $k after 3 steps: max |w2 - w1| / (1e-4 + |w1|) = $e vs one process; $s for rate 1"
    check "--sample-rate 0.5, peer $k: 2 ranks end with the one-process weights (5e-3)" \
        $PY -c "import sys; sys.exit(0 if float('$e') < 5e-3 else 1)"
done
PFC2=(--data "$TMP/D48" --net iresnet18 --width 0.125 --input 32 --batch 16 --threads 1 --decode-threads 1 --seed 5
      --epochs 2 --tk 0 --sample-rate 0.5 --checkpoint-every 1)
"${MPI[@]}" "$BIN" train "${PFC2[@]}" --out "$TMP/pfc_whole" >/dev/null 2>&1
RUN=$TMP/pfc_killed
"${MPI[@]}" "$BIN" train "${PFC2[@]}" --out "$RUN" >/dev/null 2>&1 &
job=$!
for _ in $(seq 400); do [ -s "$RUN/metrics.jsonl" ] && break; sleep 0.05; done
for p in $(pgrep -P $job); do
    if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q ' train '; then kill -9 "$p"; break; fi
done
wait $job
"${MPI[@]}" "$BIN" train --resume "$RUN" >"$TMP/pfc_resume.log" 2>&1
check "--sample-rate 0.5, 2 ranks: --resume after a kill finishes" test $? -eq 0 -a -s "$RUN/peer_b.model"
echo "     $(grep -m1 -o 'resuming.*' "$TMP/pfc_resume.log")"
for f in peer_a.model peer_b.model noise.csv; do
    check "--sample-rate 0.5, 2 ranks: the resumed run ends with the uninterrupted run's $f" \
        cmp -s "$RUN/$f" "$TMP/pfc_whole/$f"
done

# the backbone's gradients all-reduced in buckets during the backward: 4096-float buckets (76
# of them) give the bytes of one bucket (two ranks: each sum is a + b, whatever the cut)
COMINE_BUCKET_FLOATS=4096 "${MPI[@]}" "$BIN" train "${STEP3[@]}" --out "$TMP/mpi_buckets" >/dev/null 2>&1
for f in peer_a.model peer_b.model noise.csv; do
    check "2 ranks, 4096-float buckets: the same $f as one bucket" cmp -s "$TMP/mpi_buckets/$f" "$TMP/mpi/$f"
done

# 6: each rank reads only its part of every batch: a bad image is met (and reported) by one rank
"$BIN" synth --out "$TMP/Dbad" --ids 8 --per-id 8 --size 32 >/dev/null 2>&1 || { echo "FAIL synth"; exit 1; }
bad=$(find "$TMP/Dbad" -type f -name '*.png' | sort | sed -n 5p)
printf 'not a png' >"$bad"
BAD=(--data "$TMP/Dbad" "${COMMON[@]}" --epochs 1 --tk 0)
"${MPI[@]}" "$BIN" train "${BAD[@]}" --out "$TMP/bad2" >"$TMP/bad2.log" 2>&1
check "a bad image, 2 ranks: the run finishes" test $? -eq 0 -a -s "$TMP/bad2/peer_b.model"
check "a bad image, 2 ranks: reported once, by the rank that read it ($(grep -c 'skipping bad image' "$TMP/bad2.log") lines)" \
    test "$(grep -c 'skipping bad image' "$TMP/bad2.log")" = 1
check "a bad image, 2 ranks: the 63 good samples trained once, the bad one never (noise.csv's rounds)" \
    test "$(awk -F, 'NR > 1 && $5 == 1' "$TMP/bad2/noise.csv" | wc -l),$(grep -F "$bad" "$TMP/bad2/noise.csv" | cut -d, -f5)" = "63,0"

# 7: cross-fitting (`comine estimate --data`) under mpiexec: every fold's network trained by
# both ranks, one report and one p-value file, from rank 0
"${MPI[@]}" "$BIN" estimate --data "$TMP/D" --out "$TMP/cf" --folds 3 --net iresnet18 --width 0.125 --input 32 \
    --emb-dim 32 --batch 16 --epochs 1 --s 32 --m 0.2 --threads 1 --decode-threads 1 --json --samples "$TMP/cf.csv" \
    >"$TMP/cf.json" 2>"$TMP/cf.log"
check "estimate --data, 2 ranks: exit 0, one JSON report of the 64 samples" \
    test $? -eq 0 -a "$(grep -c '"samples": 64, .*"folds": 3' "$TMP/cf.json")" = 1 -a "$(wc -l < "$TMP/cf.json")" = 1
check "estimate --data, 2 ranks: every fold's run on both ranks, a p-value for every sample" \
    test "$(cat "$TMP"/cf/fold[123]/metrics.jsonl | grep -c '"ranks": 2'),$(awk -F, 'NR > 1 && $4 != ""' "$TMP/cf.csv" | wc -l)" = "3,64"
"${MPI[@]}" "$BIN" estimate --data "$TMP/nothere.txt" --out "$TMP/cf2" >"$TMP/cf2.log" 2>&1
check "estimate --data, 2 ranks: a missing data set ends the job with a message naming it" \
    test $? -ne 0 -a -n "$(grep -F nothere.txt "$TMP/cf2.log")"

[ $fail -eq 0 ] || { echo "$fail check(s) failed"; tail -20 "$TMP/resume.log"; exit 1; }
exit 0
