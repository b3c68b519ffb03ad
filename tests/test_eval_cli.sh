#!/bin/bash
# test_eval_cli.sh: `comine clean` and `comine report` on a synthetic run folder
# (metrics.jsonl, noise.csv, cos_epoch<E>.csv made here): the suspects' ranking, the cleaned
# list, precision / recall / F1 / average precision against hand-computed values, the
# report's PNGs and index.html, its ROC panel (roc.png and TAR at FAR read off hand-made ROC
# tables), and clear errors for a bad run folder or ROC table.  Built without PLplot,
# the PNG checks are skipped and the test exits 77 (CTest: skipped) when the others pass.
# usage: bash test_eval_cli.sh <comine binary> <source dir>
set -u
BIN=$1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_eval_cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail=0
skipped=0
# PLplot's driver loading (libltdl) and fontconfig keep allocations to the end of the process:
# not comine's leaks, so LeakSanitizer builds are told to ignore those libraries.
printf 'leak:libfontconfig\nleak:libltdl\nleak:libcairo\nleak:libpango\nleak:libglib\n' > "$TMP/lsan.supp"
export LSAN_OPTIONS="suppressions=$TMP/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}

RUN=$TMP/run
mkdir -p "$RUN"
# noise.csv: scores 0 1 .75 .5 .25 0 .5 .25 0 1 ; truth 0 1 2 0 1 0 2 0 0 0
cat > "$RUN/noise.csv" <<'CSV'
index,path,label,votes,rounds,score,flagged,truth
0,a/0.jpg,0,0,4,0,0,0
1,a/1.jpg,0,4,4,1,1,1
2,b/2.jpg,1,3,4,0.75,1,2
3,b/3.jpg,1,2,4,0.5,1,0
4,c/4.jpg,2,1,4,0.25,0,1
5,"c/5,x.jpg",2,0,4,0,0,0
6,d/6.jpg,3,2,4,0.5,1,2
7,d/7.jpg,3,1,4,0.25,0,0
8,e/8.jpg,4,0,4,0,0,0
9,e/9.jpg,4,4,4,1,1,0
CSV
{
for e in 0 1 2 3 4 5 6 7; do
    awk -v e=$e 'BEGIN {
        dr = 0.4 * (e / 5 < 1 ? e / 5 : 1);
        printf "{\"epoch\": %d, \"lr\": %.4f, \"drop_rate\": %.3f, \"loss_a\": %.4f, \"loss_b\": %.4f, ", e, 0.1 * (1 + cos(3.14159 * e / 8)) / 2, dr, 20 - 2 * e, 20.5 - 2.1 * e
        printf "\"n_clean\": %d, \"n_exchanged_a\": %d, \"n_exchanged_b\": %d, \"n_noisy\": %d, ", 3000 - 200 * e, 100 + 10 * e, 90 + 12 * e, 200 * e
        printf "\"train_acc_a\": %.3f, \"train_acc_b\": %.3f, \"images_per_s\": 250, \"seconds\": 13.5", 0.1 * e, 0.09 * e
        if (e >= 5) printf ", \"det_precision\": %.3f, \"det_recall\": %.3f, \"det_f1\": %.3f", 0.7 + 0.01 * e, 0.6 + 0.02 * e, 0.65 + 0.015 * e
        else printf ", \"det_precision\": null, \"det_recall\": null, \"det_f1\": null"
        printf ", \"val_acc_a\": %.3f, \"val_acc_b\": %.3f, \"val_acc_ensemble\": %.3f}\n", 0.6 + 0.02 * e, 0.61 + 0.02 * e, 0.63 + 0.02 * e
    }'
done
} > "$RUN/metrics.jsonl"
for e in 4 7; do
    awk -v e=$e 'BEGIN {
        srand(e); print "index,label,truth,cos_a,cos_b"
        for (i = 0; i < 2000; i++) {
            t = (i % 10 < 6) ? 0 : (i % 10 < 8 ? 1 : 2)
            m = (t == 0) ? 0.3 + 0.05 * e : -0.05 + 0.03 * e
            a = m + 0.15 * (rand() + rand() + rand() - 1.5); b = m + 0.15 * (rand() + rand() + rand() - 1.5)
            printf "%d,%d,%d,%.5f,%.5f\n", i, i % 50, t, a, b
        }
    }' > "$RUN/cos_epoch$e.csv"
done

# ---- clean ----
out=$("$BIN" clean --run "$RUN" --out "$TMP/clean.txt" --top 3 2>&1)
rc=$?
echo "$out"
check "clean exits 0" test $rc -eq 0
check "clean P/R/F1/AP = 0.6/0.75/0.6667/0.5845 (hand)" \
    grep -q "precision 0.6000 recall 0.7500 F1 0.6667 average precision 0.5845 (TP 3 FP 2 FN 1)" <<< "$out"
