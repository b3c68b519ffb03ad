#!/bin/bash
# test_cli_options.sh: what every command's option parser promises.
# - `comine help CMD` prints CMD's --help; `comine --version` is project()'s version;
# - an unknown option is refused (exit 2) with the nearest known name suggested, and without a
#   suggestion when nothing is near;
# - numbers out of range (integer overflow included) are refused naming the option;
# - every command has --help, exits 0 on it, and marks required options [required].
# usage: bash test_cli_options.sh <comine binary> <source dir>
set -u
BIN=$1
SRC=$2
fail=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
want=$(sed -nE 's/^project\(comine VERSION ([0-9.]+).*/\1/p' "$SRC/CMakeLists.txt")
check "comine --version = project()'s version ($want)" test "$("$BIN" --version)" = "comine $want"
check "comine help train = comine train --help" test "$("$BIN" help train)" = "$("$BIN" train --help)"
"$BIN" help nosuchcommand > /dev/null 2>&1
check "comine help of an unknown command exits 2" test $? = 2
out=$("$BIN" train --epoch 3 2>&1); rc=$?
check "train --epoch: refused, 'did you mean --epochs?'" test $rc = 2 -a -n "$(grep -F "unknown option '--epoch' (did you mean --epochs?)" <<< "$out")"
out=$("$BIN" eval --modle m 2>&1)
check "eval --modle: 'did you mean --model?'" grep -qF "(did you mean --model?)" <<< "$out"
out=$("$BIN" train --zzzzzz 1 2>&1)
check "train --zzzzzz: no suggestion" test -z "$(grep -F "did you mean" <<< "$out")" -a -n "$(grep -F "unknown option '--zzzzzz'" <<< "$out")"
out=$("$BIN" train --epochs 99999999999 2>&1); rc=$?
check "an int option past 2^31 is refused" test $rc = 2 -a -n "$(grep -F "option --epochs" <<< "$out")"
out=$("$BIN" synth --out /nonexistent/x --seed 99999999999999999999999 2>&1); rc=$?
check "a 64-bit option past 2^64 is refused as too large" test $rc = 2 -a -n "$(grep -F "option --seed: '99999999999999999999999' is too large" <<< "$out")"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_cli_options.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
"$BIN" synth --out "$TMP/D" --ids 3 --per-id 3 --size 16 --quiet > /dev/null 2>&1
out=$("$BIN" pairs --data "$TMP/D" --out "$TMP/p.txt" --pairs 2 2>&1); rc=$?
check "an old name (pairs --pairs) still works and warns with the new one" \
    test $rc = 0 -a "$(wc -l < "$TMP/p.txt")" = 4 -a -n "$(grep -F "warning: --pairs is now --count" <<< "$out")"
check "old names are not listed in --help" test -z "$("$BIN" pairs --help | grep -E '^  --pairs')"
cmds=$("$BIN" --help | sed -nE 's/^  ([a-z]+) .*/\1/p')
n=0
for c in $cmds; do
    n=$((n + 1))
    h=$("$BIN" "$c" --help 2>&1); rc=$?
    check "comine $c --help exits 0 and lists --help" test $rc = 0 -a -n "$(grep -E '^  --help' <<< "$h")"
done
check "the command list is not empty ($n commands)" test "$n" -ge 10
# --out: a file for the commands that write one, a folder for train/synth/report; refused before any work
mkdir "$TMP/adir"; : > "$TMP/afile"
for c in "pairs --data $TMP/D --count 2 --out $TMP/adir" "corrupt --data $TMP/D --flip 0.1 --out $TMP/adir" \
         "embed --model $TMP/none.model --data $TMP/D --out $TMP/adir"; do
    out=$("$BIN" $c 2>&1); rc=$?
    check "${c%% *} --out FOLDER: refused, a file is expected" test $rc = 2 -a -n "$(grep -F "option --out: $TMP/adir is a folder" <<< "$out")"
done
out=$("$BIN" pairs --data "$TMP/D" --count 2 --out "$TMP/nowhere/deeper/p.txt" 2>&1); rc=$?
check "pairs --out in a missing folder: the folder is made" test $rc = 0 -a -s "$TMP/nowhere/deeper/p.txt"
touch "$TMP/plain"
out=$("$BIN" pairs --data "$TMP/D" --count 2 --out "$TMP/plain/p.txt" 2>&1); rc=$?
check "pairs --out under a file: refused naming it" test $rc = 2 -a -n "$(grep -F "$TMP/plain is not a folder" <<< "$out")"
for c in "synth --out $TMP/afile --ids 2 --per-id 2 --size 16" "train --data $TMP/D --out $TMP/afile" \
         "report --run $TMP/none --out $TMP/afile"; do
    out=$("$BIN" $c 2>&1); rc=$?
    check "${c%% *} --out FILE: refused, a folder is expected" test $rc = 2 -a -n "$(grep -F "option --out: $TMP/afile exists and is not a folder" <<< "$out")"
done
h=$("$BIN" eval --help)
check "eval --help marks --model [required]" grep -qE -- '--model .*\[required\]' <<< "$h"
echo "test_cli_options: $([ $fail = 0 ] && echo "all passed" || echo "$fail FAILED")"
exit $((fail > 0))
