#!/bin/bash
# test_eval_identify_cli.sh: the metrics users report, from the command line, with a tiny model
# trained here on synthetic faces:
# - `comine eval --far`: TAR at each FAR (JSON keys tar_far_1e-4 ..., tar_far_1e-2/1e-3 kept),
#   checked against a brute-force awk computation on the per-pair scores (--scores);
# - `--roc OUT.tsv`: header, thresholds descending, (0, 0) first and (1, 1) last, every point
#   recounted from the scores; `--plot OUT.png` a PNG when built with PLplot, else a clear error;
# - `comine identify`: the split counts (identities, probes per --probe-per-id, distractors,
#   pairs), rank-1 never rising as distractors are added, the same answer twice, progress on
#   stderr, errors for a gallery without probes and a missing distractor folder;
# - on LFW (../shared/data/lfw112, when present): identify on 20 people with a gallery of
#   symbolic links and 200 distractors of people with one image; else that part is skipped.
# Exit 77 (skipped) when a part could not run and the others passed.
# usage: bash test_eval_identify_cli.sh <comine binary> <source dir>
set -u
BIN=$1
SRC=$2
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_eval_identify_cli.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT
printf 'leak:libfontconfig\nleak:libltdl\nleak:libcairo\nleak:libpango\nleak:libglib\n' > "$TMP/lsan.supp"
export LSAN_OPTIONS="suppressions=$TMP/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
fail=0
skipped=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
json_field() { # json_field KEY JSON
    sed -E "s/.*\"$1\": ([^,}]*).*/\1/" <<< "$2"
}

"$BIN" synth --out "$TMP/D" --ids 8 --per-id 5 --size 32 --seed 1 --quiet > /dev/null &&
    "$BIN" train --data "$TMP/D" --out "$TMP/run" --net iresnet18 --width 0.125 --input 32 --emb-dim 64 --batch 8 \
        --epochs 2 --tk 1 --threads 1 --decode-threads 2 --quiet > /dev/null || { echo "FAIL training a model"; exit 1; }
M=$TMP/run/peer_a.model
"$BIN" synth --out "$TMP/G" --ids 10 --per-id 5 --size 32 --seed 3 --quiet > /dev/null
"$BIN" synth --out "$TMP/X" --ids 20 --per-id 3 --size 32 --seed 4 --quiet > /dev/null

# ---- eval --far / --roc / --plot on all pairs of the gallery's images ----
find "$TMP/G" -name '*.png' | sort > "$TMP/imgs"
awk 'NR == FNR { p[n++] = $0; next } END { for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) {
        a = p[i]; b = p[j]; sub(/\/[^\/]*$/, "", a); sub(/\/[^\/]*$/, "", b); print p[i] "\t" p[j] "\t" (a == b) } }' \
    "$TMP/imgs" "$TMP/imgs" > "$TMP/pairs.tsv"
js=$("$BIN" eval --model "$M" --pairs "$TMP/pairs.tsv" --far 1e-6,1e-4,1e-3,5e-3,2e-2 --scores "$TMP/scores.tsv" \
    --roc "$TMP/roc.tsv" --json --threads 1 2>"$TMP/eval.err")
check "eval --far --roc --json exits 0" test $? -eq 0
echo "     $js"
for k in tar_far_1e-2 tar_far_1e-3 tar_far_1e-6 tar_far_1e-4 tar_far_5e-3 tar_far_2e-2; do
    check "JSON key $k" grep -q "\"$k\": " <<< "$js"
done
check "tar_far_1e-3 appears once" test "$(grep -o '"tar_far_1e-3"' <<< "$js" | wc -l)" -eq 1
check "1225 pairs, 1 / FAR > mismatched pairs gives null at 1e-6" test "$(json_field tar_far_1e-6 "$js")" = null
# brute force: k = floor(far * negatives), t = the (k+1)-th largest negative, TAR = positives above t
brute() { # brute FAR: the negatives sorted descending by sort -g, then the positives
    { awk -F'\t' '$4 == 0 { print $3 }' "$TMP/scores.tsv" | sort -g -r; echo POSITIVES
      awk -F'\t' '$4 == 1 { print $3 }' "$TMP/scores.tsv"; } |
    awk -v far="$1" '$1 == "POSITIVES" { pos = 1; next } !pos { neg[nn++] = $1 + 0; next } { p[np++] = $1 + 0 }
        END { k = int(far * nn); if (k < 1) { print "null"; exit }
              t = (k < nn) ? neg[k] : -1e30
              h = 0; for (i = 0; i < np; i++) if (p[i] > t) h++; printf "%.6f\n", h / np }'
}
for far in 1e-3 5e-3 2e-2 1e-2; do
    key=tar_far_$far
    got=$(json_field "$key" "$js")
    [ "$got" != null ] && got=$(awk -v v="$got" 'BEGIN { printf "%.6f\n", v }')
    ref=$(brute "$far")
    check "TAR@FAR=$far: comine $got = brute force $ref" test "$got" = "$ref"
