#!/bin/bash
# test_dedup_cli.sh: duplicate identities end to end, on a tiny run.
#   corrupt --duplicate: --duplicate 0 writes the same bytes as before; with flips and outliers
#     the flips and outliers are those of the same seed without it; half of each split identity
#     under a new appended label; OUT.duplicates.tsv and OUT.classes.tsv (NAME#2); bad rates.
#   dedup: --run with every --score (heads read out of checkpoint.bin; ratio the default, --trim),
#     --model/--data, the CSV's
#     header and rows, --all's duplicate column, --threshold, --merge (labels without gaps, the
#     pairs merged), precision/recall against DATA.duplicates.tsv; errors: a run without
#     checkpoint.bin, a corrupted checkpoint, a model of another size, an ensemble of two sizes,
#     an empty data set, a missing option; a run without peer models reads the networks of its
#     checkpoint (the same pairs as the finished run's models), and fails without either.
# usage: bash test_dedup_cli.sh <comine binary> <source dir>
set -u
BIN=${1:?comine binary}
TMP=$(mktemp -d /tmp/comine_dedup_cli.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
expect_fail() {
    local what=$1 pat=$2; shift 2
    if "$BIN" "$@" >"$TMP/out" 2>"$TMP/err"; then bad "error $what: accepted"; return; fi
    if grep -q -- "$pat" "$TMP/err"; then ok "error $what -> $(head -n 1 "$TMP/err")"
    else bad "error $what: message lacks '$pat': $(cat "$TMP/err")"; fi
}

# ---- data: 16 identities x 6 images, 4 more identities as distractors ----
"$BIN" synth --out "$TMP/all" --ids 20 --per-id 6 --size 32 --seed 3 --quiet >/dev/null || { echo "FAIL synth"; exit 1; }
mkdir -p "$TMP/syn" "$TMP/dis"
for i in $(seq 0 19); do d=$(printf id%05d "$i"); if [ "$i" -lt 16 ]; then mv "$TMP/all/$d" "$TMP/syn/"; else mv "$TMP/all/$d" "$TMP/dis/other_$d"; fi; done

# ---- corrupt --duplicate ----
"$BIN" corrupt --data "$TMP/syn" --out "$TMP/plain.txt" --flip 0.2 --outlier 0.1 --distractors "$TMP/dis" --seed 5 >"$TMP/plain.sum" || bad "corrupt plain"
"$BIN" corrupt --data "$TMP/syn" --out "$TMP/zero.txt" --flip 0.2 --outlier 0.1 --distractors "$TMP/dis" --seed 5 --duplicate 0 >"$TMP/zero.sum" || bad "corrupt --duplicate 0"
check "--duplicate 0: the same list, byte for byte, and no extra files" cmp -s "$TMP/plain.txt" "$TMP/zero.txt"
check "--duplicate 0: the same summary (paths aside)" test "$(sed 's/zero/plain/' "$TMP/zero.sum")" = "$(cat "$TMP/plain.sum")"
check "--duplicate 0: no pairs file" test ! -e "$TMP/zero.txt.duplicates.tsv"
"$BIN" corrupt --data "$TMP/syn" --out "$TMP/dup.txt" --flip 0.2 --outlier 0.1 --distractors "$TMP/dis" --seed 5 --duplicate 0.25 >"$TMP/dup.sum" || bad "corrupt --duplicate 0.25"
check "--duplicate 0.25 of 16: 4 pairs (header + 4 lines)" test "$(wc -l < "$TMP/dup.txt.duplicates.tsv")" = 5
check "pairs file: header label_a<TAB>label_b" test "$(head -n 1 "$TMP/dup.txt.duplicates.tsv")" = "$(printf 'label_a\tlabel_b')"
check "new labels 16..19 appended (pairs' second column)" test "$(tail -n +2 "$TMP/dup.txt.duplicates.tsv" | cut -f2 | tr '\n' ' ')" = "16 17 18 19 "
check "the list uses labels 0..19" test "$(cut -f2 "$TMP/dup.txt" | sort -n | uniq | wc -l)" = 20 -a "$(cut -f2 "$TMP/dup.txt" | sort -n | tail -n 1)" = 19
check "summary names the split" grep -q "duplicates: 4 identities split in two labels (16 -> 20 labels" "$TMP/dup.sum"
# paths and flags as without --duplicate; labels equal once each new label maps back to its identity
undo=$(awk -F'\t' 'NR == FNR { if (FNR > 1) back[$2] = $1; next } { l = ($2 in back) ? back[$2] : $2; print $1 "\t" l "\t" $3 }' \
    "$TMP/dup.txt.duplicates.tsv" "$TMP/dup.txt" | md5sum)
check "flips and outliers unchanged by the split (new labels mapped back)" test "$undo" = "$(md5sum < "$TMP/plain.txt")"
# each split identity: half its samples (floor) under the new label
halves=$(tail -n +2 "$TMP/dup.txt.duplicates.tsv" | while IFS=$'\t' read -r a b; do
    na=$(awk -F'\t' -v l="$a" '$2 == l' "$TMP/dup.txt" | wc -l); nb=$(awk -F'\t' -v l="$b" '$2 == l' "$TMP/dup.txt" | wc -l)
    [ "$nb" = $(( (na + nb) / 2 )) ] || echo "bad $a $b $na $nb"; done)
check "split identities: floor(m/2) samples under the new label" test -z "$halves"
first=$(sed -n 2p "$TMP/dup.txt.duplicates.tsv" | cut -f1)
check "classes file: 20 names, new label 16 named after its identity (NAME#2)" \
    test "$(wc -l < "$TMP/dup.txt.classes.tsv")" = 20 -a "$(sed -n 17p "$TMP/dup.txt.classes.tsv" | cut -f2)" = "$(printf 'id%05d#2' "$first")"
"$BIN" corrupt --data "$TMP/syn" --out "$TMP/dup2.txt" --flip 0.2 --outlier 0.1 --distractors "$TMP/dis" --seed 5 --duplicate 0.25 >/dev/null
check "same seed, same list and pairs" bash -c "cmp -s '$TMP/dup.txt' '$TMP/dup2.txt' && cmp -s '$TMP/dup.txt.duplicates.tsv' '$TMP/dup2.txt.duplicates.tsv'"
expect_fail "--duplicate 1" "duplicate" corrupt --data "$TMP/syn" --out "$TMP/x.txt" --duplicate 1
expect_fail "--duplicate -0.1" "duplicate" corrupt --data "$TMP/syn" --out "$TMP/x.txt" --duplicate -0.1

# ---- a tiny run on the duplicated list (2 epochs: the mechanics, not the quality) ----
"$BIN" corrupt --data "$TMP/syn" --out "$TMP/d.txt" --duplicate 0.25 --seed 2 >/dev/null || bad "corrupt for the run"
"$BIN" train --data "$TMP/d.txt" --out "$TMP/run" --net iresnet18 --width 0.125 --input 32 --emb-dim 64 --batch 16 \
    --epochs 2 --tk 1 --s 32 --m 0.2 --threads 1 --decode-threads 2 --quiet >/dev/null || { echo "FAIL training"; exit 1; }
for score in centres means both ratio; do
    if "$BIN" dedup --run "$TMP/run" --score "$score" --out "$TMP/p_$score.csv" >"$TMP/s_$score.txt" 2>&1; then
        ok "dedup --run --score $score -> $(grep -o '[0-9]* pairs judged duplicate' "$TMP/s_$score.txt")"
    else bad "dedup --score $score: $(cat "$TMP/s_$score.txt")"; fi
done
check "pairs CSV header" test "$(head -n 1 "$TMP/p_means.csv")" = "label_a,label_b,score,name_a,name_b,count_a,count_b"
check "centres: 2 peers x 64 floats per label" grep -q "vectors: class centres (128 floats)" "$TMP/s_centres.txt"
check "both: centres and each peer's means side by side (256 floats)" grep -q "vectors: centres + means (256 floats)" "$TMP/s_both.txt"
check "ratio: each peer's ratio vectors side by side (128 floats)" grep -q "vectors: ratio vectors (128 floats)" "$TMP/s_ratio.txt"
check "ratio: the trim of each label's samples least like its mean reported" \
    grep -q "ratio scores of all 96 samples; [0-9]* samples least like their label's mean left out (--trim 0.2;" "$TMP/s_ratio.txt"
"$BIN" dedup --run "$TMP/run" --out "$TMP/p_default.csv" >"$TMP/s_default.txt" 2>&1 || bad "dedup (default score)"
check "the default score is ratio" cmp -s "$TMP/p_default.csv" "$TMP/p_ratio.csv"
check "the automatic threshold: median + 1.5 sigma with ratio scores, 2 with the cosines" \
    bash -c "grep -q '(median + 1.5 sigma) used' '$TMP/s_ratio.txt' && grep -q '(median + 2 sigma) used' '$TMP/s_means.txt'"
"$BIN" dedup --run "$TMP/run" --k-sigma 2 --all --out "$TMP/p_k2.csv" >"$TMP/s_k2.txt" 2>&1 || bad "dedup --k-sigma 2"
"$BIN" dedup --run "$TMP/run" --all --out "$TMP/p_k15.csv" >/dev/null 2>&1 || bad "dedup --all"
th15=$(sed -n 's/.*automatic threshold \([0-9.-]*\) (median + 1.5 sigma).*/\1/p' "$TMP/s_ratio.txt")
th2=$(sed -n 's/.*automatic threshold \([0-9.-]*\) (median + 2 sigma).*/\1/p' "$TMP/s_k2.txt")
check "--k-sigma 2 with ratio scores: a higher threshold ($th2 > $th15), the same candidates" \
    bash -c "awk -v a='$th2' -v b='$th15' 'BEGIN { exit !(a != \"\" && b != \"\" && a > b) }' &&
             cmp -s <(cut -d, -f1-7 '$TMP/p_k2.csv') <(cut -d, -f1-7 '$TMP/p_k15.csv')"
"$BIN" dedup --run "$TMP/run" --trim 0 --out "$TMP/p_t0.csv" >"$TMP/s_t0.txt" 2>&1 || bad "dedup --trim 0"
check "--trim 0: nothing left out" grep -q "; 0 samples least like" "$TMP/s_t0.txt"
check "ratio: the embeddings kept in memory, one pass" grep -q "one pass over the images" "$TMP/s_ratio.txt"
"$BIN" dedup --run "$TMP/run" --memory 0 --all --out "$TMP/p_m0.csv" >"$TMP/s_m0.txt" 2>&1 || bad "dedup --memory 0"
"$BIN" dedup --run "$TMP/run" --all --out "$TMP/p_m1.csv" >/dev/null 2>&1 || bad "dedup --all (ratio)"
check "--memory 0: three passes over the images" grep -q "three passes" "$TMP/s_m0.txt"
check "--memory 0: the same candidates, judgements and scores (to 2e-6) as one pass" bash -c \
    "[ \"\$(cut -d, -f1,2,4- '$TMP/p_m0.csv')\" = \"\$(cut -d, -f1,2,4- '$TMP/p_m1.csv')\" ] && paste -d, '$TMP/p_m0.csv' '$TMP/p_m1.csv' |
     awk -F, 'NR > 1 { d = \$3 - \$11; if (d < 0) d = -d; if (d > 2e-6) bad = 1 } END { exit bad }'"
expect_fail "--center with ratio scores" "option --center" dedup --run "$TMP/run" --center --out "$TMP/x.csv"
"$BIN" dedup --run "$TMP/run" --means-of trusted --out "$TMP/p_tr.csv" >"$TMP/s_tr.txt" 2>&1 || bad "dedup --means-of trusted: $(cat "$TMP/s_tr.txt")"
flagged=$(awk -F, 'NR > 1 && $7 == 1' "$TMP/run/noise.csv" | wc -l)
check "--means-of trusted: the $(( 96 - flagged )) samples noise.csv does not flag" grep -q "trusted samples: $(( 96 - flagged )) of 96 samples" "$TMP/s_tr.txt"
check "precision / recall against d.txt.duplicates.tsv" grep -q "against .*d.txt.duplicates.tsv (4 true pairs): precision" "$TMP/s_means.txt"
"$BIN" dedup --run "$TMP/run" --out "$TMP/p_json.csv" --json >"$TMP/s_json.json" 2>"$TMP/s_json.err" || bad "dedup --json"
check "--json: the same pairs CSV as the text run" cmp -s "$TMP/p_json.csv" "$TMP/p_ratio.csv"
if command -v python3 >/dev/null; then
    res=$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
print(j["duplicates"], len(j["pairs"]), j["truth"]["pairs"], j["labels"])' "$TMP/s_json.json" 2>&1)
    want="$(grep -o '^[0-9]* pairs judged duplicate' "$TMP/s_ratio.txt" | cut -d' ' -f1)"
    check "--json: one object, its pairs those of the text report ($want), 4 true pairs (got: $res)" \
        test "$(cut -d' ' -f1,3 <<< "$res")" = "$want 4" -a "$(cut -d' ' -f1 <<< "$res")" = "$(cut -d' ' -f2 <<< "$res")"
fi
check "--json: the text report goes to stderr" grep -q "pairs judged duplicate" "$TMP/s_json.err"
"$BIN" dedup --run "$TMP/run" --score means --out "$TMP/all.csv" --all --threshold -1 --mutual=0 >"$TMP/s_all.txt" || bad "dedup --all"
rows=$(tail -n +2 "$TMP/all.csv" | wc -l)
check "--all --threshold -1: every candidate written and judged duplicate ($rows rows)" \
    test "$rows" -gt 20 -a "$(tail -n +2 "$TMP/all.csv" | awk -F, '$8 != 1' | wc -l)" = 0
"$BIN" dedup --run "$TMP/run" --score means --out "$TMP/mut.csv" --all --threshold -1 >/dev/null || bad "dedup --all mutual"
# with the mutual condition each label is in at most one pair, and that pair is its best candidate
mut=$(awk -F, 'NR > 1 { if (!($1 in best)) best[$1] = $2; if (!($2 in best)) best[$2] = $1 }
               NR > 1 && $8 == 1 { if (best[$1] != $2 || best[$2] != $1) print "not mutual " $1 " " $2; n[$1]++; n[$2]++ }
               END { for (l in n) if (n[l] > 1) print "twice " l }' "$TMP/mut.csv")
check "--mutual (default): duplicate pairs are mutual nearest labels, each label once ($(awk -F, '$8 == 1' "$TMP/mut.csv" | wc -l) pairs)" test -z "$mut"
check "--all: header ends with duplicate" test "$(head -n 1 "$TMP/all.csv")" = "label_a,label_b,score,name_a,name_b,count_a,count_b,duplicate"
sorted=$(tail -n +2 "$TMP/all.csv" | awk -F, 'NR > 1 && $3 > prev { print "unsorted" } { prev = $3 } $1 >= $2 { print "order" }')
check "candidates sorted by score, label_a < label_b" test -z "$sorted"
check "names from d.txt.classes.tsv, counts of the labels" \
    bash -c "tail -n +2 '$TMP/all.csv' | awk -F, '\$4 !~ /^id000[01][0-9](#2)?\$/ || \$6 < 1' | wc -l | grep -qx 0"
# a threshold that keeps exactly the true pairs' best: merge the top pair
top=$(sed -n 2p "$TMP/all.csv"); ta=$(echo "$top" | cut -d, -f1); tb=$(echo "$top" | cut -d, -f2)
second=$(sed -n 3p "$TMP/all.csv" | cut -d, -f3)
# halfway between the two best scores (the CSV's 6 decimals are rounded: the second best's own
# printed score can lie just below its value)
half=$(awk -F, 'NR == 2 { a = $3 } NR == 3 { printf "%.8f", (a + $3) / 2 }' "$TMP/all.csv")
"$BIN" dedup --run "$TMP/run" --score means --out "$TMP/one.csv" --threshold "$half" --mutual=0 --merge "$TMP/merged.txt" >"$TMP/s_merge.txt" || bad "dedup --merge"
if [ "$(sed -n 2p "$TMP/all.csv" | cut -d, -f3)" != "$second" ]; then
    check "--threshold: the one pair above it" test "$(tail -n +2 "$TMP/one.csv" | wc -l)" = 1
    nl=$(cut -f2 "$TMP/merged.txt" | sort -n | uniq | wc -l)
    check "--merge: 19 labels without gaps, pair $ta,$tb under one label" bash -c \
        "[ $nl = 19 ] && [ \$(cut -f2 '$TMP/merged.txt' | sort -n | tail -n 1) = 18 ] && \
         [ \$(paste '$TMP/d.txt' '$TMP/merged.txt' | awk -F'\t' '\$2 == $ta || \$2 == $tb { print \$5 }' | sort -u | wc -l) = 1 ]"
    check "--merge keeps every path and flag" test "$(cut -f1,3 "$TMP/merged.txt" | md5sum)" = "$(cut -f1,3 "$TMP/d.txt" | md5sum)"
fi
"$BIN" dedup --model "$TMP/run/peer_a.model" --model "$TMP/run/peer_b.model" --data "$TMP/d.txt" --out "$TMP/m.csv" >"$TMP/s_m.txt" || bad "dedup --model --data"
check "--model A --model B --data: two models, ratio scores of all 96 samples, 128 floats" \
    bash -c "grep -q 'ratio scores of all 96 samples; .* (2 models' '$TMP/s_m.txt' && grep -q '(128 floats)' '$TMP/s_m.txt'"

# a run that has written no peer models yet: the networks of its checkpoint, the same means
mkdir -p "$TMP/running"; cp "$TMP/run/args.txt" "$TMP/run/noise.csv" "$TMP/run/checkpoint.bin" "$TMP/running/"
"$BIN" dedup --run "$TMP/running" --out "$TMP/ck.csv" --all >"$TMP/s_ck.txt" 2>&1 || bad "dedup --run without peer models: $(cat "$TMP/s_ck.txt")"
"$BIN" dedup --run "$TMP/run" --out "$TMP/pm.csv" --all >/dev/null 2>&1 || bad "dedup --run (means, for the comparison)"
check "--run without peer models: the 2 peers of checkpoint.bin" grep -q "models: the 2 peers held in" "$TMP/s_ck.txt"
check "--run without peer models: the same pairs and scores as with the finished run's models" cmp -s "$TMP/ck.csv" "$TMP/pm.csv"
mkdir -p "$TMP/nothing"; cp "$TMP/run/args.txt" "$TMP/run/noise.csv" "$TMP/nothing/"
expect_fail "a run with neither peer models nor checkpoint (means)" "neither peer_a.model nor checkpoint.bin" dedup --run "$TMP/nothing" --out "$TMP/x.csv"

# ---- errors ----
mkdir -p "$TMP/nohead"; cp "$TMP/run/args.txt" "$TMP/run/noise.csv" "$TMP/run/peer_a.model" "$TMP/nohead/"
expect_fail "a run without checkpoint.bin (centres)" "no checkpoint.bin, so no class centres" dedup --run "$TMP/nohead" --score centres --out "$TMP/x.csv"
cp -r "$TMP/run" "$TMP/broken"
printf 'X' | dd of="$TMP/broken/checkpoint.bin" bs=1 seek=200 conv=notrunc 2>/dev/null
expect_fail "a corrupted checkpoint" "checksum mismatch" dedup --run "$TMP/broken" --score centres --out "$TMP/x.csv"
"$BIN" train --data "$TMP/d.txt" --out "$TMP/other" --net iresnet18 --width 0.125 --input 32 --emb-dim 32 --batch 16 \
    --epochs 1 --tk 1 --threads 1 --quiet >/dev/null || bad "training the other-size model"
cp -r "$TMP/run" "$TMP/mixed"; cp "$TMP/other/peer_a.model" "$TMP/other/peer_b.model" "$TMP/mixed/"
expect_fail "a run whose model is of another size than its heads" "is not the network of" dedup --run "$TMP/mixed" --score both --out "$TMP/x.csv"
expect_fail "two models of different sizes" "different sizes" dedup --model "$TMP/run/peer_a.model" --model "$TMP/other/peer_a.model" --data "$TMP/d.txt" --out "$TMP/x.csv"
: > "$TMP/empty.txt"
expect_fail "an empty data set" "empty\|no images\|no samples" dedup --model "$TMP/run/peer_a.model" --data "$TMP/empty.txt" --out "$TMP/x.csv"
head -n 3 "$TMP/d.txt" | awk -F'\t' '{ print $1 "\t0" }' > "$TMP/one_id.txt"
expect_fail "one identity" "at least 2" dedup --model "$TMP/run/peer_a.model" --data "$TMP/one_id.txt" --out "$TMP/x.csv"
expect_fail "neither --run nor --model" "option --run or --model" dedup --out "$TMP/x.csv"
expect_fail "--model without --data" "option --data" dedup --model "$TMP/run/peer_a.model" --out "$TMP/x.csv"
expect_fail "--score centres without a run" "needs the class centres" dedup --model "$TMP/run/peer_a.model" --data "$TMP/d.txt" --score centres --out "$TMP/x.csv"
expect_fail "a run of another data set" "not the run's data set\|labels" dedup --run "$TMP/run" --data "$TMP/syn" --out "$TMP/x.csv"

if [ "$fails" -gt 0 ]; then echo "test_dedup_cli: $fails failures"; exit 1; fi
echo "test_dedup_cli: all passed"
