"""verify_ref.py: an independent numpy implementation of comine's verification metrics,
used by tests/test_eval_metrics.c to check comine_verify_scores.

usage: verify_ref.py FILE [--folds K]
FILE lines: `score<TAB>same<TAB>fold`, or `pathA<TAB>pathB<TAB>score<TAB>same` (what
`comine eval --scores` writes; folds are then contiguous KFold(K, shuffle=False) blocks).
Prints one JSON object: accuracy, accuracy_std, auc, tar_far_1e-2, tar_far_1e-3 (null when
there are too few mismatched pairs), folds (the held-out accuracies), pairs.

Definitions (brute force on purpose, so that they do not share code paths with the C side):
- threshold of a fold: over candidates (lowest distinct training score - 1, midpoints of
  consecutive distinct training scores, highest + 1), the first of maximal training accuracy
  with `same` predicted when score > threshold; accuracy on the held-out fold; std with ddof 0;
- AUC: P(pos > neg) + 0.5 P(pos == neg) over all positive/negative pairs;
- TAR at FAR f: the lowest candidate threshold among the negative scores and -inf such that
  #(negatives > t) <= floor(f * negatives); TAR = mean(positives > t).
"""
import json
import math
import sys

import numpy as np


def kfold(n, k):
    sizes = np.full(k, n // k, dtype=np.int64)
    sizes[: n % k] += 1
    return np.repeat(np.arange(k), sizes)


def read(path, folds):
    scores, same, fold = [], [], []
    four = False
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line.split("\t")
            if len(c) == 4:
                four = True
                scores.append(float(c[2]))
                same.append(int(c[3]))
            else:
                scores.append(float(c[0]))
                same.append(int(c[1]))
                fold.append(int(c[2]))
    scores = np.array(scores, dtype=np.float64)
    same = np.array(same, dtype=bool)
    fold = kfold(len(scores), folds) if four else np.array(fold, dtype=np.int64)
    return scores, same, fold


def best_threshold(s, y):
    u = np.unique(s)
    cands = np.concatenate([[u[0] - 1.0], (u[:-1] + u[1:]) / 2.0, [u[-1] + 1.0]])
    pred = s[None, :] > cands[:, None]
    acc = (pred == y[None, :]).sum(axis=1)
    return cands[int(np.argmax(acc))]


def tar_at_far(s, y, far):
    neg, pos = s[~y], s[y]
    k = math.floor(far * len(neg))
    if k < 1 or len(pos) == 0:
        return None
    cands = np.sort(np.concatenate([neg, [-np.inf]]))
    for t in cands:
        if (neg > t).sum() <= k:
            return float((pos > t).mean())
    return None


def main():
    path = sys.argv[1]
    folds = int(sys.argv[sys.argv.index("--folds") + 1]) if "--folds" in sys.argv else 10
    s, y, fold = read(path, folds)
    k = int(fold.max()) + 1
    accs = []
    for f in range(k):
        test = fold == f
        train = ~test if k > 1 else np.ones_like(test)
        t = best_threshold(s[train], y[train])
        accs.append(float(((s[test] > t) == y[test]).mean()))
    pos, neg = s[y], s[~y]
    d = pos[:, None] - neg[None, :]
    auc = ((d > 0).sum() + 0.5 * (d == 0).sum()) / (len(pos) * len(neg))
    out = {
        "accuracy": float(np.mean(accs)),
        "accuracy_std": float(np.std(accs)),
        "auc": float(auc),
        "tar_far_1e-2": tar_at_far(s, y, 1e-2),
        "tar_far_1e-3": tar_at_far(s, y, 1e-3),
        "folds": accs,
        "pairs": int(len(s)),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
