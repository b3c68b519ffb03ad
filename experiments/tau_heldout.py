"""tau_heldout.py: the noise-rate estimators in the separable case (docs/NOISE_RATE.md,
"The noise rate at the end of the warm-up"): identities a network never saw, embedded once by
`comine embed` with each peer; noise injected here (half flips to a uniform other label, half
outliers from a pool of other identities); cos(theta_y) against each label's leave-one-out mean
embedding and `outside` (another label's mean nearer) per peer, as `comine estimate --model`
computes them; each table goes through `comine estimate --run` (its cos_epoch0.csv); `rule` is
comine_estimate_tau's choice with the outside flags (the smaller of beta and outside).

usage: /usr/bin/python3 tau_heldout.py COMINE EMB_A.npy EMB_B.npy PER_ID N_TRAIN_IDS WORKDIR
  rows of the embeddings: identity after identity, PER_ID images each; the first N_TRAIN_IDS
  identities are the training set, the rest the outliers' pool.
"""
import json
import os
import subprocess
import sys

import numpy as np

comine, emb_a, emb_b, per_id, n_train, work = sys.argv[1:7]
per_id, n_train = int(per_id), int(n_train)
E = [np.load(p) for p in (emb_a, emb_b)]
E = [e / np.linalg.norm(e, axis=1, keepdims=True) for e in E]
n = n_train * per_id
train_idx = np.arange(n)
lab0 = train_idx // per_id
pool = np.arange(n, E[0].shape[0])
K = n_train
rows = []
for seed in (1, 2, 3):
    for f in (0, 10, 20, 30, 40, 50):
        rng = np.random.default_rng(seed * 100 + f)
        nf = int(round(n * f / 200))
        perm = rng.permutation(n)
        flip, outl = perm[:nf], perm[nf:2 * nf]
        img, lab, truth = train_idx.copy(), lab0.copy(), np.zeros(n, int)
        for i in flip:
            other = rng.integers(K - 1)
            lab[i] = other if other < lab0[i] else other + 1
            truth[i] = 1
        img[outl] = rng.choice(pool, size=nf, replace=False)
        truth[outl] = 2
        cos, out = np.zeros((n, 2)), np.zeros((n, 2), bool)
        for k, e in enumerate(E):
            X = e[img]
            S = np.zeros((K, X.shape[1]))
            np.add.at(S, lab, X)
            U = S / np.linalg.norm(S, axis=1, keepdims=True)
            own = S[lab] - X
            cy = np.sum(own * X, 1) / np.linalg.norm(own, axis=1)
            D = X @ U.T
            D[np.arange(n), lab] = -9
            cos[:, k], out[:, k] = cy, D.max(1) > cy
        d = os.path.join(work, "heldout_s%d_n%d" % (seed, f))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "cos_epoch0.csv"), "w") as fp:
            fp.write("index,label,truth,cos_a,cos_b\n")
            for i in range(n):
                fp.write("%d,%d,%d,%.6f,%.6f\n" % (i, lab[i], truth[i], cos[i, 0], cos[i, 1]))
        res = subprocess.run([comine, "estimate", "--run", d, "--json"], capture_output=True, text=True, check=True)
        j = json.loads(res.stdout)
        both_out = float((out[:, 0] & out[:, 1]).mean())
        rule = min(j["beta"], both_out)  # comine_estimate_tau's rule when the flags are known
        rows.append((seed, f, j["true_rate"], j["mixture"], j["beta"], j["mirror"], both_out, rule))
        print("seed %d noise %2d%%: true %.3f mixture %.3f beta %.3f mirror %.3f outside %.3f rule %.3f" % rows[-1],
              flush=True)
r = np.array(rows)
for name, c in (("mixture", 3), ("beta", 4), ("mirror", 5), ("outside", 6), ("rule", 7)):
    err = np.abs(r[:, c] - r[:, 2])
    sel = r[:, 1] >= 10
    print("%-8s mean |err| 10-50%%: %.3f  max %.3f  at 0%%: %.3f" % (name, err[sel].mean(), err[sel].max(),
                                                                      r[r[:, 1] == 0, c].mean()))
