"""gen_loss_subcenter.py: PyTorch reference of Sub-center ArcFace (loss.h, S > 1 sub-centres per
class) for tests/test_loss_subcenter.c.

Writes tests/fixtures/loss_subcenter.bin: for s in (32, 64), each fallback (easy, insightface)
and each form set (all ARCFACE, all MARGIN, all MV, a per-sample mix with weights that include
zeros): the inputs (emb (N, D), weight (K S, D) with row c S + s the sub-centre s of class c,
labels, forms, sample weights) and the per-sample loss, cos th_y (the best sub-centre of the
label), p_target and the gradients of sum_i weight_i * loss_i w.r.t. emb and weight.  The class
cosine is cos_sub.view(N, K, S).max(2): torch.max's backward sends each class's gradient to its
arg-max sub-centre only.  Inputs are float32, the reference float64.

Each sample's label gets a chosen dominant sub-centre (not always the first) with cos th_y
placed on purpose (well classified, near 0, negative, past each fallback's switch), the
label's other sub-centres a little below it, each sub-centre its own norm; every class's best
sub-centre leads the second by at least 1e-3, so float32 and float64 pick the same one.

Run: /usr/bin/python3 tests/ref/gen_loss_subcenter.py [--out DIR] [--threads N]   (fixture.py: options)
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

N, D, K, S = 6, 16, 8, 3
M, DM, T = 0.5, 0.2, 1.2
FORM_ARCFACE, FORM_MARGIN, FORM_MV = 0, 1, 2
EASY, INSIGHTFACE = 0, 1
TARGET_COS = [0.85, 0.3, -0.2, -0.95, -0.82, 0.6]
MIN_GAP = 1e-3


def psi(cos_y, m, fallback):
    sine = torch.sqrt((1.0 - cos_y * cos_y).clamp(0, 1))
    phi = cos_y * math.cos(m) - sine * math.sin(m)
    if fallback == EASY:
        return torch.where(cos_y > 0, phi, cos_y)
    return torch.where(cos_y > math.cos(math.pi - m), phi, cos_y - math.sin(m) * m)


def subcenter_loss(emb, weight, labels, forms, s, fallback):
    """Per-sample losses (N,), cos th_y and target probabilities under each sample's form."""
    cos_sub = F.linear(F.normalize(emb), F.normalize(weight))
    cos = cos_sub.view(emb.shape[0], K, S).max(dim=2).values
    onehot = F.one_hot(labels, K).bool()
    cos_y = cos.gather(1, labels[:, None])[:, 0]
    margin = torch.where(forms == FORM_MARGIN, torch.full_like(cos_y, M + DM), torch.full_like(cos_y, M))
    psi_y = torch.stack([psi(cos_y[i:i + 1], float(margin[i]), fallback)[0] for i in range(len(cos_y))])
    beats = (cos > psi_y[:, None]) & ~onehot & (forms == FORM_MV)[:, None]
    neg = torch.where(beats, s * cos + s * (T - 1.0) * (cos + 1.0), s * cos)
    logits = torch.where(onehot, (s * psi_y)[:, None].expand_as(cos), neg)
    loss = torch.logsumexp(logits, dim=1) - s * psi_y
    return loss, cos_y, torch.exp(-loss)


def unit_at(rng, axis, c):
    """A unit vector at cosine c from the unit vector axis."""
    u = rng.standard_normal(D)
    u -= u.dot(axis) * axis
    u /= np.linalg.norm(u)
    return c * axis + math.sqrt(1 - c * c) * u


def make_inputs(rng):
    """emb, weight, labels, dominant sub-centres; redrawn until every class max is clear."""
    while True:
        labels = rng.permutation(K)[:N]
        dominant = rng.integers(0, S, N)
        dominant[:3] = [2, 1, 0]  # not only the first sub-centre
        weight = rng.standard_normal((K * S, D))
        emb = np.zeros((N, D))
        for i in range(N):
            e = rng.standard_normal(D)
            e /= np.linalg.norm(e)
            emb[i] = e * rng.uniform(0.5, 3.0)
            c, others = TARGET_COS[i], 0
            for sc in range(S):
                if sc == dominant[i]:
                    cs = c
                else:
                    others += 1
                    cs = c - 0.02 * others
                weight[labels[i] * S + sc] = unit_at(rng, e, cs) * rng.uniform(0.3, 2.0)
        emb, weight = emb.astype(np.float32), weight.astype(np.float32)
        en = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        wn = weight / np.linalg.norm(weight, axis=1, keepdims=True)
        top2 = np.sort((en @ wn.T).reshape(N, K, S), axis=2)[:, :, -2:]
        if (top2[:, :, 1] - top2[:, :, 0]).min() >= MIN_GAP:
            return emb, weight, labels, dominant


def main():
    out_dir = fixture.options(__doc__).out
    rng = np.random.default_rng(2020)
    tensors = {}
    form_sets = {
        "arcface": ([FORM_ARCFACE] * N, [1.0 / N] * N),
        "margin": ([FORM_MARGIN] * N, [1.0 / N] * N),
        "mv": ([FORM_MV] * N, [1.0 / N] * N),
        "mixed": ([FORM_ARCFACE, FORM_MARGIN, FORM_MV, FORM_MARGIN, FORM_MV, FORM_ARCFACE],
                  [0.5, 0.0, 0.25, 2.0, 0.125, 0.0]),
    }
    cases = []
    for s in (32, 64):
        for fb_name, fb in (("easy", EASY), ("insightface", INSIGHTFACE)):
            for fs_name, (forms, sw) in form_sets.items():
                emb, weight, labels, dominant = make_inputs(rng)
                e = torch.tensor(emb, dtype=torch.float64, requires_grad=True)
                w = torch.tensor(weight, dtype=torch.float64, requires_grad=True)
                lab = torch.tensor(labels, dtype=torch.long)
                fo = torch.tensor(forms, dtype=torch.long)
                swt = torch.tensor(sw, dtype=torch.float64)
                loss, cos_y, p = subcenter_loss(e, w, lab, fo, float(s), fb)
                (swt * loss).sum().backward()
                name = f"s{s}_{fb_name}_{fs_name}"
                cases.append(name)
                pre = name + "/"
                tensors[pre + "cfg"] = np.array([s, M, fb, DM, T, S], np.float32)
                tensors[pre + "emb"] = emb
                tensors[pre + "weight"] = weight
                tensors[pre + "labels"] = labels.astype(np.float32)
                tensors[pre + "dominant"] = dominant.astype(np.float32)
                tensors[pre + "forms"] = np.array(forms, np.float32)
                tensors[pre + "sample_weight"] = np.array(sw, np.float32)
                tensors[pre + "loss"] = loss
                tensors[pre + "cos_target"] = cos_y
                tensors[pre + "p_target"] = p
                tensors[pre + "demb"] = e.grad
                tensors[pre + "dweight"] = w.grad
    out = os.path.join(out_dir, "loss_subcenter.bin")
    fixture.write(out, tensors)
    print(f"wrote {out}: {len(cases)} cases")


if __name__ == "__main__":
    main()