done
check "ROC header" test "$(head -1 "$TMP/roc.tsv")" = "$(printf 'threshold\tfar\ttar')"
check "ROC starts at (0, 0), ends at (1, 1)" test "$(sed -n 2p "$TMP/roc.tsv" | cut -f2,3)" = "$(printf '0\t0')" -a \
    "$(tail -1 "$TMP/roc.tsv" | cut -f2,3)" = "$(printf '1\t1')"
awk -F'\t' 'NR == FNR { n = FNR; sc[n] = $3 + 0; same[n] = $4 + 0; if ($4 + 0) np++; else nn++; next }
    FNR > 1 { if (FNR > 2 && !($1 < prev)) bad++; prev = $1; tp = fp = 0
              for (i = 1; i <= n; i++) if (sc[i] > $1 + 0) { if (same[i]) tp++; else fp++ }
              if ((fp / nn - $2) ^ 2 > 1e-14 || (tp / np - $3) ^ 2 > 1e-14) bad++ }
    END { printf "     %d ROC points recounted, %d disagree\n", FNR - 1, bad; exit bad > 0 }' "$TMP/scores.tsv" "$TMP/roc.tsv"
check "every ROC point recounted from the scores" test $? -eq 0
"$BIN" eval --model "$M" --pairs "$TMP/pairs.tsv" --far 1e-3,abc > "$TMP/far.out" 2>&1
check "--far with a bad item is refused naming it" test $? -ne 0 -a -n "$(grep -- "--far.*'abc'" "$TMP/far.out")"
"$BIN" eval --model "$M" --pairs "$TMP/pairs.tsv" --plot "$TMP/roc.png" --threads 1 > "$TMP/plot.out" 2>&1
rc=$?
if grep -q "plots are unavailable" "$TMP/plot.out"; then
    check "--plot without PLplot fails with a clear message" test $rc -ne 0
    echo "skipped: the ROC PNG (comine built without PLplot or its pngcairo driver)"
    skipped=$((skipped + 1))
else
    check "eval --plot writes a PNG" test $rc -eq 0 -a "$(head -c 4 "$TMP/roc.png" | tail -c 3)" = PNG
fi

# ---- identify ----
ident() { "$BIN" identify --model "$M" --gallery "$TMP/G" --json --threads 1 "$@"; }
j0=$(ident --quiet --probe-per-id 3)
j20=$(ident --quiet --probe-per-id 3 --distractors "$TMP/X" --num-distractors 20)
jall=$(ident --probe-per-id 3 --distractors "$TMP/X" 2> "$TMP/progress.err")
check "identify --json exits 0" test -n "$jall"
echo "     $jall"
check "10 identities, 30 probes of 10 identities, 60 distractors, gallery 70" test \
    "$(json_field identities "$jall") $(json_field probes "$jall") $(json_field probe_identities "$jall") $(json_field distractors "$jall") $(json_field gallery "$jall")" = "10 30 10 60 70"
check "pairs: 30 genuine, 30 x 69 impostor" test "$(json_field genuine_pairs "$jall") $(json_field impostor_pairs "$jall")" = "30 2070"
check "--num-distractors 20: 20 distractors" test "$(json_field distractors "$j20")" = 20
check "--probe-per-id 0: every image but the enrolled one (40 probes)" test "$(json_field probes "$(ident --quiet)")" = 40
r0=$(json_field rank1 "$j0"); r20=$(json_field rank1 "$j20"); rall=$(json_field rank1 "$jall")
check "rank-1 does not rise with distractors: $r0 >= $r20 >= $rall" awk -v a="$r0" -v b="$r20" -v c="$rall" \
    'BEGIN { exit !(a >= b && b >= c) }'
