"""gen_loss.py: PyTorch reference of the ArcFace head (loss.h) for tests/test_loss_arcface.c.

Writes tests/fixtures/loss_arcface.bin: for s in (32, 64), each fallback (easy, insightface)
and each form set (all ARCFACE, all MARGIN, all MV, a per-sample mix with weights that
include zeros): the inputs (emb (N, D), weight (K, D), labels, forms, sample weights) and
the per-sample loss, p_target and the gradients of sum_i weight_i * loss_i w.r.t. emb and
weight.  Inputs are float32; the reference is computed in float64 from them.  Targets are
placed on purpose: well classified, cos th_y < 0 (the easy margin's switch) and
cos th_y < cos(pi - m) (insightface's switch, for m and for m + dm), with negatives that
beat the target (for mv).

Run: /usr/bin/python3 tests/ref/gen_loss.py [--out DIR] [--threads N]   (fixture.py: options)
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

N, D, K = 6, 16, 10
M, DM, T = 0.5, 0.2, 1.2
FORM_ARCFACE, FORM_MARGIN, FORM_MV = 0, 1, 2
EASY, INSIGHTFACE = 0, 1
# cos th_y of each sample: clean, near 0, negative, past cos(pi - m) (-0.8776) and
# cos(pi - m - dm) (-0.7648), between the two switches, well classified
TARGET_COS = [0.85, 0.3, -0.2, -0.95, -0.82, 0.6]


def psi(cos_y, m, fallback):
    sine = torch.sqrt((1.0 - cos_y * cos_y).clamp(0, 1))
    phi = cos_y * math.cos(m) - sine * math.sin(m)
    if fallback == EASY:
        return torch.where(cos_y > 0, phi, cos_y)
    return torch.where(cos_y > math.cos(math.pi - m), phi, cos_y - math.sin(m) * m)


def arcface_loss(emb, weight, labels, forms, s, fallback):
    """Per-sample losses (N,) and target probabilities under each sample's form."""
    cos = F.linear(F.normalize(emb), F.normalize(weight))
    onehot = F.one_hot(labels, K).bool()
    cos_y = cos.gather(1, labels[:, None])[:, 0]
    margin = torch.where(forms == FORM_MARGIN, torch.full_like(cos_y, M + DM), torch.full_like(cos_y, M))
    psi_y = torch.stack([psi(cos_y[i:i + 1], float(margin[i]), fallback)[0] for i in range(len(cos_y))])
    # mv: negatives that beat the target get h_j = e^{s(t-1)(cos+1)} (mask constant)
    beats = (cos > psi_y[:, None]) & ~onehot & (forms == FORM_MV)[:, None]
    neg = torch.where(beats, s * cos + s * (T - 1.0) * (cos + 1.0), s * cos)
    logits = torch.where(onehot, (s * psi_y)[:, None].expand_as(cos), neg)
    loss = torch.logsumexp(logits, dim=1) - s * psi_y
    return loss, torch.exp(-loss)


def make_inputs(rng):
    weight = rng.standard_normal((K, D)).astype(np.float32) * 0.5
    labels = rng.integers(0, K, N)
    emb = np.zeros((N, D), np.float32)
    for i in range(N):
        w = weight[labels[i]] / np.linalg.norm(weight[labels[i]])
        u = rng.standard_normal(D)
        u -= u.dot(w) * w
        u /= np.linalg.norm(u)
        c = TARGET_COS[i]
        emb[i] = (c * w + math.sqrt(1 - c * c) * u) * rng.uniform(0.5, 3.0)
    return emb, weight, labels


def main():
    out_dir = fixture.options(__doc__).out
    rng = np.random.default_rng(2019)
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
                emb, weight, labels = make_inputs(rng)
                e = torch.tensor(emb, dtype=torch.float64, requires_grad=True)
                w = torch.tensor(weight, dtype=torch.float64, requires_grad=True)
                lab = torch.tensor(labels, dtype=torch.long)
                fo = torch.tensor(forms, dtype=torch.long)
                swt = torch.tensor(sw, dtype=torch.float64)
                loss, p = arcface_loss(e, w, lab, fo, float(s), fb)
                (swt * loss).sum().backward()
                name = f"s{s}_{fb_name}_{fs_name}"
                cases.append(name)
                pre = name + "/"
                tensors[pre + "cfg"] = np.array([s, M, fb, DM, T], np.float32)
                tensors[pre + "emb"] = emb
                tensors[pre + "weight"] = weight
                tensors[pre + "labels"] = labels.astype(np.float32)
                tensors[pre + "forms"] = np.array(forms, np.float32)
                tensors[pre + "sample_weight"] = np.array(sw, np.float32)
                tensors[pre + "loss"] = loss
                tensors[pre + "p_target"] = p
                tensors[pre + "demb"] = e.grad
                tensors[pre + "dweight"] = w.grad
    out = os.path.join(out_dir, "loss_arcface.bin")
    fixture.write(out, tensors)
    print(f"wrote {out}: {len(cases)} cases")


if __name__ == "__main__":
    main()
