"""dedup_more.py: more duplicate-identity scores on a finished comining run (docs/DEDUP.md,
"Size-corrected scores" and "The run's own heads"), and on the networks of a cross-fitting
(`comine estimate --data D --out DIR`, "Held-out classification").

  /usr/bin/python3 dedup_more.py means RUN LIST
      RUN/emb_a.npy, RUN/emb_b.npy: `comine embed` of LIST with RUN's two peers (rows in LIST's
      order); RUN/noise.csv's flags give the trusted samples.
  /usr/bin/python3 dedup_more.py heads RUN LIST
      the same embeddings against the two ArcFace heads of RUN/checkpoint.bin.
  /usr/bin/python3 dedup_more.py crossfit DIR LIST EMB1 EMB2
      EMBh: `comine embed` of LIST with DIR/half<h>/peer_a.model; a sample is held out from
      half h when DIR/half<h>/noise.csv (the samples half h trained on) does not list it.

LIST: path TAB label TAB truth; LIST.duplicates.tsv holds the true pairs.  Each score is
printed with comine dedup's rule (mutual nearest labels, score above median + k x 1.4826 MAD
of the labels' nearest-other scores, k = 2, 2.5, 3), the best F1 of any threshold on the
ranking of every pair (chosen with the truth: a ceiling, not a rule), and how many true pairs
are mutual nearest labels.
"""
import csv
import struct
import sys

import numpy as np


def load_list(path):
    rows = [line.split("\t") for line in open(path).read().strip().split("\n")]
    lab = np.array([int(r[1]) for r in rows])
    truth = set()
    for line in open(path + ".duplicates.tsv").read().split("\n")[1:]:
        if line.strip():
            a, b = map(int, line.split())
            truth.add((min(a, b), max(a, b)))
    return [r[0] for r in rows], lab, truth


def unit(e):
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def evaluate(S, K, truth, name):
    S = S.copy()
    np.fill_diagonal(S, -np.inf)
    s, nn = S.max(1), S.argmax(1)
    med = np.median(s)
    sig = 1.4826 * np.median(np.abs(s - med))
    mutual = {(min(a, nn[a]), max(a, nn[a])) for a in range(K) if nn[nn[a]] == a}
    res = []
    for k in (2, 2.5, 3):
        found = {p for p in mutual if S[p] > med + k * sig}
        tp = len(found & truth)
        res.append("%gs %.2f/%.2f" % (k, tp / max(len(found), 1), tp / len(truth)))
    iu = np.triu_indices(K, 1)
    order = np.argsort(-S[iu])
    hit = np.array([(iu[0][j], iu[1][j]) in truth for j in order])
    tp = np.cumsum(hit)
    P, R = tp / np.arange(1, len(hit) + 1), tp / len(truth)
    F = 2 * P * R / np.maximum(P + R, 1e-9)
    b = F.argmax()
    print("%-42s rule %s | best F1 %.2f (%.2f/%.2f) | mutual nearest %d/%d of %d"
          % (name, "  ".join(res), F[b], P[b], R[b], len(mutual & truth), len(truth), len(mutual)))


def label_sums(e, lab, K, w):
    S = np.zeros((K, e.shape[1]))
    np.add.at(S, lab, e * w[:, None])
    return S, np.bincount(lab, weights=w, minlength=K)


def trim(e, lab, K, frac):
    """Weights 0 for the floor(frac n) samples of each label (n >= 3) least like its mean."""
    S, _ = label_sums(e, lab, K, np.ones(len(lab)))
    c = (e * unit(S)[lab]).sum(1)
    w = np.ones(len(lab))
    for k in range(K):
        idx = np.where(lab == k)[0]
        drop = int(np.floor(frac * len(idx)))
        if len(idx) >= 3 and drop > 0:
            w[idx[np.argsort(c[idx])[:drop]]] = 0
    return w


def cosine_of_means(e, lab, K, w):
    M = unit(label_sums(e, lab, K, w)[0])
    return M @ M.T


def shrunk_ratio(e, lab, K, w, c):
    """Mean cross-pair cosine over sqrt of the two labels' within-label mean cosines, each
    shrunk towards the median of the labels with >= 6 samples by c pseudo-pairs (c = inf: the
    mean cross-pair cosine alone; c = 0: the plain ratio)."""
    S, n = label_sums(e, lab, K, w)
    cross = (S @ S.T) / np.maximum(np.outer(n, n), 1)
    if np.isinf(c):
        return cross
    pairs = n * (n - 1) / 2
    within = (np.einsum("ij,ij->i", S, S) - n) / np.maximum(n * (n - 1), 1)
    g = np.median(within[n >= 6])
    ws = np.maximum((pairs * within + c * g) / np.maximum(pairs + c, 1e-9), 1e-3)
    return cross / np.sqrt(np.outer(ws, ws))


