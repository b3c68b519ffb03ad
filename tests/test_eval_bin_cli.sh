#!/bin/bash
# test_eval_bin_cli.sh: insightface verification sets from the command line.
# - `comine eval --bin` on the pickles Python wrote (tests/fixtures/binset, protocols 2..5 and
#   Python 2 str) gives the accuracy and the per-pair scores of `comine eval --pairs` on the same
#   pairs (pairs.tsv: 10 contiguous folds either way);
# - `comine pack --bin` from a generic list, an LFW `N` file (pairs grouped by fold, so that the
#   .bin's contiguous tenths are the file's folds) and an LFW `F N` file: eval --bin = eval --pairs;
#   JPEG / PNG bytes copied, a PGM re-encoded as JPEG;
# - Python's pickle.load reads what comine wrote (when python3 is present; else exit 77, skipped);
# - errors: a cut or foreign file names the file and the byte offset; option misuse is refused.
# usage: bash test_eval_bin_cli.sh <comine binary> <source dir>
set -u
BIN=$1
SRC=$2
FX=$SRC/tests/fixtures/binset
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_eval_bin_cli.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT
fail=0
skipped=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
json_field() { # json_field KEY JSON
    sed -E "s/.*\"$1\": ([^,}]*).*/\1/" <<< "$2"
}
# same_scores A B: the same labels and scores within 1e-5, line by line (SORTED=1: as sorted lists,
# for a .bin whose pairs are grouped by fold)
same_scores() {
    if [ "${SORTED:-0}" = 1 ]; then
        cut -f3,4 "$1" | sort -g > "$TMP/s1"; cut -f3,4 "$2" | sort -g > "$TMP/s2"
        paste <(sed 's/^/a\tb\t/' "$TMP/s1") <(sed 's/^/a\tb\t/' "$TMP/s2")
    else
        paste "$1" "$2"
    fi | awk -F'\t' '{ d = $3 - $7; if (d < 0) d = -d; if (d > 1e-5 || $4 != $8) bad++; if (d > m) m = d }
        END { printf "     %d pairs, max |score difference| %.2g\n", NR, m; exit (bad > 0 || NR == 0) }'
}
# same_eval WHAT ARGS_A -- ARGS_B: equal accuracy / std / AUC and scores of two evaluations
same_eval() {
    local what=$1; shift
    local a=() b=()
    while [ "$1" != "--" ]; do a+=("$1"); shift; done
    shift
    b=("$@")
    local ja jb
    ja=$("$BIN" eval --model "$M" --json --threads 1 --scores "$TMP/sa.tsv" "${a[@]}" 2>&1)
    jb=$("$BIN" eval --model "$M" --json --threads 1 --scores "$TMP/sb.tsv" "${b[@]}" 2>&1)
    echo "     ${a[*]##*/}: $ja"
    echo "     ${b[*]##*/}: $jb"
    check "$what: accuracy $(json_field accuracy "$ja") = $(json_field accuracy "$jb")" \
        test "$(json_field accuracy "$ja")" = "$(json_field accuracy "$jb")" -a -n "$(json_field accuracy "$jb")"
    check "$what: accuracy_std and AUC equal" test "$(json_field accuracy_std "$ja") $(json_field auc "$ja")" = \
        "$(json_field accuracy_std "$jb") $(json_field auc "$jb")"
    check "$what: per-pair scores equal${SORTED:+ (as sorted lists)}" same_scores "$TMP/sa.tsv" "$TMP/sb.tsv"
}

# a small model
"$BIN" synth --out "$TMP/D" --ids 6 --per-id 4 --size 32 --quiet >/dev/null &&
    "$BIN" train --data "$TMP/D" --out "$TMP/run" --net iresnet18 --width 0.125 --input 32 --emb-dim 64 --batch 8 \
        --epochs 1 --tk 1 --threads 1 --decode-threads 2 --quiet >/dev/null || { echo "FAIL training a model"; exit 1; }
M=$TMP/run/peer_a.model

# ---- Python's pickles ----
for f in py_p2 py_p3 py_p4 py_p5 py2str_p2; do
    same_eval "Python $f.bin vs pairs.tsv" --bin "$FX/$f.bin" -- --pairs "$FX/pairs.tsv"
done
out=$("$BIN" eval --model "$M" --bin "$FX/py_p4.bin" --folds 5 --threads 1 2>&1)
check "--folds 5 on a .bin" grep -q "510 pairs, 5 folds, 1020 images" <<< "$out"

# ---- comine pack --bin ----
for p in 2 3; do
    out=$("$BIN" pack --bin "$TMP/list_p$p.bin" --pairs "$FX/pairs.tsv" --bin-protocol $p 2>&1)
    echo "     $out"
    check "pack --bin (protocol $p) from a list: 1020 images copied" \
        grep -q "510 pairs (255 matched).*1020 images, 1020 copied as JPEG/PNG bytes, 0 re-encoded" <<< "$out"
    check "pack --bin (protocol $p): folds agree" \
        grep -q "its 10 contiguous folds .* are the pairs file's folds" <<< "$out"
    same_eval "comine p$p.bin vs pairs.tsv" --bin "$TMP/list_p$p.bin" -- --pairs "$FX/pairs.tsv"