check "clean keeps 5 of 10" grep -q "10 samples, 5 suspects (score >= 0.5), 5 kept" <<< "$out"
check "cleaned list = samples 0 4 5 7 8 with truth" \
    diff <(printf 'a/0.jpg\t0\t0\nc/4.jpg\t2\t1\nc/5,x.jpg\t2\t0\nd/7.jpg\t3\t0\ne/8.jpg\t4\t0\n') "$TMP/clean.txt"
check "suspects ranked by score, ties by index" \
    test "$(cut -d, -f2 "$RUN/suspects.csv" | tail -n +2 | tr '\n' ' ')" = "1 9 2 3 6 "
out=$("$BIN" clean --run "$RUN" --out "$TMP/clean2.txt" --vote-threshold 0.75 --suspects "$TMP/s2.csv" 2>&1)
check "clean at 0.75: P 0.6667 R 0.5000" grep -q "precision 0.6667 recall 0.5000 F1 0.5714" <<< "$out"
check "--suspects writes there" test -s "$TMP/s2.csv"
out=$("$BIN" clean --run "$RUN" --out "$TMP/clean3.txt" --threshold 0.75 --suspects "$TMP/s3.csv" 2>&1)
check "clean --threshold (old name) = --vote-threshold, with a warning" bash -c \
    "grep -q 'precision 0.6667 recall 0.5000' <<< \"\$0\" && grep -q 'warning: --threshold is now --vote-threshold' <<< \"\$0\"" "$out"
