#!/bin/bash
# test_bench_cli.sh: `comine bench` on a tiny network (iresnet18 width 0.125 @32, batch 4):
# both modes print the figures, --json prints one object with the keys bench/run.sh reads,
# positive rates, and bad options fail with a message naming the option.
# usage: bash test_bench_cli.sh <comine binary> <source dir>
set -u
BIN=$1
fail=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
tiny="--net iresnet18 --width 0.125 --input 32 --batch 4 --classes 10 --steps 2 --warmup-steps 1 --threads 1"

out=$("$BIN" bench $tiny 2>&1); rc=$?
check "arcface: exit 0" test $rc -eq 0
check "arcface: training line" grep -q "^training: .*images/s" <<<"$out"
check "arcface: inference line" grep -q "^inference: .*images/s" <<<"$out"
check "arcface: peak memory line" grep -q "^peak memory: " <<<"$out"

json=$("$BIN" bench $tiny --mode comining --json --sgemm 64 2>&1); rc=$?
check "comining --json: exit 0" test $rc -eq 0
check "comining --json: one line" test "$(wc -l <<<"$json")" -eq 1
for key in train_images_per_s infer_images_per_s gflops peak_rss_mb params sgemm_gflops train_step_cpu_s; do
    check "json key $key" grep -q "\"$key\": " <<<"$json"
done
rate=$(sed -n 's/.*"train_images_per_s": \([0-9.]*\).*/\1/p' <<<"$json")
check "train_images_per_s > 0 ($rate)" awk -v r="$rate" 'BEGIN { exit !(r > 0) }'
check "comining json says its mode" grep -q '"mode": "comining"' <<<"$json"
check "parameter count of iresnet18 w0.125 @32" grep -q '"params": 308672,' <<<"$json"

err=$("$BIN" bench --net resnet99 2>&1); rc=$?
check "unknown net: exit 2" test $rc -eq 2
check "unknown net: message names --net" grep -q "option --net" <<<"$err"
err=$("$BIN" bench --net mobilefacenet --input 64 2>&1); rc=$?
check "mobilefacenet @64: exit 2" test $rc -eq 2
check "mobilefacenet @64: message says why" grep -q "input must be 112" <<<"$err"
err=$("$BIN" bench --steps 0 2>&1); rc=$?
check "--steps 0: exit 2" test $rc -eq 2

if [ $fail -ne 0 ]; then echo "test_bench_cli: $fail check(s) failed"; exit 1; fi
echo "test_bench_cli: all checks passed"
