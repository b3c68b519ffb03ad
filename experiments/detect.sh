#!/usr/bin/env bash
# detect.sh: the noise report's two rankings on finished runs (run.sh's folders).
#
#   experiments/detect.sh COMINE_BINARY WORK [WORK ...]
#
# For every two-peer run with ground truth under WORK/runs (comining and coteach, result.tsv
# written), `comine clean --rank votes` (flagged: votes/rounds >= 0.5, what run.sh's tables
# give) and `comine clean --rank embed` (the share tau of lowest cosine between a sample's
# embedding by both peers and the mean of its label's samples the votes kept).  Prints
# markdown: one row per run, then per (WORK, run name without its seed) the mean F1 of both and the paired
# difference embed - votes with its 95% interval (Student t) and the wins.  The validation
# runs (val_*: training people only) are listed apart.
set -euo pipefail
bin=$1; shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

figures() { # RUN RANK -> "precision recall f1"
  "$bin" clean --run "$1" --rank "$2" --out "$tmp/cleaned.txt" --suspects "$tmp/suspects.csv" --top 0 --json \
      --quiet --threads 2 |
    sed -n 's/.*"detection": *{[^}]*"precision": *\([0-9.e-]*\), *"recall": *\([0-9.e-]*\), *"f1": *\([0-9.e-]*\).*/\1 \2 \3/p'
}

for work in "$@"; do
  for dir in "$work"/runs/*; do
    [ -s "$dir/result.tsv" ] && [ -s "$dir/peer_b.model" ] && [ -s "$dir/noise.csv" ] || continue
    mode=$(cut -f3 "$dir/result.tsv") noise=$(cut -f2 "$dir/result.tsv")
    case $mode in comining|coteach) ;; *) continue ;; esac
    [ "$noise" != 0 ] || continue
    v=$(figures "$dir" votes) e=$(figures "$dir" embed)
    [ -n "$v" ] && [ -n "$e" ] || { echo "detect.sh: no detection figures for $dir" >&2; continue; }
    echo "${work##*/} ${dir##*/} $noise $mode $v $e"
  done
done > "$tmp/all.txt"
[ -s "$tmp/all.txt" ] || { echo "detect.sh: no finished two-peer run with ground truth" >&2; exit 1; }

awk '
  BEGIN { split("12.706 4.303 3.182 2.776 2.571 2.447 2.365 2.306 2.262 2.228", T, " ") }
  { n++; line[n] = $0 }
  END {
    print "| set | run | votes P / R / F1 | embed P / R / F1 |"
    print "|---|---|---|---|"
    for (i = 1; i <= n; i++) {
      split(line[i], f, " ")
      printf "| %s | %s | %.3f / %.3f / %.3f | %.3f / %.3f / %.3f |\n", f[1], f[2], f[5], f[6], f[7], f[8], f[9], f[10]
      if (f[2] ~ /^val_/) continue
      g = f[2]; sub(/_s[0-9]+$/, "", g)
      k = f[1] SUBSEP g
      if (!(k in c)) order[++m] = k
      c[k]++; sv[k] += f[7]; se[k] += f[10]; d = f[10] - f[7]; sd[k] += d; sd2[k] += d * d; w[k] += d > 0
    }
    print ""
    print "| set | runs | seeds | F1 votes | F1 embed | embed - votes [95% interval] | embed higher |"
    print "|---|---|---|---|---|---|---|"
    for (j = 1; j <= m; j++) {
      k = order[j]; split(k, p, SUBSEP); r = c[k]; mean = sd[k] / r
      s = r > 1 ? sqrt((sd2[k] - r * mean * mean) / (r - 1)) : 0
      h = r > 1 && r <= 11 ? T[r - 1] * s / sqrt(r) : 0
      printf "| %s | %s | %d | %.3f | %.3f | %+.3f [%+.3f, %+.3f] | %d of %d |\n", p[1], p[2], r,
             sv[k] / r, se[k] / r, mean, mean - h, mean + h, w[k], r
    }
  }' "$tmp/all.txt"
