"""dedup_pretrained.py: duplicate identities found with a network trained on other people
(docs/DEDUP.md, "Duplicates: other scores and rules, measured"): the label means of both
peers' embeddings, the pair's cosine averaged over the peers; for each list, comine dedup's rule
(mutual nearest, median + 2 MAD of the nearest similarities), a threshold taken from the data's
own split identities (each label with >= 4 images cut in two random halves: the cosine of the
halves' means is what a duplicate scores; the 2%, 5% and 10% quantiles of those), and the
ceiling: the best F1 any threshold on the score reaches, chosen with the truth (mutual nearest
or not).

usage: /usr/bin/python3 dedup_pretrained.py LIST...
  each LIST (comine corrupt --duplicate output) with LIST.duplicates.tsv beside it and the
  embeddings LIST.a.npy, LIST.b.npy (comine embed --model PEER --data LIST --out ...).
"""
import sys

import numpy as np


def load(base):
    lab = np.array([int(l.split("\t")[1]) for l in open(base)])
    truth = set()
    for l in open(base + ".duplicates.tsv"):
        a, b = l.split()[:2]
        if a.isdigit():
            truth.add((min(int(a), int(b)), max(int(a), int(b))))
    E = [np.load(base + ".%s.npy" % k).astype(np.float64) for k in "ab"]
    return lab, truth, [e / np.linalg.norm(e, axis=1, keepdims=True) for e in E]


def cos_of_means(E, ia, ib):
    return np.mean([np.dot(e[ia].mean(0), e[ib].mean(0)) / np.linalg.norm(e[ia].mean(0)) /
                    np.linalg.norm(e[ib].mean(0)) for e in E])


def prf(found, truth):
    tp = sum(p in truth for p in found)
    p, r = tp / max(len(found), 1), tp / len(truth)
    return p, r, 2 * p * r / max(p + r, 1e-12)


def analyse(base, rng):
    lab, truth, E = load(base)
    K = lab.max() + 1
    idx = [np.where(lab == c)[0] for c in range(K)]
    M = [np.stack([e[ii].mean(0) for ii in idx]) for e in E]
    M = [m / np.linalg.norm(m, axis=1, keepdims=True) for m in M]
    X = np.mean([m @ m.T for m in M], 0)
    np.fill_diagonal(X, -9)
    nn, s1 = X.argmax(1), X.max(1)
    mutual = [(a, nn[a]) for a in range(K) if a < nn[a] and nn[nn[a]] == a]
    halves = []
    for ii in idx:
        if len(ii) >= 4:
            p = rng.permutation(ii)
            halves.append(cos_of_means(E, p[:len(p) // 2], p[len(p) // 2:]))
    med = np.median(s1)
    rules = [("median + 2 MAD", med + 2 * 1.4826 * np.median(np.abs(s1 - med)))]
    rules += [("halves q%02d" % int(100 * q), np.quantile(halves, q)) for q in (0.02, 0.05, 0.10)]
    out = {"mutual pairs": (len(mutual), prf(mutual, truth))}
    for name, t in rules:
        found = [p for p in mutual if X[p] > t]
        out[name] = (round(float(t), 3), len(found), prf(found, truth))
    best = (0,)
    for mut in (True, False):
        cands = sorted(((X[a, b], (a, b)) for a in range(K) for b in range(a + 1, K)
                        if not mut or (nn[a] == b and nn[b] == a)), reverse=True)
        tp = 0
        for i, (s, p) in enumerate(cands):
            tp += p in truth
            P, R = tp / (i + 1), tp / len(truth)
            F = 2 * P * R / max(P + R, 1e-12)
            if F > best[0]:
                best = (F, P, R, mut, s)
    out["ceiling (threshold chosen on the truth)"] = best
    return len(truth), out


rng = np.random.default_rng(0)
for base in sys.argv[1:]:
    n, out = analyse(base, rng)
    print("%s: %d true pairs" % (base, n))
    for k, v in out.items():
        print("   %-40s %s" % (k, v))
