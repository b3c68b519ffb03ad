#!/usr/bin/env bash
# fuzz/run.sh: run every libFuzzer harness built by fuzz/build.sh, one at a time, for SECONDS
# each (default 20: the CI smoke pass), starting from the corpora in tests/fuzz_corpus/<name>.
# New inputs go to BUILD/corpus/<name> (the committed corpora are only read); a crash, leak,
# timeout or out-of-memory input is saved under BUILD/artifacts/ and the script fails.
#   fuzz/run.sh [SECONDS] [BUILD] [HARNESS...]
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-20}
out=${2:-$src/build/fuzz}
shift $(( $# > 2 ? 2 : $# ))
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in "$src"/fuzz/fuzz_*.c; do names+=("$(basename "$f" .c)"); done
fi
status=0
for name in "${names[@]}"; do
  short=${name#fuzz_}
  bin=$out/$name
  [ -x "$bin" ] || { echo "$name: not built (run fuzz/build.sh $out)"; status=1; continue; }
  work=$out/corpus/$short
  mkdir -p "$work" "$out/artifacts/$short"
  log=$out/$name.log
  seeds=$src/tests/fuzz_corpus/$short
  [ -d "$seeds" ] || seeds=""
  TMPDIR=${TMPDIR:-/tmp} ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$bin" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2560 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$short/" "$work" $seeds >"$log" 2>&1
  rc=$?
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    echo "$name: ok, ${runs:-?} executions in ${secs} s, ${cov:-cov ?}, corpus $(ls "$work" | wc -l) files"
  else
    echo "$name: FAILED (exit $rc) after ${runs:-?} executions; see $log and $out/artifacts/$short/"
    grep -E 'ERROR|SUMMARY|runtime error|comine:' "$log" | head -5
    status=1
  fi
done
exit $status
