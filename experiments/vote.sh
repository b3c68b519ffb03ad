#!/usr/bin/env bash
# vote.sh: the vote threshold of the noise report, from finished runs (run.sh's vote stage).
#
#   experiments/vote.sh COMINE_BINARY WORK
#
# A sample is flagged when it sat in N in at least a share T of the epochs after the warm-up
# (`comine clean --vote-threshold T`; the default is 0.5). For T in 0.2 .. 0.7, the detection
# of every run: the validation runs (val_n20/n40_comining_m02: training people only) choose T,
# the largest mean F1 over the two noise rates; the paired stage's comining runs on the
# pairsDevTest training set (m02_nNOISE_comining_sSEED) then show T against 0.5, per seed.
# Prints markdown.
set -euo pipefail
bin=$1 work=$2
thresholds="0.2 0.3 0.4 0.5 0.6 0.7"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# one line per run and threshold: run noise seed T precision recall f1
for dir in "$work"/runs/val_n*_comining_m02 "$work"/runs/m02_n*_comining_s*; do
  [ -s "$dir/result.tsv" ] || continue
  name=${dir##*/}
  noise=$(cut -f2 "$dir/result.tsv") seed=$(cut -f4 "$dir/result.tsv")
  for t in $thresholds; do
    "$bin" clean --run "$dir" --rank votes --vote-threshold "$t" --out "$tmp/cleaned.txt" --top 0 --json |
      sed -n 's/.*"detection": *{[^}]*"precision": *\([0-9.e-]*\), *"recall": *\([0-9.e-]*\), *"f1": *\([0-9.e-]*\).*/\1 \2 \3/p' |
      awk -v r="$name" -v n="$noise" -v s="$seed" -v t="$t" 'NF == 3 { print r, n, s, t, $1, $2, $3 }'
  done
done > "$tmp/all.txt"
[ -s "$tmp/all.txt" ] || { echo "vote.sh: no finished run with ground truth under $work/runs" >&2; exit 1; }

awk -v ts="$thresholds" '
  BEGIN { nt = split(ts, T, " ") }
  { key = $1 SUBSEP $4; p[key] = $5; r[key] = $6; f[key] = $7; noise[$1] = $2; seed[$1] = $3
    if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
  END {
    printf "Detection precision / recall / F1 by vote threshold T (flagged: in N in >= T of the epochs after the warm-up)\n\n"
    printf "| run |"; for (i = 1; i <= nt; i++) printf " T %s |", T[i]; printf "\n|---|"
    for (i = 1; i <= nt; i++) printf "---|"; printf "\n"
    for (j = 1; j <= n; j++) {
      printf "| %s |", order[j]
      for (i = 1; i <= nt; i++) { k = order[j] SUBSEP T[i]; printf " %.3f / %.3f / %.3f |", p[k], r[k], f[k] }
      printf "\n"
    }
    # the choice: validation runs only
    best = ""; bestf = -1
    for (i = 1; i <= nt; i++) {
      s = 0; c = 0
      for (j = 1; j <= n; j++) if (order[j] ~ /^val_/) { s += f[order[j] SUBSEP T[i]]; c++ }
      if (c > 0) vf[i] = s / c
      if (c > 0 && T[i] == "0.5") { bestf = vf[i]; best = T[i] }
    }
    for (i = 1; i <= nt; i++) if (best != "" && vf[i] > bestf + 1e-9) { bestf = vf[i]; best = T[i] }
    if (best == "") { printf "\nno validation run: no choice\n"; exit }
    printf "\nValidation (mean F1 of the validation runs):"
    for (i = 1; i <= nt; i++) printf " T %s %.3f;", T[i], vf[i]
    printf " chosen T = %s\n\n", best
    # the check on the paired stage runs: T chosen against 0.5, per noise rate
    for (nz = 20; nz <= 40; nz += 20) {
      m = 0; d = 0; d2 = 0; w = 0; fb = 0; fd = 0; lo = 1; hi = -1
      for (j = 1; j <= n; j++) {
        if (order[j] !~ /^m02_/ || noise[order[j]] != nz) continue
        a = f[order[j] SUBSEP best]; b = f[order[j] SUBSEP "0.5"]
        m++; fb += a; fd += b; d += a - b; d2 += (a - b) * (a - b); if (a > b) w++
        if (a - b < lo) lo = a - b; if (a - b > hi) hi = a - b
      }
      if (m == 0) continue
      mean = d / m; sd = m > 1 ? sqrt((d2 - m * mean * mean) / (m - 1)) : 0
      printf "%d%% noise, %d seeds: F1 %.3f at T %s against %.3f at 0.5; difference %+.3f (sd %.3f, %+.3f..%+.3f), higher on %d of %d\n",
             nz, m, fb / m, best, fd / m, mean, sd, lo, hi, w, m
    }
  }' "$tmp/all.txt"
