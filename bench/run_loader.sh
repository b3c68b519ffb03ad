#!/bin/bash
# run_loader.sh: the loader benchmark: comine's loader (bench_loader) against libjpeg-turbo's
# bare decode and against Pillow (loader_pil.py) on the same files; prints the ratios, per
# wall second and per CPU second (a shared machine slows the wall clock, not the CPU count).
# Usage: bench/run_loader.sh [BENCH_LOADER_BINARY] [IMAGES_FOLDER] [MAX_IMAGES] [REPEATS]
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$HERE/../build/bench_loader}
FOLDER=${2:-$HERE/../../shared/data/lfw112/images}
MAX=${3:-0}
REPS=${4:-3}
if [ ! -d "$FOLDER" ]; then echo "skipped: $FOLDER absent"; exit 0; fi
if [ ! -x "$BIN" ]; then echo "run_loader.sh: no bench_loader at $BIN (build the bench_loader target)"; exit 2; fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), cores: $(nproc)"
C_OUT=$("$BIN" "$FOLDER" "$MAX" "$REPS")
echo "$C_OUT" | grep -v '^RESULT'
P_OUT=$(/usr/bin/python3 "$HERE/loader_pil.py" "$FOLDER" "$MAX" "$REPS")
echo "$P_OUT" | grep -v '^RESULT'
val() { echo "$1" | grep '^RESULT' | tr ' ' '\n' | grep "^$2=" | cut -d= -f2; }
bare=$(val "$C_OUT" bare); l1=$(val "$C_OUT" l1); l2=$(val "$C_OUT" l2)
bare_cpu=$(val "$C_OUT" bare_cpu); l1_cpu=$(val "$C_OUT" l1_cpu)
pil=$(val "$P_OUT" pil); pil_cpu=$(val "$P_OUT" pil_cpu)
awk -v bare="$bare" -v l1="$l1" -v l2="$l2" -v bc="$bare_cpu" -v l1c="$l1_cpu" -v pil="$pil" -v pc="$pil_cpu" 'BEGIN {
  printf "ratios (target: loader >= 0.90 x bare decode, >= 3 x PIL)\n"
  printf "  loader_1t / bare_decode_1t  wall %.2f   cpu %.2f\n", l1 / bare, l1c / bc
  printf "  loader_2t / bare_decode_1t  wall %.2f\n", l2 / bare
  printf "  loader_1t / pil_1p          wall %.2f   cpu %.2f\n", l1 / pil, l1c / pc
  printf "  loader_2t / pil_1p          wall %.2f\n", l2 / pil
}'
