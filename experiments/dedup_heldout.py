"""dedup_heldout.py: duplicate identities among identities a network never saw (docs/
DEDUP.md, "Duplicates: other scores and rules, measured"): 100 of the held-out identities
train, 10 of them split in two labels, the rest the outliers' pool; 0, 20, 40% noise (half flips,
half outliers); label means of each peer's embeddings, the pair's cosine averaged over the
peers; comine dedup's rule (mutual nearest, median + k MAD of the nearest similarities) against
the gap rule (mutual nearest, min over the pair of nearest minus second-nearest similarity >
median + k MAD of the gaps); 5 seeds.

usage: /usr/bin/python3 dedup_heldout.py EMB_A.npy EMB_B.npy PER_ID
  rows of the embeddings: identity after identity, PER_ID images each (at least 120 identities).
"""
import sys

import numpy as np

emb_a, emb_b, per_id = sys.argv[1], sys.argv[2], int(sys.argv[3])
E = [np.load(p) for p in (emb_a, emb_b)]
E = [e / np.linalg.norm(e, axis=1, keepdims=True) for e in E]
ids = np.arange(E[0].shape[0]) // per_id
N_IDS = ids.max() + 1


def rules(X, T, K2, k):
    X = X.copy()
    np.fill_diagonal(X, -9)
    srt = np.sort(X, 1)[:, ::-1]
    s1, g = srt[:, 0], srt[:, 0] - srt[:, 1]
    nn = X.argmax(1)
    mutual = [(a, nn[a]) for a in range(K2) if a < nn[a] and nn[nn[a]] == a]
    med, sig = np.median(s1), 1.4826 * np.median(np.abs(s1 - np.median(s1)))
    gm, gs = np.median(g), 1.4826 * np.median(np.abs(g - np.median(g)))
    res = {}
    for name, ok in (("sim", lambda a, b: X[a, b] > med + k * sig), ("gap", lambda a, b: min(g[a], g[b]) > gm + k * gs)):
        found = [p for p in mutual if ok(*p)]
        tp = sum(p in T for p in found)
        res[name] = (tp / max(len(found), 1), tp / len(T))
    return res


def run(seed, f, k):
    rng = np.random.default_rng(seed)
    order = rng.permutation(N_IDS)
    train_ids, pool_ids = order[:100], order[100:]
    img = np.concatenate([np.where(ids == i)[0] for i in train_ids])
    lab = np.repeat(np.arange(100), per_id)
    pool = np.concatenate([np.where(ids == i)[0] for i in pool_ids])
    n, K = len(img), 100
    T = set()
    for j, a in enumerate(rng.choice(100, 10, replace=False)):
        m = np.where(lab == a)[0]
        lab[rng.choice(m, len(m) // 2, replace=False)] = K + j
        T.add((a, K + j))
    K2 = K + 10
    nf = int(round(n * f / 200))
    perm = rng.permutation(n)
    for i in perm[:nf]:
        other = rng.integers(K2 - 1)
        lab[i] = other if other < lab[i] else other + 1
    img = img.copy()
    img[perm[nf:2 * nf]] = rng.choice(pool, nf, replace=False)
    mats = []
    for e in E:
        S = np.zeros((K2, e.shape[1]))
        np.add.at(S, lab, e[img])
        M = S / np.linalg.norm(S, axis=1, keepdims=True)
        mats.append(M @ M.T)
    return rules(np.mean(mats, 0), T, K2, k)


for f in (0, 20, 40):
    for k in (2, 3):
        rs = [run(s, f, k) for s in range(5)]
        print("noise %2d%% k=%d: " % (f, k) + "  ".join("%s P %.2f R %.2f" % (name, *np.mean([r[name] for r in rs], 0))
                                                    for name in ("sim", "gap")))