printf -- '--data\nx\n--vote-threshold\n0.75\n' > "$RUN/args.txt"
out=$("$BIN" clean --run "$RUN" --out "$TMP/clean4.txt" --suspects "$TMP/s4.csv" 2>&1)
check "clean takes the run's --vote-threshold from args.txt (0.75)" grep -q "5 suspects (score >= 0.75)\|suspects (score >= 0.75)" <<< "$out"
printf -- '--vote-threshold\nzz\n' > "$RUN/args.txt"
out=$("$BIN" clean --run "$RUN" --out "$TMP/clean4.txt" --suspects "$TMP/s4.csv" 2>&1)
check "a bad --vote-threshold in args.txt is refused naming the file" grep -q "args.txt: --vote-threshold 'zz'" <<< "$out"
rm -f "$RUN/args.txt"
js=$("$BIN" clean --run "$RUN" --out "$TMP/clean5.txt" --suspects "$TMP/s5.csv" --top 2 --json 2> "$TMP/clean5.err")
echo "     clean --json: $js"
if command -v python3 > /dev/null; then
    res=$(python3 -c '
import json, sys
j = json.loads(sys.argv[1])
d = j["detection"]
print(j["samples"], j["suspects"], j["kept"], j["vote_threshold"], len(j["top"]), j["top"][0]["index"],
      "%.4f %.4f %.4f" % (d["precision"], d["recall"], d["average_precision"]), d["tp"], d["fp"], d["fn"])' "$js" 2>&1)
    check "clean --json: 10 samples, 5 suspects, the top 2, P/R/AP 0.6/0.75/0.5845 (got: $res)" \
        test "$res" = "10 5 5 0.5 2 1 0.6000 0.7500 0.5845 3 2 1"
else
    check "clean --json: one object with the detection" grep -q '"detection": {"samples_with_truth": 10' <<< "$js"
fi
mkdir -p "$TMP/bad"
printf 'index,path,label,votes,rounds,score,flagged,truth\n0,a.jpg,0,1,4,0.25,0,0\n1,b.jpg,x,1,4,0.25,0,0\n' > "$TMP/bad/noise.csv"
out=$("$BIN" clean --run "$TMP/bad" --out "$TMP/c3.txt" 2>&1)
rc=$?
check "bad noise.csv: non-zero status, file and line named" \
    bash -c "test $rc -ne 0 && grep -q 'bad/noise.csv:3: bad value for column .label.' <<< \"\$0\"" "$out"
out=$("$BIN" clean --run "$TMP/none" --out "$TMP/c4.txt" 2>&1)
check "missing run folder: clear error" bash -c "test $? -ne 0 && grep -q 'none/noise.csv' <<< \"\$0\"" "$out"

# ---- report ----
out=$("$BIN" report --run "$RUN" --out "$TMP/rep" 2>&1)
rc=$?
echo "$out"
check "report exits 0" test $rc -eq 0
check "index.html written with the metrics table" grep -q "val_acc_ensemble" "$TMP/rep/index.html"
check "index.html has the detection table" grep -q "average precision" "$TMP/rep/index.html"
if grep -q "plots are unavailable" <<< "$out"; then
    echo "skipped: PNG checks (built without PLplot)"
    skipped=$((skipped + 1))
else
    for f in loss train_acc drop_rate set_sizes detection val_acc cos_epoch4_a cos_epoch4_b cos_epoch7_a cos_epoch7_b; do
        check "$f.png is a PNG" bash -c "head -c 8 '$TMP/rep/$f.png' | od -An -tx1 | grep -q '89 50 4e 47'"
        check "$f.png in index.html" grep -q "src=\"$f.png\"" "$TMP/rep/index.html"
    done
fi
# ROC panel: RUN/roc*.tsv and --roc files (comine eval --roc's format)
printf 'threshold\tfar\ttar\n0.9\t0\t0\n0.8\t0.000001\t0.5\n0.7\t0.0001\t0.8\n0.6\t0.01\t0.9\n0.5\t0.5\t0.95\n-1\t1\t1\n' > "$RUN/roc_val.tsv"
printf 'threshold\tfar\ttar\n0.9\t0\t0\n0.5\t0.001\t0.7\n0.1\t1\t1\n' > "$TMP/other.tsv"
out=$("$BIN" report --run "$RUN" --out "$TMP/rep_roc" --roc "$TMP/other.tsv" 2>&1)
check "report with ROC tables exits 0" test $? -eq 0
check "ROC table of roc_val.tsv: TAR at FAR <= 1e-6 .. 1e-1 = 0.5 0.5 0.8 0.8 0.9 0.9 (hand)" \
    grep -q "<tr><td>roc_val.tsv</td><td>6</td><td>0.5</td><td>0.5</td><td>0.8</td><td>0.8</td><td>0.9</td><td>0.9</td></tr>" "$TMP/rep_roc/index.html"
check "ROC table of the --roc file: 0 0 0 0.7 0.7 0.7 (hand)" \
    grep -q "<tr><td>other.tsv</td><td>3</td><td>0</td><td>0</td><td>0</td><td>0.7</td><td>0.7</td><td>0.7</td></tr>" "$TMP/rep_roc/index.html"
if ! grep -q "plots are unavailable" <<< "$out"; then
    check "roc.png is a PNG in index.html" bash -c "head -c 8 '$TMP/rep_roc/roc.png' | od -An -tx1 | grep -q '89 50 4e 47' && grep -q 'src=\"roc.png\"' '$TMP/rep_roc/index.html'"
fi
printf 'threshold\tfar\ttar\n0.9\t0\t0\n0.5\tx\t0.7\n' > "$TMP/badroc.tsv"
out=$("$BIN" report --run "$RUN" --out "$TMP/rep_roc2" --roc "$TMP/badroc.tsv" 2>&1)
check "a bad ROC table: non-zero status, file:line named" bash -c "test $? -ne 0 && grep -q 'badroc.tsv:3:' <<< \"\$0\"" "$out"
rm -f "$RUN/roc_val.tsv"
# single-peer run: no _b columns
RUN1=$TMP/run1
mkdir -p "$RUN1"
printf '{"epoch": 0, "loss_a": 3.0, "loss_b": null, "train_acc_a": 0.1}\n{"epoch": 1, "loss_a": 2.0, "train_acc_a": 0.3}\n' > "$RUN1/metrics.jsonl"
printf 'index,label,truth,cos_a,cos_b\n0,0,,0.5,\n1,1,,0.2,\n' > "$RUN1/cos_epoch1.csv"
out=$("$BIN" report --run "$RUN1" --out "$TMP/rep1" 2>&1)
check "single-peer report" bash -c "test $? -eq 0 && test -s '$TMP/rep1/index.html' && ! test -e '$TMP/rep1/cos_epoch1_b.png'"
printf '{"epoch": 0, "loss_a": }\n' > "$RUN1/metrics.jsonl"
out=$("$BIN" report --run "$RUN1" --out "$TMP/rep2" 2>&1)
check "bad metrics.jsonl: file and line named" bash -c "test $? -ne 0 && grep -q 'metrics.jsonl:1:' <<< \"\$0\"" "$out"
if [ -n "${COMINE_KEEP_REPORT:-}" ]; then rm -rf "$COMINE_KEEP_REPORT"; cp -r "$TMP/rep" "$COMINE_KEEP_REPORT"; fi

if [ $fail -ne 0 ]; then echo "test_eval_cli: $fail check(s) FAILED"; exit 1; fi
if [ $skipped -ne 0 ]; then echo "test_eval_cli: the checks that ran passed; $skipped skipped (see above)"; exit 77; fi
echo "test_eval_cli: all checks passed"
