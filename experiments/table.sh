# table.sh: the table stage of run.sh (results/table.md, summary.tsv, margin.md, paired.md,
# plots), sourced by run.sh, whose variables and functions it uses (work, root, bin, log).
stage_table() {
  local res=$work/results
  cat "$work"/runs/*/result.tsv 2>/dev/null | sort > "$res/all.tsv" || true
  if [ ! -s "$res/all.tsv" ]; then echo "run.sh: no finished runs yet" >&2; return 0; fi
  { printf 'name\tnoise\tmode\tseed\tacc_a\tstd_a\tacc_ab\tstd_ab\tprecision\trecall\tf1\ttrain_s\n'
    cat "$res/all.tsv"; } > "$res/runs.tsv"
  # add(key, col, v) collects a figure ('-' where it does not apply); ms(key, col) gives its
  # mean and standard deviation over the seeds, "m<TAB>s" ("-<TAB>-" without figures)
  local stats='
    function add(key, col, v) { if (v != "-") { S[key, col] += v; Q[key, col] += v * v; N[key, col]++ } }
    function ms(key, col,   m, v) {
      if (!N[key, col]) return "-\t-"
      m = S[key, col] / N[key, col]; v = Q[key, col] / N[key, col] - m * m
      return sprintf("%.4f\t%.4f", m, N[key, col] > 1 ? sqrt(v > 0 ? v * N[key, col] / (N[key, col] - 1) : 0) : 0)
    }'
  # mean and standard deviation (over seeds) per (noise, mode)
  awk -F'\t' "$stats"'
    $1 ~ /^n[0-9]+_/ {
      key = $2 SUBSEP $3
      if (!(key in seen)) { seen[key] = 1; order[++k] = key }
      runs[key]++; secs[key] += $12
      add(key, "a", $5); add(key, "ab", $7); add(key, "p", $9); add(key, "r", $10); add(key, "f", $11)
    }
    END {
      print "noise\tmode\tseeds\tacc_a\tacc_a_std\tacc_ab\tacc_ab_std\tprecision\tprecision_std\trecall\trecall_std\tf1\tf1_std\ttrain_min"
      for (i = 1; i <= k; i++) {
        split(order[i], p, SUBSEP)
        printf "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%.1f\n", p[1], p[2], runs[order[i]], ms(order[i], "a"), ms(order[i], "ab"),
               ms(order[i], "p"), ms(order[i], "r"), ms(order[i], "f"), secs[order[i]] / 60
      }
    }' "$res/all.tsv" | sort -t$'\t' -k1,1n -k2,2 > "$res/summary.tsv.body"
  { grep '^noise' "$res/summary.tsv.body" || true; grep -v '^noise' "$res/summary.tsv.body" || true; } > "$res/summary.tsv"
  rm -f "$res/summary.tsv.body"
  awk -F'\t' 'NR == 1 {
      print "| noise | mode | seeds | DevTest peer A | DevTest A+B | detection P | R | F1 | train min (sum) |"
      print "|---|---|---|---|---|---|---|---|---|"; next }
    function pm(m, s) { return m == "-" ? "-" : $3 > 1 ? sprintf("%.1f +- %.1f", 100 * m, 100 * s) : sprintf("%.1f", 100 * m) }
    function pr(m, s) { return m == "-" ? "-" : $3 > 1 ? sprintf("%.3f +- %.3f", m, s) : sprintf("%.3f", m) }
    { printf "| %s%% | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, pm($4, $5), pm($6, $7), pr($8, $9),
             pr($10, $11), pr($12, $13), $14 }' "$res/summary.tsv" > "$res/table.md"
  # the validation study, one line per run
  { echo "| validation run | val peer A | val A+B | detection P | R | F1 |"; echo "|---|---|---|---|---|---|"
    awk -F'\t' '$1 ~ /^val_/ { printf "| %s | %.1f | %s | %s | %s | %s |\n", substr($1, 5), 100 * $5,
                 $7 == "-" ? "-" : sprintf("%.1f", 100 * $7), $9, $10, $11 }' "$res/all.tsv"; } > "$res/validation.md"
  # the margin study beside the same modes at m 0.5, mean and std over seeds
  awk -F'\t' "$stats"'
    function pm(key, col, scale, fmt,   f) {
      split(ms(key, col), f, "\t")
      if (f[1] == "-") return "-"
      return N[key, col] == 1 ? sprintf(fmt, scale * f[1]) : sprintf(fmt " +- " fmt, scale * f[1], scale * f[2])
    }
    $1 ~ /^(m02_)?n(20|40)_(arcface|comining|coteach)_s/ {
      key = $2 SUBSEP $3 SUBSEP ($1 ~ /^m02_/ ? "0.2" : "0.5")
      if (!(key in runs)) order[++k] = key
      runs[key]++; add(key, "a", $5); add(key, "ab", $7); add(key, "f", $11)
    }
    END {
      print "| noise | mode | m | seeds | DevTest peer A | DevTest A+B | detection F1 |"
      print "|---|---|---|---|---|---|---|"
      for (i = 1; i <= k; i++) {
        split(order[i], p, SUBSEP)
        printf "| %s%% | %s | %s | %d | %s | %s | %s |\n", p[1], p[2], p[3], runs[order[i]],
               pm(order[i], "a", 100, "%.1f"), pm(order[i], "ab", 100, "%.1f"), pm(order[i], "f", 1, "%.3f")
      }
    }' "$res/all.tsv" | { IFS= read -r h1; IFS= read -r h2; printf '%s\n%s\n' "$h1" "$h2"; sort -t'|' -k2,2n -k3,3 -k4,4r; } > "$res/margin.md"
  # comining - coteach per seed: mean, 95% interval, sign test (experiments/paired.awk)
  awk -F'\t' -v a=comining -v b=coteach -f "$root/experiments/paired.awk" "$res/all.tsv" > "$res/paired.md"
  # plots: accuracy vs noise per mode (peer A, and A+B for the two-peer modes); histograms
  if "$bin" plot --help >/dev/null 2>&1; then
    "$bin" plot --table "$res/summary.tsv" --x noise --y acc_a --err acc_a_std --group mode \
      --title "LFW DevTest: one network (peer A)" --xlabel "noise rate (%)" --ylabel "verification accuracy" \
      --out "$res/accuracy_vs_noise.png" || true
    awk -F'\t' 'NR == 1 || $6 != "-"' "$res/summary.tsv" > "$res/summary_ab.tsv"
    "$bin" plot --table "$res/summary_ab.tsv" --x noise --y acc_ab --err acc_ab_std --group mode \
      --title "LFW DevTest: two peers (A+B)" --xlabel "noise rate (%)" --ylabel "verification accuracy" \
      --out "$res/accuracy_vs_noise_ab.png" || true
  fi
  # detection F1 of the noisy set N per epoch, seed 1, one line per mode, per noise rate
  local r m n
  for n in 20 40; do
    { printf 'mode\tepoch\tf1\tprecision\trecall\n'
      for m in self nld coteach comining; do
        r=$work/runs/n${n}_${m}_s1/metrics.jsonl
        [ -s "$work/runs/n${n}_${m}_s1/result.tsv" ] || continue
        sed -n 's/.*"epoch": *\([0-9]*\).*"det_precision": *\([0-9.e-]*\), *"det_recall": *\([0-9.e-]*\), *"det_f1": *\([0-9.e-]*\).*/\1\t\4\t\2\t\3/p' "$r" |
          awk -v m="$m" '{ print m "\t" $0 }'
      done; } > "$res/detection_n${n}_s1.tsv"
    if [ "$(wc -l < "$res/detection_n${n}_s1.tsv")" -gt 1 ] && "$bin" plot --help >/dev/null 2>&1; then
      "$bin" plot --table "$res/detection_n${n}_s1.tsv" --x epoch --y f1 --group mode --ymin 0 --ymax 1 \
        --title "$n% noise, seed 1: F1 of the dropped set N per epoch" --xlabel "epoch" --ylabel "F1 against the truth" \
        --out "$res/detection_f1_n${n}_s1.png" || true
    fi
  done
  # the two-peer modes over the epochs (mean over the finished seeds): set sizes per batch of
  # 64 (C, XA, N), detection of N against the truth, peer A's training accuracy on the noisy
  # labels and mean cos(theta_y); sets.md shows a few epochs of comining and coteach
  for r in "$work"/runs/n*_*_s*; do
    [ -s "$r/result.tsv" ] || continue
    case "$r" in *_comining_s* | *_coteach_s* | *_nld_s* | *_self_s*) ;; *) continue ;; esac
    n=${r##*/}; n=${n#n}; m=${n#*_}; m=${m%_s*}; n=${n%%_*}
    awk -v n="$n" -v m="$m" '
      function get(key,   v) {
        if (!match($0, "\"" key "\": *[-0-9.e+]+")) return ""
        v = substr($0, RSTART, RLENGTH); sub(/^[^:]*: */, "", v); return v
      }
      { printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n, m, get("epoch"), get("n_clean"),
               get("n_exchanged_a"), get("n_noisy"), get("det_precision"), get("det_recall"), get("det_f1"),
               get("train_acc_a"), get("cos_target_a") }' "$r/metrics.jsonl"
  done | awk -F'\t' '
    { k = $1 SUBSEP $2 SUBSEP $3; if (!(k in c)) order[++K] = k; c[k]++; for (i = 4; i <= 11; i++) s[k, i] += $i }
    END {
      print "noise\tmode\tepoch\tseeds\tn_clean\tn_exchanged_a\tn_noisy\tdet_precision\tdet_recall\tdet_f1\ttrain_acc_a\tcos_target_a"
      for (j = 1; j <= K; j++) {
        split(order[j], p, SUBSEP); printf "%s\t%s\t%s\t%d", p[1], p[2], p[3], c[order[j]]
        for (i = 4; i <= 11; i++) printf "\t%.4f", s[order[j], i] / c[order[j]]
        printf "\n"
      }
    }' > "$res/sets_over_time.tsv"
  { echo "| noise | mode | epoch | seeds | C | XA | N | N precision | N recall | peer A train acc | peer A cos(theta_y) |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    awk -F'\t' 'NR > 1 && ($2 == "comining" || $2 == "coteach") && ($3 == 2 || $3 == 5 || $3 == 11 || $3 == 17 || $3 == 23) {
        printf "%s\t%s\t%02d\t| %s%% | %s | %s | %s | %.1f | %.1f | %.1f | %.3f | %.3f | %.3f | %.3f |\n", $1, $2, $3,
               $1, $2, $3, $4, $5, $6, $7, $8, $9, $11, $12 }' "$res/sets_over_time.tsv" |
      sort -t$'\t' -k1,1n -k3,3 -k2,2 | cut -f4-; } > "$res/sets.md"
  for r in n40_arcface_s1 n40_coteach_s1 n40_comining_s1; do
    [ -s "$work/runs/$r/result.tsv" ] || continue
    "$bin" report --run "$work/runs/$r" --out "$work/runs/$r/report" >/dev/null || continue
    local last; last=$(ls "$work/runs/$r"/report/cos_epoch*_a.png 2>/dev/null | sort -V | tail -1)
    [ -n "$last" ] && cp "$last" "$res/cos_hist_${r}.png"
  done
  log "table: $res/table.md ($(($(wc -l < "$res/table.md") - 2)) rows), $res/validation.md, $res/margin.md, $res/paired.md"
  cat "$res/table.md"
}
