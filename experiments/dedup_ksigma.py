"""dedup_ksigma.py: comine dedup's automatic threshold at several k (median + k x 1.4826 MAD of
the labels' nearest-other scores, mutual nearest labels), from `comine dedup --all` outputs
(docs/DEDUP.md, "The automatic threshold of the ratio score").

usage: dedup_ksigma.py DRAW:ALL.csv:TRUTH.duplicates.tsv ...
Prints precision / recall per file and k, then the mean F1 of each draw per k."""
import csv
import sys

import numpy as np

KS = [1.25, 1.5, 1.75, 2.0, 2.25]


def truth_pairs(path):
    pairs = set()
    for line in open(path):
        f = line.split()
        if len(f) >= 2 and f[0].isdigit():
            pairs.add(tuple(sorted((int(f[0]), int(f[1])))))
    return pairs


def main():
    f1 = {}
    for arg in sys.argv[1:]:
        draw, cand, truth = arg.split(':')
        true = truth_pairs(truth)
        score = {}
        for r in csv.DictReader(open(cand)):
            p = tuple(sorted((int(r['label_a']), int(r['label_b']))))
            score[p] = max(score.get(p, -1e9), float(r['score']))
        nearest = {}
        for (a, b), s in score.items():
            for x, y in ((a, b), (b, a)):
                if x not in nearest or s > nearest[x][1]:
                    nearest[x] = (y, s)
        s = np.array([v[1] for v in nearest.values()])
        med = np.median(s)
        sigma = 1.4826 * np.median(np.abs(s - med))
        out = '%-40s median %.3f sigma %.3f |' % (cand, med, sigma)
        for k in KS:
            judged = [p for p, v in score.items()
                      if v > med + k * sigma and nearest[p[0]][0] == p[1] and nearest[p[1]][0] == p[0]]
            tp = sum(p in true for p in judged)
            prec = tp / len(judged) if judged else 1.0
            rec = tp / len(true)
            f1.setdefault((draw, k), []).append(2 * prec * rec / (prec + rec) if tp else 0.0)
            out += ' k %.2f: %.2f / %.2f' % (k, prec, rec)
        print(out)
    for k in KS:
        print('k %.2f: mean F1 %s' % (k, ', '.join('draw %s %.3f' % (d, np.mean(f1[(d, k)]))
                                                     for d in sorted({d for d, _ in f1}))))


if __name__ == '__main__':
    main()
