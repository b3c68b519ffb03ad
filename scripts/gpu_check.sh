#!/usr/bin/env bash
# gpu_check.sh: the one device run of the CUDA backend (docs/GPU.md), under 8 minutes on a
# 16-core machine with one H100/H200, without network access:
#   1. configure with -DCOMINE_CUDA=ON into build/gpu and build (-j 16);
#   2. `comine info` and nvidia-smi (the GPU, driver, cuDNN and cuBLAS versions);
#   3. the GPU tests (ctest -R cuda: test_backend_cuda, every backend entry against the CPU
#      backend; test_train_cuda, three training steps CUDA vs CPU), with their output;
#   4. `comine bench --device cuda` on iresnet50@112 batch 128, iresnet18@112 batch 256 and
#      MobileFaceNet batch 256, arcface and comining modes (JSON lines and a table);
#      PyTorch's numbers beside them when bench/torch_bench.py has a CUDA mode (--device)
#      and torch can see the GPU.
# Everything goes to $OUT (default ./gpu_out): build.log, info.txt, tests.log, bench.jsonl,
# bench.md, summary.txt.  Each stage has its own time limit; a failed stage is recorded in
# summary.txt and the script goes on to the next one.  Exit status: 0 when the build and
# the tests passed.
#   scripts/gpu_check.sh                 all stages
#   GPU_CHECK_BENCH=0 scripts/gpu_check.sh   build and tests only
#   GPU_CHECK_BUILD=dir, GPU_CHECK_JOBS=n     another build folder, other parallelism
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
jobs=${GPU_CHECK_JOBS:-16}
build=${GPU_CHECK_BUILD:-build/gpu}
summary=$OUT/summary.txt
: >"$summary"
t0=$(date +%s)
note() { echo "$*" | tee -a "$summary"; }
elapsed() { echo $(($(date +%s) - t0)); }

note "gpu_check: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), $(nproc) cores"

# 1. build
if ! timeout 300 bash -c "cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DCOMINE_CUDA=ON && \
                          cmake --build $build -j $jobs" >"$OUT/build.log" 2>&1; then
  note "build: FAILED after $(elapsed) s (see build.log)"
  tail -n 40 "$OUT/build.log"
  exit 1
fi
note "build: ok ($(elapsed) s)"
comine=$build/comine
# cuDNN 9 loads its engine libraries at run time from beside libcudnn
cudnn_lib=$(sed -n 's/^CUDNN_LIBRARY:FILEPATH=//p' $build/CMakeCache.txt)
[ -n "$cudnn_lib" ] && export LD_LIBRARY_PATH="$(dirname "$cudnn_lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# 2. the machine
{
  nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  echo
  timeout 60 "$comine" info 2>&1
} >"$OUT/info.txt"
grep -E "^(cuda|gpu)" "$OUT/info.txt" | tee -a "$summary"

# 3. the GPU tests (COMINE_CUDA_SYNC=1: an error inside a kernel is reported at that kernel)
tests_ok=1
if ! (cd $build && COMINE_CUDA_SYNC=1 timeout 240 ctest -R cuda --output-on-failure -V) >"$OUT/tests.log" 2>&1; then
  tests_ok=0
fi
grep -E "^(ok|FAIL|skipped|note)|tests passed|Test +#|check\(s\) FAILED" "$OUT/tests.log" | grep -vE "^ok " >>"$summary"
if grep -qE "\*\*\*Skipped|Not Run" "$OUT/tests.log"; then
  note "tests: SKIPPED (no GPU seen: see tests.log)"
  tests_ok=0
elif [ $tests_ok = 1 ]; then
  note "tests: passed ($(elapsed) s)"
else
  note "tests: FAILED ($(elapsed) s; see tests.log)"
fi

# 4. the benchmark
if grep -q "^gpus: none" "$OUT/info.txt"; then
  note "bench: not run (no GPU)"
elif [ "${GPU_CHECK_BENCH:-1}" != 0 ]; then
  : >"$OUT/bench.jsonl"
  torch_cuda=0
  if grep -q -- '"--device"' bench/torch_bench.py 2>/dev/null &&
     timeout 60 python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    torch_cuda=1
  fi
  printf '| network | batch | mode | comine images/s | step ms | PyTorch images/s |\n|---|---|---|---|---|---|\n' \
    >"$OUT/bench.md"
  for cfg in "iresnet50 128" "iresnet18 256" "mobilefacenet 256"; do
    set -- $cfg
    for mode in arcface comining; do
      if [ $(elapsed) -gt 420 ]; then
        note "bench: stopped at $1 $mode (time budget)"
        break 2
      fi
      line=$(timeout 90 "$comine" bench --device cuda --net "$1" --batch "$2" --mode $mode --steps 10 \
             --warmup-steps 3 --json 2>>"$OUT/bench.err")
      rc=$?
      if [ $rc != 0 ] || [ -z "$line" ]; then
        note "bench $1 batch $2 $mode: FAILED (exit $rc; see bench.err)"
        echo "| $1 | $2 | $mode | failed | | |" >>"$OUT/bench.md"
        continue
      fi
      echo "$line" >>"$OUT/bench.jsonl"
      torch="n/a"
      if [ $torch_cuda = 1 ]; then
        tl=$(timeout 120 python3 bench/torch_bench.py --device cuda --net "$1" --batch "$2" --mode $mode --steps 10 \
             --json 2>>"$OUT/bench.err")
        [ -n "$tl" ] && echo "$tl" | sed 's/^{/{"impl": "pytorch", /' >>"$OUT/bench.jsonl"
        torch=$(echo "$tl" | python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["train_images_per_s"])' \
                2>/dev/null || echo "failed")
      fi
      echo "$line" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("| %s | %d | %s | %.1f | %.1f | %s |" % (r["net"], r["batch"], r["mode"], r["train_images_per_s"],
      1e3 * r["train_step_s"], sys.argv[1]))' "$torch" >>"$OUT/bench.md"
    done
  done
  [ $torch_cuda = 1 ] || note "bench: no PyTorch CUDA figures (bench/torch_bench.py has no --device, or torch sees no GPU)"
  cat "$OUT/bench.md" | tee -a "$summary"
fi
note "gpu_check: done in $(elapsed) s"
[ $tests_ok = 1 ]
