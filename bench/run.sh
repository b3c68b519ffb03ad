#!/usr/bin/env bash
# run.sh: comine against PyTorch on the issue-7 configurations, side by side in one run.
#
# For each repetition, each configuration (iresnet18 @112 b32 10575 classes; iresnet18
# width 0.25 @64 b128 1000 classes; MobileFaceNet @112 b32 10575 classes) and each mode
# (arcface: one network; comining: two peers), runs `comine bench --json` and
# bench/torch_bench.py alternately (who goes first alternates too), plus OpenBLAS's sgemm
# rate measured by comine in the same run.  Prints per configuration the medians and
# spread (min..max over repetitions) of training and inference images/s, GFLOP/s, peak
# memory, the comine/PyTorch ratios, training GFLOP/s as a share of the sgemm peak, the
# parameter-count check, the load average before and after, and (when bench_fma sits next
# to the comine binary) training GFLOP/s as a share of the machine's measured FMA peak.
# CPU s/step (CPU time of all threads per training step, lower is better) is the figure
# that load disturbs least.
# Not a test: it takes minutes and wants a quiet machine (1-minute load well below the
# thread count).
#
# usage: bash bench/run.sh [COMINE_BINARY]      (default: build/comine)
# environment: REPS (3), STEPS (8), WARMUP (2), THREADS (2), SGEMM_N (2048),
#              ONLY (an extended regex: run only the configurations it matches, e.g.
#              'mobilefacenet|w0.25'), OUT (raw results file),
#              MALLOC (keep: both sides run with glibc's malloc keeping what it was given,
#              MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=64 GiB; glibc: its defaults).
# Why MALLOC=keep: PyTorch allocates its activations at every forward, and with glibc's
# defaults the large ones go back to the system when freed and come back as fresh pages,
# whose faults cost these VMs more than the convolutions (PyTorch's iresnet18@112 inference
# at 12-15 images/s against 61-73 with the setting; docs/PERFORMANCE_ZEN5.md). comine
# allocates its buffers once, so the setting leaves it as it is.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
comine=${1:-$here/../build/comine}
[ -x "$comine" ] || { echo "run.sh: no comine binary at $comine (build it, or pass its path)" >&2; exit 2; }
py=/usr/bin/python3
REPS=${REPS:-3} STEPS=${STEPS:-8} WARMUP=${WARMUP:-2} THREADS=${THREADS:-2} SGEMM_N=${SGEMM_N:-2048}
ONLY=${ONLY:-}
out=${OUT:-$(mktemp /tmp/comine-bench.XXXXXX.jsonl)}
: > "$out"

configs=(
  "iresnet18@112|--net iresnet18 --width 1 --input 112 --batch 32 --classes 10575"
  "iresnet18-w0.25@64|--net iresnet18 --width 0.25 --input 64 --batch 128 --classes 1000"
  "mobilefacenet@112|--net mobilefacenet --width 1 --input 112 --batch 32 --classes 10575"
)
modes=(arcface comining)

load() { cut -d' ' -f1 /proc/loadavg; }
echo "load average (1 min) before: $(load); threads $THREADS, $REPS repetitions x $STEPS steps; raw: $out"
common="--steps $STEPS --warmup-steps $WARMUP --threads $THREADS --json"
MALLOC=${MALLOC:-keep}
case "$MALLOC" in
  keep) export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 ;;
  glibc) ;;
  *) echo "run.sh: MALLOC must be keep or glibc, not '$MALLOC'" >&2; exit 2 ;;