check "rank-5 >= rank-1" awk -v a="$(json_field rank5 "$jall")" -v b="$rall" 'BEGIN { exit !(a >= b) }'
check "TAR keys of the default --far (1e-6 .. 1e-3)" grep -q '"tar_far_1e-6": null, "tar_far_1e-5": null, "tar_far_1e-4": null, "tar_far_1e-3": ' <<< "$jall"
strip() { sed -E 's/"(embed_images_per_s|seconds)": [^,}]*//g' <<< "$1"; }
again=$(ident --quiet --probe-per-id 3 --distractors "$TMP/X")
check "the same answer twice" test "$(strip "$again")" = "$(strip "$jall")"
check "progress on stderr" grep -q "identify: scoring probes 30 / 30" "$TMP/progress.err"
out=$("$BIN" identify --model "$M" --gallery "$TMP/G" --threads 1 --quiet --far 1e-2,0.1)
check "text output: rank-1 and TAR@FAR=1e-1 lines" grep -q "TAR@FAR=1e-1" <<< "$out"
# an independent numpy version on `comine embed`'s embeddings: split, rank-k and TAR@FAR
if /usr/bin/python3 -c 'import numpy' 2> /dev/null; then
    "$BIN" embed --model "$M" --data "$TMP/G" --out "$TMP/g.npy" --threads 1 > /dev/null 2>&1 &&
        "$BIN" embed --model "$M" --data "$TMP/X" --out "$TMP/x.npy" --threads 1 > /dev/null 2>&1
    check "comine embed of the gallery and the distractors" test $? -eq 0
    ref=$(/usr/bin/python3 - "$TMP" <<'EOF'
import os, sys, numpy as np
tmp = sys.argv[1]
def load(name):
    e = np.load(os.path.join(tmp, name + ".npy"))
    p = open(os.path.join(tmp, name + ".npy.paths.txt")).read().split("\n")[:e.shape[0]]
    return e, p
ge, gp = load("g")
xe, xp = load("x")
order = sorted(range(len(gp)), key=lambda i: gp[i].encode())
ids, enrolled, probes, own = [], [], [], []
for i in order:
    d = os.path.dirname(gp[i])
    if d not in ids:
        ids.append(d)
        enrolled.append(i)
    elif own.count(ids.index(d)) < 3:
        probes.append(i)
        own.append(ids.index(d))
xo = sorted(range(len(xp)), key=lambda i: xp[i].encode())
gallery = np.concatenate([ge[enrolled], xe[xo]]).astype(np.float32)
S = ge[probes].astype(np.float32) @ gallery.T
rows = np.arange(len(probes))
gen = S[rows, own]
imp = S.copy()
imp[rows, own] = -np.inf
above = (imp >= gen[:, None]).sum(1)
negs = np.sort(np.concatenate([np.delete(S[k], own[k]) for k in rows]))[::-1]
out = ["%.6f" % (above < 1).mean(), "%.6f" % (above < 5).mean()]
for far in (1e-2, 0.1):
    k = int(np.floor(far * len(negs)))
    out.append("%.6f" % (gen > negs[k]).mean())
print(" ".join(out))
EOF
)
    jn=$(ident --quiet --probe-per-id 3 --distractors "$TMP/X" --far 1e-2,0.1)
    got=$(awk -v a="$(json_field rank1 "$jn")" -v b="$(json_field rank5 "$jn")" -v c="$(json_field tar_far_1e-2 "$jn")" \
        -v d="$(json_field tar_far_1e-1 "$jn")" 'BEGIN { printf "%.6f %.6f %.6f %.6f", a, b, c, d }')
    check "rank-1, rank-5, TAR@FAR 1e-2 / 1e-1: comine $got = numpy $ref" test "$got" = "$ref"
else
    echo "skipped: the numpy cross-check of identify (no numpy for /usr/bin/python3)"
    skipped=$((skipped + 1))
fi
mkdir -p "$TMP/single/a" "$TMP/single/b"
cp "$(head -1 "$TMP/imgs")" "$TMP/single/a/"; cp "$(tail -1 "$TMP/imgs")" "$TMP/single/b/"
"$BIN" identify --model "$M" --gallery "$TMP/single" --quiet > "$TMP/single.out" 2>&1
check "a gallery without probes is refused" test $? -ne 0 -a -n "$(grep 'no probes' "$TMP/single.out")"
"$BIN" identify --model "$M" --gallery "$TMP/G" --distractors "$TMP/nothing" --quiet > "$TMP/nod.out" 2>&1
check "a missing distractor folder is refused naming it" test $? -ne 0 -a -n "$(grep "$TMP/nothing" "$TMP/nod.out")"

# ---- LFW ----
LFW=${COMINE_LFW:-$SRC/../shared/data/lfw112}
[ -d "$LFW/images" ] || LFW=/work/shared/data/lfw112
if [ -d "$LFW/images" ] && [ -f "$LFW/lists/lfw-names.txt" ]; then
    mkdir -p "$TMP/lfw_g" "$TMP/lfw_x"
    awk -F'\t' '$2 >= 4' "$LFW/lists/lfw-names.txt" | head -20 | cut -f1 | while read -r name; do
        ln -s "$LFW/images/$name" "$TMP/lfw_g/$name"; done
    awk -F'\t' '$2 == 1' "$LFW/lists/lfw-names.txt" | head -200 | cut -f1 | while read -r name; do
        ln -s "$LFW/images/$name/${name}_0001.jpg" "$TMP/lfw_x/$name.jpg"; done
    jl=$("$BIN" identify --model "$M" --gallery "$TMP/lfw_g" --distractors "$TMP/lfw_x" --probe-per-id 3 --json \
        --quiet --far 1e-3,1e-2)
    echo "     LFW: $jl"
    check "LFW: 20 identities, 60 probes, 200 distractors" test \
        "$(json_field identities "$jl") $(json_field probes "$jl") $(json_field distractors "$jl")" = "20 60 200"
    check "LFW: rank-1 and TAR@FAR=1e-2 are numbers in [0, 1]" awk -v a="$(json_field rank1 "$jl")" \
        -v b="$(json_field tar_far_1e-2 "$jl")" 'BEGIN { exit !(a >= 0 && a <= 1 && b >= 0 && b <= 1 && b != "") }'
else
    echo "skipped: LFW identification (no $LFW)"
    skipped=$((skipped + 1))
fi

if [ $fail -gt 0 ]; then echo "$fail check(s) FAILED"; exit 1; fi
[ $skipped -gt 0 ] && exit 77
echo "all checks passed"
