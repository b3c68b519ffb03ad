#!/bin/bash
# test_corrupt_cli.sh: `comine synth` and `comine corrupt` end to end: synth layout, same seed
# same bytes, thread-count independence, the grid, JPEG output; corrupt's counts and flags,
# identity selection (--min-per-id/--max-per-id/--people) with distractors taken from the
# small identities, an explicit --distractors folder, add mode, permute mode, same seed same
# list, the list read back as input, and every error case (non-zero status and a message).
# With a third argument `lfw` (a CTest entry of its own): only the reference selection on the
# LFW crops (../shared/data/lfw112 beside the source tree, or $COMINE_LFW); exit 77 (CTest:
# skipped) when they are absent.
# usage: bash test_corrupt_cli.sh <comine binary> <source dir> [lfw]
set -u
COMINE=${1:?comine binary}
TMP=$(mktemp -d /tmp/comine_corrupt_cli.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
# expect_fail WHAT PATTERN ARGS...: the command must fail and print PATTERN on stderr
expect_fail() {
    local what=$1 pat=$2; shift 2
    if "$COMINE" "$@" >"$TMP/out" 2>"$TMP/err"; then bad "error $what: accepted"; return; fi
    if grep -q -- "$pat" "$TMP/err"; then ok "error $what -> $(head -n 1 "$TMP/err")"
    else bad "error $what: message lacks '$pat': $(cat "$TMP/err")"; fi
}
count_flag() { awk -F'\t' -v f="$2" '$3 == f' "$1" | wc -l; }

# ---- LFW reference selection (its own CTest entry) ----
if [ "${3:-}" = lfw ]; then
    LFW=${COMINE_LFW:-${2:-$(dirname "$0")/..}/../shared/data/lfw112}
    if [ ! -d "$LFW/images" ]; then
        echo "test_corrupt_cli lfw: skipped: $LFW/images absent (the LFW crops: ../shared/data/lfw112 beside the source tree, or \$COMINE_LFW)"
        exit 77
    fi
    "$COMINE" corrupt --data "$LFW/images" --people "$LFW/lists/peopleDevTrain.txt" --min-per-id 5 --max-per-id 60 \
        --flip 0.2 --outlier 0.2 --seed 1 --out "$TMP/lfw.txt" >"$TMP/sum" || bad "lfw"
    check "LFW DevTrain >= 5, <= 60: 298 identities, 3678 images, 736 flips + 735 outliers" \
        grep -q "3678 samples, 298 identities, 736 flips (uniform), 735 outliers" "$TMP/sum"
    if [ "$fails" -ne 0 ]; then echo "test_corrupt_cli lfw: $fails check(s) FAILED"; exit 1; fi
    echo "test_corrupt_cli lfw: all checks passed"
    exit 0
fi

# ---- synth ----
"$COMINE" synth --out "$TMP/a" --ids 6 --per-id 5 --size 32 --seed 4 --threads 1 --quiet >/dev/null || bad "synth a"
"$COMINE" synth --out "$TMP/b" --ids 6 --per-id 5 --size 32 --seed 4 --threads 2 --quiet >/dev/null || bad "synth b"
"$COMINE" synth --out "$TMP/c" --ids 6 --per-id 5 --size 32 --seed 5 --quiet >/dev/null || bad "synth c"
check "synth layout: 6 identity folders x 5 PNGs" test "$(ls "$TMP/a" | wc -l)" = 6 -a "$(ls "$TMP"/a/*/*.png | wc -l)" = 30
check "synth names id00000/0000.png .. id00005/0004.png" test -f "$TMP/a/id00000/0000.png" -a -f "$TMP/a/id00005/0004.png"
check "synth same seed, 1 vs 2 threads: identical bytes" diff -r -q "$TMP/a" "$TMP/b"
if diff -r -q "$TMP/a" "$TMP/c" >/dev/null; then bad "synth seeds 4 and 5 gave identical files"; else ok "synth seeds 4 and 5 differ"; fi
"$COMINE" synth --grid "$TMP/grid.png" --grid-ids 3 --grid-per-id 4 --size 32 --quiet || bad "synth grid"
check "synth --grid writes a PNG" test -s "$TMP/grid.png"
"$COMINE" synth --out "$TMP/j" --ids 2 --per-id 2 --size 32 --format jpg --quiet >/dev/null || bad "synth jpg"
check "synth --format jpg" test -f "$TMP/j/id00001/0001.jpg"
expect_fail "synth without --out or --grid" "required" synth --ids 2
expect_fail "synth --size 8" "size" synth --out "$TMP/x" --size 8
expect_fail "synth --ids 0" "ids" synth --out "$TMP/x" --ids 0

# ---- corrupt on a folder ----
"$COMINE" corrupt --data "$TMP/a" --out "$TMP/flip.txt" --flip 0.3 --seed 7 >"$TMP/sum" || bad "corrupt flips"
check "corrupt --flip 0.3 of 30: 9 flips, 21 clean" test "$(count_flag "$TMP/flip.txt" 1)" = 9 -a "$(count_flag "$TMP/flip.txt" 0)" = 21
check "corrupt summary names the counts" grep -q "30 samples, 6 identities, 9 flips" "$TMP/sum"
"$COMINE" corrupt --data "$TMP/a" --out "$TMP/flip2.txt" --flip 0.3 --seed 7 >/dev/null
check "corrupt same seed, same list" cmp -s "$TMP/flip.txt" "$TMP/flip2.txt"
# flipped labels differ from the folder's label (identity k is folder id0000k)
wrong=$(awk -F'\t' '$3 == 1 { n = split($1, p, "/"); if (p[n-1] == sprintf("id%05d", $2)) print }' "$TMP/flip.txt" | wc -l)
check "corrupt: no flipped sample keeps its label" test "$wrong" = 0
"$COMINE" corrupt --data "$TMP/a" --out "$TMP/perm.txt" --flip 0.4 --flip-mode permute --seed 3 >/dev/null || bad "permute"
wrong=$(awk -F'\t' '$3 == 1 { n = split($1, p, "/"); if (p[n-1] == sprintf("id%05d", $2)) print }' "$TMP/perm.txt" | wc -l)
check "corrupt --flip-mode permute: 12 flips, all wrong" test "$wrong" = 0 -a "$(count_flag "$TMP/perm.txt" 1)" = 12
# the list reads back as a data set
"$COMINE" corrupt --data "$TMP/flip.txt" --out "$TMP/again.txt" --seed 1 >/dev/null
check "a written list reads back as --data, its 9 flip flags kept" test "$(wc -l < "$TMP/again.txt")" = 30 -a "$(count_flag "$TMP/again.txt" 1)" = 9

# ---- distractors: another synth set, its folders renamed so that identities differ ----
"$COMINE" synth --out "$TMP/d" --ids 4 --per-id 5 --size 32 --seed 99 --quiet >/dev/null
expect_fail "distractor identity also in training" "also a training identity" corrupt --data "$TMP/a" --out "$TMP/o.txt" --outlier 0.2 --distractors "$TMP/d"
for f in "$TMP"/d/id*; do mv "$f" "$TMP/d/other_$(basename "$f")"; done
"$COMINE" corrupt --data "$TMP/a" --out "$TMP/o.txt" --flip 0.2 --outlier 0.2 --distractors "$TMP/d" --seed 2 >/dev/null || bad "outliers"
check "corrupt 0.2 + 0.2 of 30: 6 flips + 6 outliers replace" test "$(count_flag "$TMP/o.txt" 1)" = 6 -a "$(count_flag "$TMP/o.txt" 2)" = 6 -a "$(wc -l < "$TMP/o.txt")" = 30
check "outliers come only from the distractor folder" test "$(awk -F'\t' '$3 == 2' "$TMP/o.txt" | grep -c "/d/other_id")" = 6
check "non-outliers never come from the distractor folder" test "$(awk -F'\t' '$3 != 2' "$TMP/o.txt" | grep -c "/d/other_id")" = 0
"$COMINE" corrupt --data "$TMP/a" --out "$TMP/add.txt" --outlier 0.3 --outlier-mode add --distractors "$TMP/d" >/dev/null || bad "add"
check "--outlier-mode add: 30 + 9 samples" test "$(wc -l < "$TMP/add.txt")" = 39 -a "$(count_flag "$TMP/add.txt" 2)" = 9

# ---- selection: identities with >= 5 images train, the others are distractors ----
mkdir -p "$TMP/s"; cp -r "$TMP"/a/* "$TMP/s/"
rm "$TMP"/s/id00004/000[3-4].png "$TMP"/s/id00005/000[1-4].png   # 3 and 1 images left
printf '3\nid00000\t5\nid00001\t5\nid00004\t3\n' > "$TMP/people.txt"
"$COMINE" corrupt --data "$TMP/s" --out "$TMP/sel.txt" --min-per-id 4 --max-per-id 4 --flip 0.25 --outlier 0.25 --seed 1 >"$TMP/sum" || bad "select"
check "select min 4 max 4: 4 identities x 4 = 16 samples, 4 distractors" grep -q "selected: 4 identities.*16 images" "$TMP/sum"
check "select: 4 flips + 4 outliers from id00004/id00005" test "$(count_flag "$TMP/sel.txt" 1)" = 4 -a "$(awk -F'\t' '$3 == 2' "$TMP/sel.txt" | grep -c -E "id0000[45]/")" = 4
"$COMINE" corrupt --data "$TMP/s" --out "$TMP/ppl.txt" --people "$TMP/people.txt" --min-per-id 5 --flip 0.2 --seed 1 >"$TMP/sum" || bad "people"
check "--people: 2 listed identities with >= 5 images, 10 samples" test "$(wc -l < "$TMP/ppl.txt")" = 10 -a "$(grep -c -E "id0000[01]/" "$TMP/ppl.txt")" = 10
expect_fail "select: not enough distractors" "not enough distractor images" corrupt --data "$TMP/s" --out "$TMP/x.txt" --min-per-id 5 --outlier 0.3
expect_fail "select: --min-per-id above --max-per-id" "more than --max-per-id" corrupt --data "$TMP/s" --out "$TMP/x.txt" --min-per-id 5 --max-per-id 4

# ---- errors ----
expect_fail "--flip 1" "outside \[0, 1)" corrupt --data "$TMP/a" --out "$TMP/x.txt" --flip 1
expect_fail "--flip -0.1" "outside \[0, 1)" corrupt --data "$TMP/a" --out "$TMP/x.txt" --flip -0.1
expect_fail "--outlier 1.5" "outside \[0, 1)" corrupt --data "$TMP/a" --out "$TMP/x.txt" --outlier 1.5
expect_fail "--flip 0.6 --outlier 0.5" "more than 1" corrupt --data "$TMP/a" --out "$TMP/x.txt" --flip 0.6 --outlier 0.5 --distractors "$TMP/d"
expect_fail "outliers without distractors" "no distractor images" corrupt --data "$TMP/a" --out "$TMP/x.txt" --outlier 0.1
expect_fail "too few distractors" "not enough distractor images" corrupt --data "$TMP/a" --out "$TMP/x.txt" --outlier 0.9 --distractors "$TMP/d"
mkdir -p "$TMP/one"; cp -r "$TMP/a/id00000" "$TMP/one/"
expect_fail "flips with one identity" "at least 2 training identities" corrupt --data "$TMP/one" --out "$TMP/x.txt" --flip 0.2
expect_fail "missing --data" "required" corrupt --out "$TMP/x.txt" --flip 0.2
expect_fail "missing data folder" "$TMP/nope" corrupt --data "$TMP/nope" --out "$TMP/x.txt"
expect_fail "missing distractors" "$TMP/nodis" corrupt --data "$TMP/a" --out "$TMP/x.txt" --outlier 0.1 --distractors "$TMP/nodis"
expect_fail "bad --flip-mode" "not one of" corrupt --data "$TMP/a" --out "$TMP/x.txt" --flip-mode swap
check "no list written by failed runs" test ! -e "$TMP/x.txt"

if [ "$fails" -ne 0 ]; then echo "test_corrupt_cli: $fails check(s) FAILED"; exit 1; fi
echo "test_corrupt_cli: all checks passed"