esac
echo "malloc: $MALLOC (MALLOC_MMAP_MAX_=${MALLOC_MMAP_MAX_:-default} MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-default})"
for ((rep = 0; rep < REPS; rep++)); do
  i=0
  for c in "${configs[@]}"; do
    name=${c%%|*} opts=${c#*|}
    [ -n "$ONLY" ] && ! [[ "$name" =~ $ONLY ]] && continue
    for mode in "${modes[@]}"; do
      extra=""
      [ "$name" = "iresnet18@112" ] && [ "$mode" = arcface ] && extra="--sgemm $SGEMM_N"
      run_comine() { printf '{"config": "%s", "impl": "comine", "load": %s, "result": %s}\n' "$name" "$(load)" \
                       "$("$comine" bench $opts --mode "$mode" $common $extra)" >> "$out"; }
      run_torch() { printf '{"config": "%s", "impl": "pytorch", "load": %s, "result": %s}\n' "$name" "$(load)" \
                      "$("$py" "$here/torch_bench.py" $opts --mode "$mode" $common)" >> "$out"; }
      if (( (rep + i) % 2 == 0 )); then run_comine; run_torch; else run_torch; run_comine; fi
      i=$((i + 1))
      echo "  rep $((rep + 1))/$REPS $name $mode done (load $(load))" >&2
    done
  done
done
echo "load average (1 min) after: $(load)"
# The hardware's own limit, for reading the GFLOP/s (sgemm is not it on every CPU).
fma=nan
if [ -x "$(dirname "$comine")/bench_fma" ]; then
  fma_out=$("$(dirname "$comine")/bench_fma" "$THREADS")
  echo "$fma_out" | grep -v '^RESULT'
  fma=$(echo "$fma_out" | sed -n 's/^RESULT fma_gflops=\([0-9.]*\).*/\1/p')
fi
export COMINE_FMA_GFLOPS=$fma

"$py" - "$out" <<'PYEOF'
import json, math, os, statistics, sys
fma = float(os.environ.get("COMINE_FMA_GFLOPS", "nan") or "nan")
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sgemm = [r["result"]["sgemm_gflops"] for r in rows if "sgemm_gflops" in r["result"]]
peak = statistics.median(sgemm) if sgemm else float("nan")
if sgemm:
    print("OpenBLAS sgemm peak (comine's backend, %d threads): median %.1f GFLOP/s (%.1f..%.1f)"
          % (rows[0]["result"]["threads"], peak, min(sgemm), max(sgemm)))
keys = [("train_images_per_s", "train img/s", "%.1f"), ("infer_images_per_s", "infer img/s", "%.1f"),
        ("gflops", "train GFLOP/s", "%.1f"), ("peak_rss_mb", "peak MiB", "%.0f"),
        ("train_step_cpu_s", "CPU s/step", "%.3f")]
seen = []
for r in rows:
    k = (r["config"], r["result"]["mode"])
    if k not in seen:
        seen.append(k)
for config, mode in seen:
    sel = {impl: [r["result"] for r in rows if r["config"] == config and r["result"]["mode"] == mode
                  and r["impl"] == impl] for impl in ("comine", "pytorch")}
    loads = [r["load"] for r in rows if r["config"] == config and r["result"]["mode"] == mode]
    pc = {impl: sorted({x["params"] for x in v}) for impl, v in sel.items()}
    same = pc["comine"] == pc["pytorch"]
    print("\n%s, mode %s (load %.2f..%.2f; parameters comine %s, PyTorch %s: %s)" % (
        config, mode, min(loads), max(loads), pc["comine"], pc["pytorch"], "equal" if same else "DIFFERENT"))
    print("  %-14s %-24s %-24s %s" % ("", "comine median (spread)", "PyTorch median (spread)", "ratio"))
    for key, label, fmt in keys:
        med = {}
        cells = []
        for impl in ("comine", "pytorch"):
            v = [x[key] for x in sel[impl]]
            if not v:
                cells.append("-")
                continue
            med[impl] = statistics.median(v)
            cells.append((fmt + " (" + fmt + ".." + fmt + ")") % (med[impl], min(v), max(v)))
        ratio = med["comine"] / med["pytorch"] if len(med) == 2 and med["pytorch"] else float("nan")
        print("  %-14s %-24s %-24s %.2fx" % (label, cells[0], cells[1], ratio))
    if sgemm:
        print("  training GFLOP/s / sgemm peak: comine %.0f%%, PyTorch %.0f%%" % tuple(
            100.0 * statistics.median([x["gflops"] for x in sel[i]]) / peak if sel[i] else float("nan")
            for i in ("comine", "pytorch")))
    if not math.isnan(fma):
        print("  training GFLOP/s / FMA peak:   comine %.0f%%, PyTorch %.0f%%" % tuple(
            100.0 * statistics.median([x["gflops"] for x in sel[i]]) / fma if sel[i] else float("nan")
            for i in ("comine", "pytorch")))
PYEOF
