# paired.awk: paired comparison of two modes over seeds, from run.sh's results/all.tsv
# (name, noise, mode, seed, acc_a, std_a, acc_ab, std_ab, precision, recall, f1, train_s).
#
#   awk -F'\t' -v a=comining -v b=coteach -f experiments/paired.awk results/all.tsv
#
# A run is named [SETTING_]nNOISE_MODE_sSEED (SETTING: "m02" for the margin study, none for the
# main table); MODE is taken from the name (a variant such as "ramp" is a mode of its own here).  For each (setting, noise) and each figure (peer A's and the pair A+B's
# verification accuracy, detection F1), the runs of modes a and b with the same seed form a pair
# (the same noisy set, the same seed); per pair d = a - b.  Output, one Markdown row each:
# seeds, mean d, its 95% interval (Student t, n - 1 degrees of freedom), a's wins and losses,
# and the two-sided sign test's p (ties left out).  Accuracies in points, F1 as it is.

# t quantile 0.975 for df degrees of freedom (table up to 30; beyond, 1.96 + 2.4 / df, within 0.002)
function t975(df) {
    if (df < 1) return 0
    if (df <= 30) return T[df]
    return 1.96 + 2.4 / df
}
# two-sided sign test: p = min(1, 2 P(X <= min(w, l))), X ~ Binomial(w + l, 1/2)
function sign_p(w, l,   n, k, c, s, m) {
    n = w + l
    if (n == 0) return 1
    m = w < l ? w : l
    c = 1; s = 0
    for (k = 0; k <= m; k++) {
        s += c
        c = c * (n - k) / (k + 1)
    }
    s = 2 * s / 2 ^ n
    return s > 1 ? 1 : s
}
BEGIN {
    split("12.706 4.303 3.182 2.776 2.571 2.447 2.365 2.306 2.262 2.228 2.201 2.179 2.160 2.145 2.131 " \
          "2.120 2.110 2.101 2.093 2.086 2.080 2.074 2.069 2.064 2.060 2.056 2.052 2.048 2.045 2.042", T, " ")
    if (a == "" || b == "") { print "paired.awk: set -v a=MODE -v b=MODE" > "/dev/stderr"; exit 2 }
    nf = split("a ab f", fig, " ")
    label["a"] = "peer A accuracy"; label["ab"] = "A+B accuracy"; label["f"] = "detection F1"
    col["a"] = 5; col["ab"] = 7; col["f"] = 11
    scale["a"] = 100; scale["ab"] = 100; scale["f"] = 1
}
$1 ~ /_s[0-9]+$/ {
    name = $1
    if (!match(name, /n[0-9]+_[a-z0-9]+_s[0-9]+$/)) next
    setting = substr(name, 1, RSTART - 1); sub(/_$/, "", setting)
    if (setting == "") setting = "main"
    mode = substr(name, RSTART, RLENGTH); sub(/^n[0-9]+_/, "", mode); sub(/_s[0-9]+$/, "", mode)
    if (mode != a && mode != b) next
    key = setting SUBSEP $2
    if (!(key in seen)) { seen[key] = 1; order[++K] = key }
    for (i = 1; i <= nf; i++) {
        v = $(col[fig[i]])
        if (v != "-" && v != "") val[key, mode, $4, fig[i]] = v * scale[fig[i]]
    }
    seeds[key, $4] = 1
}
END {
    if (a == "" || b == "") exit 2
    print "| setting | noise | figure | seeds | mean " a " - " b " | 95% interval | " a " wins / losses | sign test p |"
    print "|---|---|---|---|---|---|---|---|"
    for (j = 1; j <= K; j++) {
        split(order[j], p, SUBSEP)
        for (i = 1; i <= nf; i++) {
            f = fig[i]; n = 0; s = 0; q = 0; w = 0; l = 0
            for (sk in seeds) {
                split(sk, ss, SUBSEP)
                if (ss[1] SUBSEP ss[2] != order[j]) continue
                sd = ss[3]
                if (!((order[j], a, sd, f) in val) || !((order[j], b, sd, f) in val)) continue
                d = val[order[j], a, sd, f] - val[order[j], b, sd, f]
                n++; s += d; q += d * d; w += d > 0; l += d < 0
            }
            if (n == 0) continue
            m = s / n
            if (n > 1) {
                v = (q - n * m * m) / (n - 1); if (v < 0) v = 0
                h = t975(n - 1) * sqrt(v / n)
                ci = sprintf(f == "f" ? "[%+.3f, %+.3f]" : "[%+.2f, %+.2f]", m - h, m + h)
            } else ci = "-"
            printf "| %s | %s%% | %s | %d | " (f == "f" ? "%+.3f" : "%+.2f") " | %s | %d / %d | %.3f |\n",
                   p[1], p[2], label[f], n, m, ci, w, l, sign_p(w, l)
        }
    }
}
