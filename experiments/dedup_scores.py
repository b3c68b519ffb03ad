"""dedup_scores.py: pair scores and rules for duplicate identities, on saved embeddings
(docs/DEDUP.md).  Scores of a label pair:
  cos    cosine of the two labels' mean embeddings (what `comine dedup --score means` uses)
  ratio  mean cross-pair cosine / sqrt(the two labels' mean within-label cosines)
Rules (both require the two labels to be each other's nearest):
  sim    score > median + k x 1.4826 MAD of the labels' nearest similarities (comine dedup's)
  gap    the pair's smaller gap (nearest minus second nearest similarity) > median + k MAD of gaps
Means of all samples or of the trusted ones (not flagged in noise.csv); the score is the mean
over the two peers' embeddings.

usage: /usr/bin/python3 dedup_scores.py EMB_A.npy EMB_B.npy LIST NOISE_CSV
  LIST: the run's list (path TAB label TAB truth, rows in embedding order); LIST.duplicates.tsv
  holds the true pairs.
"""
import csv
import sys

import numpy as np

emb_a, emb_b, lst, noise_csv = sys.argv[1:5]
E = [np.load(p) for p in (emb_a, emb_b)]
E = [e / np.linalg.norm(e, axis=1, keepdims=True) for e in E]
lab = np.array([int(line.split("\t")[1]) for line in open(lst).read().strip().split("\n")])
K = lab.max() + 1
T = set()
for line in open(lst + ".duplicates.tsv").read().split("\n")[1:]:
    if line.strip():
        a, b = map(int, line.split())
        T.add((min(a, b), max(a, b)))
trusted = np.array([int(r["flagged"]) == 0 for r in csv.DictReader(open(noise_csv))])


def score_matrix(use, kind):
    mats = []
    n = np.bincount(lab[use], minlength=K).astype(float)
    for e in E:
        S = np.zeros((K, e.shape[1]))
        np.add.at(S, lab[use], e[use])
        if kind == "cos":
            M = S / np.maximum(np.linalg.norm(S, axis=1, keepdims=True), 1e-9)
            mats.append(M @ M.T)
        else:
            self_ = (np.sum(S * S, 1) - n) / np.maximum(n * (n - 1), 1)
            cross = (S @ S.T) / np.maximum(np.outer(n, n), 1)
            mats.append(cross / np.sqrt(np.maximum(np.outer(self_, self_), 1e-6)))
    return np.mean(mats, 0)


def rules(X, k):
    X = X.copy()
    np.fill_diagonal(X, -9)
    srt = np.sort(X, 1)[:, ::-1]
    s1, g = srt[:, 0], srt[:, 0] - srt[:, 1]
    nn = X.argmax(1)
    mutual = [(a, nn[a]) for a in range(K) if a < nn[a] and nn[nn[a]] == a]
    med, sig = np.median(s1), 1.4826 * np.median(np.abs(s1 - np.median(s1)))
    gm, gs = np.median(g), 1.4826 * np.median(np.abs(g - np.median(g)))
    out = {}
    for name, ok in (("sim", lambda a, b: X[a, b] > med + k * sig), ("gap", lambda a, b: min(g[a], g[b]) > gm + k * gs)):
        found = [p for p in mutual if ok(*p)]
        tp = sum(p in T for p in found)
        out[name] = (tp / max(len(found), 1), tp / len(T))
    return out


for use_name, use in (("all", np.ones(len(lab), bool)), ("trusted", trusted)):
    for kind in ("cos", "ratio"):
        X = score_matrix(use, kind)
        for k in (2, 3):
            r = rules(X, k)
            print("%-7s %-5s k=%d  sim P %.2f R %.2f   gap P %.2f R %.2f" % (use_name, kind, k, *r["sim"], *r["gap"]))