done

# LFW-style pairs files over a Name/Name_000n.jpg tree
mkdir -p "$TMP/lfw"
ids=("$TMP"/D/*/)
for k in 0 1 2 3 4 5; do
    name=P$k
    mkdir -p "$TMP/lfw/$name"
    n=1
    for f in "${ids[$k]}"*; do cp "$f" "$TMP/lfw/$name/$(printf '%s_%04d.jpg' $name $n)"; n=$((n + 1)); done
done
{
    echo 20
    for k in $(seq 0 19); do echo "P$((k % 6))	$((k % 4 + 1))	$(((k + 1) % 4 + 1))"; done
    for k in $(seq 0 19); do echo "P$((k % 6))	$((k % 3 + 1))	P$(((k % 6 + 1 + k / 6 % 5) % 6))	$((k % 4 + 1))"; done
} > "$TMP/lfw_n.txt"
check "LFW N file has 41 lines" test "$(wc -l < "$TMP/lfw_n.txt")" = 41
out=$("$BIN" pack --bin "$TMP/lfw_n.bin" --pairs "$TMP/lfw_n.txt" --root "$TMP/lfw" 2>&1)
echo "     $out"
check "pack --bin from an LFW N file: 80 images copied" \
    grep -q "40 pairs (20 matched).*80 copied as JPEG/PNG" <<< "$out"
check "pack --bin from an LFW N file: pairs grouped by fold, folds agree" \
    grep -q "its 10 contiguous folds .* are the pairs file's folds" <<< "$out"
SORTED=1 same_eval "LFW N file: .bin vs pairs" --bin "$TMP/lfw_n.bin" -- --pairs "$TMP/lfw_n.txt" --root "$TMP/lfw"
out=$("$BIN" pack --bin "$TMP/lfw_n_file.bin" --pairs "$TMP/lfw_n.txt" --root "$TMP/lfw" --bin-order file 2>&1)
check "--bin-order file on an N file: warns that the folds differ" grep -q "not the pairs file's 10 folds" <<< "$out"
{
    echo "2	10"
    for f in 0 1; do
        for k in $(seq 0 9); do echo "P$(((k + f) % 6))	1	2"; done
        for k in $(seq 0 9); do echo "P$((k % 6))	1	P$(((k + 1 + f) % 6))	2"; done
    done
} > "$TMP/lfw_f.txt"
out=$("$BIN" pack --bin "$TMP/lfw_f.bin" --pairs "$TMP/lfw_f.txt" --root "$TMP/lfw" 2>&1)
echo "     $out"
check "pack --bin from an LFW 'F N' file: says --folds 2" grep -q "comine eval --bin --folds 2" <<< "$out"
same_eval "LFW 'F N' file: .bin --folds 2 vs pairs" --bin "$TMP/lfw_f.bin" --folds 2 -- --pairs "$TMP/lfw_f.txt" \
    --root "$TMP/lfw"

# an image that is neither JPEG nor PNG (a PGM) is decoded and re-encoded as JPEG
{ printf 'P5\n2 2\n255\n'; printf '\001\100\200\377'; } > "$TMP/lfw/P5/P5_0005.pgm"
printf 'P5/P5_0005.pgm\tP0/P0_0001.jpg\t0\nP0/P0_0001.jpg\tP0/P0_0002.jpg\t1\n' > "$TMP/pgm.tsv"
out=$("$BIN" pack --bin "$TMP/pgm.bin" --pairs "$TMP/pgm.tsv" --root "$TMP/lfw" --jpeg-quality 90 2>&1)
echo "     $out"
check "pack --bin: a PGM re-encoded as JPEG" \
    grep -q "4 images, 3 copied as JPEG/PNG bytes, 1 re-encoded as JPEG (quality 90)" <<< "$out"
out=$("$BIN" eval --model "$M" --bin "$TMP/pgm.bin" --folds 2 --threads 1 2>&1)
check "eval --bin reads it" grep -q "pgm.bin: 2 pairs, 2 folds, 4 images" <<< "$out"

# ---- Python reads what comine wrote ----
PY=$(command -v python3 || true)
if [ -n "$PY" ]; then
    for p in 2 3; do
        res=$("$PY" - "$TMP/list_p$p.bin" "$FX" $p <<'EOF'
import os, pickle, sys
path, fx, protocol = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path, "rb") as f:
    bins, issame = pickle.load(f, encoding="bytes") if protocol == 2 else pickle.load(f)
pairs = [l.rstrip("\n").split("\t") for l in open(os.path.join(fx, "pairs.tsv"))]
ok = len(bins) == 2 * len(pairs) and len(issame) == len(pairs)
for k, (a, b, same) in enumerate(pairs):
    ok = ok and issame[k] is (same == "1") and isinstance(bins[2 * k], bytes)
    ok = ok and bins[2 * k] == open(os.path.join(fx, a), "rb").read()
    ok = ok and bins[2 * k + 1] == open(os.path.join(fx, b), "rb").read()
print("equal" if ok else "DIFFERENT", len(bins), "images", len(issame), "pairs")
EOF
)
        echo "     pickle.load(list_p$p.bin): $res"
        check "Python's pickle.load reads comine's protocol-$p .bin: same images and issame" \
            grep -q "^equal 1020" <<< "$res"
    done
else
    echo "skipped: Python's pickle.load of comine's .bin (no python3)"
    skipped=$((skipped + 1))
fi

# ---- errors ----
head -c 20000 "$FX/py_p3.bin" > "$TMP/cut.bin"
out=$("$BIN" eval --model "$M" --bin "$TMP/cut.bin" 2>&1)
rc=$?
echo "     $out"
check "a cut .bin fails naming the file and the byte offset" \
    test $rc = 1 -a -n "$(grep -E "cut.bin: byte [0-9]+: .*(truncated|expected)" <<< "$out")"
printf '\200\003}q\000.' > "$TMP/dict.bin"
out=$("$BIN" eval --model "$M" --bin "$TMP/dict.bin" 2>&1)
check "a pickled dict is refused: byte 2, EMPTY_DICT" grep -q "dict.bin: byte 2: opcode EMPTY_DICT" <<< "$out"
cp "$FX/images/id00000/0000.jpg" "$TMP/bad_img.jpg"
printf '\200\003](C\003\377\330\377C\003\377\330\377C\003\377\330\377C\003\377\330\377e](\210\211e\206.' \
    > "$TMP/badimg.bin"
out=$("$BIN" eval --model "$M" --bin "$TMP/badimg.bin" --folds 2 2>&1)
check "an image that does not decode is named (index, pair, byte)" \
    grep -q "badimg.bin: image 0 (pair 0, byte 4)" <<< "$out"
out=$("$BIN" eval --model "$M" --bin "$FX/py_p3.bin" --pairs "$FX/pairs.tsv" 2>&1)
check "eval: --bin and --pairs together refused" grep -q "give one of them" <<< "$out"
out=$("$BIN" eval --model "$M" 2>&1)
check "eval: neither --bin nor --pairs refused" grep -q "give one of them" <<< "$out"
out=$("$BIN" eval --model "$M" --bin "$FX/py_p3.bin" --root "$FX" 2>&1)
check "eval: --root with --bin refused" grep -q "option --root: a .bin holds its images" <<< "$out"
out=$("$BIN" eval --model "$M" --bin "$TMP/lfw_n.bin" --folds 60 2>&1)
check "eval: more folds than pairs refused" grep -q "folds 60 is more than the 40 pairs" <<< "$out"
out=$("$BIN" pack --bin "$TMP/x.bin" 2>&1)
check "pack: --bin without --pairs refused" grep -q "option --pairs is required with --bin" <<< "$out"
out=$("$BIN" pack --bin "$TMP/x.bin" --pairs "$FX/pairs.tsv" --on-bad skip 2>&1)
check "pack: --bin --on-bad skip refused" grep -q "option --on-bad: --bin cannot leave out an image" <<< "$out"
out=$("$BIN" pack --pairs "$FX/pairs.tsv" --data "$TMP/D" --out "$TMP/r" 2>&1)
check "pack: --pairs without --bin refused" grep -q "option --pairs goes with --bin" <<< "$out"
printf '%s\t%s\t1\n%s\t%s\t0\n' "$TMP/bad_img.jpg" "$TMP/trunc.jpg" "$TMP/bad_img.jpg" "$TMP/bad_img.jpg" \
    > "$TMP/badpairs.tsv"
head -c 300 "$TMP/bad_img.jpg" > "$TMP/trunc.jpg"
out=$("$BIN" pack --bin "$TMP/b.bin" --pairs "$TMP/badpairs.tsv" 2>&1)
rc=$?
check "pack --bin: a bad image stops it, named with its pair" \
    test $rc = 1 -a -n "$(grep "trunc.jpg.*(pair 1 of .*badpairs.tsv)" <<< "$out")"
check "pack --bin: nothing written after a failure" test ! -e "$TMP/b.bin"
out=$("$BIN" eval --help 2>&1)
check "eval --help lists --bin and --folds with its default" \
    test -n "$(grep -- "--bin" <<< "$out")" -a -n "$(grep -E -- "--folds.*default: 10" <<< "$out")"
out=$("$BIN" pack --help 2>&1)
check "pack --help lists --bin, --pairs, --bin-order, --bin-protocol, --jpeg-quality with defaults" \
    test -n "$(grep -- "--pairs" <<< "$out")" -a -n "$(grep -E -- "--bin-order.*default: fold" <<< "$out")" \
    -a -n "$(grep -E -- "--bin-protocol.*default: 3" <<< "$out")" \
    -a -n "$(grep -E -- "--jpeg-quality.*default: 95" <<< "$out")"

if [ $fail != 0 ]; then echo "test_eval_bin_cli: $fail FAILED"; exit 1; fi
if [ $skipped != 0 ]; then echo "test_eval_bin_cli: the checks that ran passed; $skipped skipped (see above)"; exit 77; fi
echo "test_eval_bin_cli: all checks passed"
