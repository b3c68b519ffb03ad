#!/bin/bash
# test_train_pfc_cli.sh: Partial FC in `comine train` and `comine bench` (one process).
#  1. --sample-rate 1 is the plain head: the same bytes as a run without the option;
#  2. a --sample-rate 0.25 run (60 classes, batch 8: 15 classes a step) trains, its checkpoint
#     is version 3 and records 0.25; killed and resumed it ends byte-identical (the draws are a
#     function of (seed, step)); a checkpoint edited to another rate is refused on resume;
#  3. bad rates (0, -1, 1.5, not a number) refused naming the option, --subcenters 2 with
#     --sample-rate 0.5 refused saying why; bench --sample-rate runs and reports the rate.
# usage: bash test_train_pfc_cli.sh <comine binary> <source dir>
set -u
BIN=$1
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_train_pfc_cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
fail=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
same3() { cmp -s "$1/peer_a.model" "$2/peer_a.model" && cmp -s "$1/peer_b.model" "$2/peer_b.model" &&
          cmp -s "$1/noise.csv" "$2/noise.csv"; }

"$BIN" synth --out D --ids 60 --per-id 2 --size 32 >/dev/null 2>&1 || { echo "FAIL synth"; exit 1; }
train=(--data D --net iresnet18 --width 0.125 --input 32 --batch 8 --epochs 3 --tk 1 --threads 1
       --decode-threads 1 --seed 3 --quiet --checkpoint-every 1)

# 1. rate 1: today's head, byte for byte
"$BIN" train "${train[@]}" --out P0 >P0.log 2>&1
"$BIN" train "${train[@]}" --sample-rate 1 --out P1 >P1.log 2>&1
check "--sample-rate 1 runs" test -s P1/peer_b.model
check "... to the same bytes as a run without the option (peer_a/b.model, noise.csv)" same3 P0 P1

# 2. rate 0.25: trains, records the rate, resumes to the same bytes
"$BIN" train "${train[@]}" --sample-rate 0.25 --out U >U.log 2>&1
check "--sample-rate 0.25 runs" test $? = 0 -a -s U/peer_b.model
check "... to other weights than the full head" eval '! cmp -s U/peer_a.model P0/peer_a.model'
hdr=$($PY -c "import struct; b = open('U/checkpoint.bin', 'rb').read(28); print(struct.unpack('<I', b[4:8])[0], struct.unpack('<f', b[24:28])[0])")
check "its checkpoint is version 3 and records the rate ($hdr)" test "$hdr" = "3 0.25"
"$BIN" train "${train[@]}" --sample-rate 0.25 --out K >/dev/null 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null && [ "$(cat K/metrics.jsonl 2>/dev/null | wc -l)" -lt 1 ]; do sleep 0.01; done
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
"$BIN" train --resume K >K.log 2>&1
check "killed and resumed" test $? = 0
check "... ends byte-identical (peer_a.model, peer_b.model, noise.csv)" same3 U K
# the checkpoint edited to rate 0.5 (checksum recomputed): refused
$PY - <<'PY'
import struct, zlib
b = bytearray(open("U/checkpoint.bin", "rb").read())
b[24:28] = struct.pack("<f", 0.5)
b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])) & 0xffffffff)
open("U/checkpoint.bin", "wb").write(b)
PY
"$BIN" train --resume U --epochs 4 >R.log 2>&1
rc=$?
check "a checkpoint of another sample rate refused on resume (exit $rc)" test $rc != 0
check "... saying so" grep -q "sample-rate 0.5, this run 0.25" R.log
echo "     $(grep -m1 sample-rate R.log)"
out=$("$BIN" train --resume K --sample-rate 0.5 2>&1); rc=$?
check "--resume with another --sample-rate refused" test $rc != 0 -a -n "$(grep -F -- "--sample-rate" <<< "$out")"

# 3. bad values
for r in 0 -1 1.5 abc; do
    out=$("$BIN" train "${train[@]}" --sample-rate "$r" --out B 2>&1); rc=$?
    check "--sample-rate $r refused (exit $rc)" test $rc = 2 -a -n "$(grep -F -- "--sample-rate" <<< "$out")"
done
echo "     $("$BIN" train "${train[@]}" --sample-rate 0 --out B 2>&1 | head -1)"
out=$("$BIN" train "${train[@]}" --subcenters 2 --sample-rate 0.5 --out S 2>&1); rc=$?
check "--subcenters 2 --sample-rate 0.5 refused" test $rc != 0 -a -n "$(grep -F "not with --subcenters 2" <<< "$out")"
out=$("$BIN" bench --net iresnet18 --width 0.125 --input 32 --batch 8 --classes 200 --steps 1 --warmup-steps 1 \
      --threads 1 --sample-rate 0.1 --json 2>&1); rc=$?
check "bench --sample-rate 0.1 runs and reports the rate" test $rc = 0 -a -n "$(grep -F '"sample_rate": 0.1,' <<< "$out")"
out=$("$BIN" bench --classes 200 --sample-rate 1.5 2>&1); rc=$?
check "bench --sample-rate 1.5 refused" test $rc = 2 -a -n "$(grep -F "option --sample-rate: 1.5 is not in (0, 1]" <<< "$out")"

if [ $fail -ne 0 ]; then echo "$fail check(s) failed"; exit 1; fi
echo "all checks passed"