def cmd_means(run, lst):
    _, lab, truth = load_list(lst)
    K = lab.max() + 1
    E = [unit(np.load("%s/emb_%s.npy" % (run, p))) for p in "ab"]
    flagged = np.array([int(r["flagged"]) for r in csv.DictReader(open(run + "/noise.csv"))])
    one, trusted = np.ones(len(lab)), (flagged == 0) * 1.0

    def both(f):
        return sum(f(e) for e in E) / len(E)

    evaluate(both(lambda e: cosine_of_means(e, lab, K, one)), K, truth, "means, all (comine dedup)")
    evaluate(both(lambda e: cosine_of_means(e, lab, K, trusted)), K, truth, "means, trusted")
    for frac in (0.1, 0.2, 0.3):
        evaluate(both(lambda e: cosine_of_means(e, lab, K, trim(e, lab, K, frac))), K, truth,
                 "means, trimmed %.1f" % frac)
    evaluate(both(lambda e: shrunk_ratio(e, lab, K, one, np.inf)), K, truth, "cross-pair cosine")
    evaluate(both(lambda e: shrunk_ratio(e, lab, K, one, 0)), K, truth, "ratio")
    for c in (1, 3, 10):
        evaluate(both(lambda e: shrunk_ratio(e, lab, K, one, c)), K, truth, "ratio, shrunk c=%g" % c)
        evaluate(both(lambda e: shrunk_ratio(e, lab, K, trim(e, lab, K, 0.2), c)), K, truth,
                 "ratio, shrunk c=%g, trimmed 0.2" % c)


def heads(path):
    """The unit class centres of every peer in a checkpoint (checkpoint.c's layout, S = 1)."""
    f = open(path, "rb").read()
    _, _, n_peers, K, D, S, samples = struct.unpack("<4sIIIIIQ", f[:32])
    assert S == 1, "sub-centre heads are not read here"
    start, tail = 52 + 21 * 8, 4 + samples * 16
    block = (len(f) - start - tail) // n_peers
    out = []
    for p in range(n_peers):
        end = start + (p + 1) * block - 32 - K * D * 4  # before the head's momentum and the rng
        out.append(unit(np.frombuffer(f[end - K * D * 4:end], dtype="<f4").reshape(K, D).astype(np.float64)))
    return out


def confusion_scores(L, lab, K, name_prefix, truth):
    """L: (n, K) cosines of samples to every centre.  M[a, b]: mean cosine of a's samples to
    b's centre; Q[a, b]: share of a's samples whose best other label is b."""
    cnt = np.maximum(np.bincount(lab, minlength=K), 1)
    M = np.zeros((K, K))
    np.add.at(M, lab, L)
    M /= cnt[:, None]
    L2 = L.copy()
    L2[np.arange(len(lab)), lab] = -9
    Q = np.zeros((K, K))
    np.add.at(Q, (lab, L2.argmax(1)), 1)
    Q /= cnt[:, None]
    D = M - np.diag(M)[:, None]
    evaluate(M + M.T, K, truth, name_prefix + "mean cosine to the other centre")
    evaluate(D + D.T, K, truth, name_prefix + "the same minus own centre")
    evaluate(Q + Q.T, K, truth, name_prefix + "runner-up share, sum")
    evaluate(np.minimum(Q, Q.T), K, truth, name_prefix + "runner-up share, min")


def cmd_heads(run, lst):
    _, lab, truth = load_list(lst)
    K = lab.max() + 1
    E = [unit(np.load("%s/emb_%s.npy" % (run, p))) for p in "ab"]
    W = heads(run + "/checkpoint.bin")
    L = sum(e @ w.T for e, w in zip(E, W)) / len(W)
    print("training samples whose nearest centre is their label's: %.3f" % (L.argmax(1) == lab).mean())
    confusion_scores(L, lab, K, "", truth)
    evaluate(sum(w @ w.T for w in W) / len(W), K, truth, "centres (comine dedup --score centres)")


def cmd_crossfit(folder, lst, emb1, emb2):
    paths, lab, truth = load_list(lst)
    K = lab.max() + 1
    L = np.zeros((len(lab), K))
    held = np.zeros(len(lab), bool)
    for h, emb in ((1, emb1), (2, emb2)):
        trained = {r["path"] for r in csv.DictReader(open("%s/half%d/noise.csv" % (folder, h)))}
        C = unit(np.load(emb).astype(np.float64)) @ heads("%s/half%d/checkpoint.bin" % (folder, h))[0].T
        for i, p in enumerate(paths):
            if p not in trained:
                L[i], held[i] = C[i], True
    assert held.all(), "a sample is in both halves' training sets"
    print("held-out samples whose nearest centre is their label's: %.3f" % (L.argmax(1) == lab).mean())
    confusion_scores(L, lab, K, "held out: ", truth)


if __name__ == "__main__":
    cmds = {"means": (cmd_means, 2), "heads": (cmd_heads, 2), "crossfit": (cmd_crossfit, 4)}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds or len(sys.argv) != 2 + cmds[sys.argv[1]][1]:
        sys.exit(__doc__)
    cmds[sys.argv[1]][0](*sys.argv[2:])
