#!/usr/bin/python3
"""synth_linear_probe.py: is `comine synth` data hard enough?  Trains a linear classifier on raw
pixels and a tiny CNN on the same split of a synthetic folder data set (default: 50 identities x
20 images at 32x32, 15 images per identity to train, 5 to test) and prints both test accuracies.
The synthetic data is meant to defeat the linear model (pose, lighting, background, occlusion)
while a small CNN still learns the identities.

usage: /usr/bin/python3 tests/ref/synth_linear_probe.py --comine BUILD/comine [--ids 50 --per-id 20
       --size 32 --seed 1 --epochs 60 --noise 0.3]   (or --data DIR for an existing folder data set)
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image


def load_folder(root, size):
    ids = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    xs, ys, ks = [], [], []
    for label, d in enumerate(ids):
        files = sorted(os.listdir(os.path.join(root, d)))
        for k, f in enumerate(files):
            img = Image.open(os.path.join(root, d, f)).convert("RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            xs.append(np.asarray(img, dtype=np.float32) / 255.0)
            ys.append(label)
            ks.append(k)
    x = torch.tensor(np.stack(xs)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(ys), np.array(ks), len(ids)


class TinyCNN(nn.Module):
    def __init__(self, classes):
        super().__init__()
        chans = [3, 32, 64, 128]
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        for i in range(3):
            self.convs.append(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False))
            self.bns.append(nn.BatchNorm2d(chans[i + 1]))
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(chans[-1], classes)

    def forward(self, x):
        for conv, bn in zip(self.convs, self.bns):
            x = F.max_pool2d(F.relu(bn(conv(x))), 2)
        x = x.mean(dim=(2, 3))
        return self.fc(self.drop(x))


def augment(x, gen):
    """Random horizontal flip and a shift of up to 2 pixels (train time only)."""
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=gen))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def train(model, xtr, ytr, xte, yte, epochs, lr, wd, aug, gen):
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    n = xtr.shape[0]
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, 64):
            idx = perm[i:i + 64]
            xb = augment(xtr[idx], gen) if aug else xtr[idx]
            loss = F.cross_entropy(model(xb), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        train_acc = (model(xtr).argmax(1) == ytr).float().mean().item()
        test_acc = (model(xte).argmax(1) == yte).float().mean().item()
    return train_acc, test_acc


def noise_check(x, y, classes, rate, epochs, gen):
    """Flip `rate` of the labels (uniform over the other identities), train the tiny CNN on all
    samples, and flag as noisy the `rate` fraction with the largest loss averaged over the epochs
    after the first third (the small-loss premise the co-mining method builds on).  Returns
    detection precision and recall (equal here: as many flagged as flipped)."""
    n = x.shape[0]
    flip = torch.randperm(n, generator=gen)[:round(rate * n)]
    noisy = y.clone()
    shift = torch.randint(1, classes, (flip.numel(),), generator=gen)
    noisy[flip] = (y[flip] + shift) % classes
    truth = torch.zeros(n, dtype=torch.bool)
    truth[flip] = True
    model = TinyCNN(classes)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=5e-4)
    loss_sum = torch.zeros(n)
    for e in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, 64):
            idx = perm[i:i + 64]
            loss = F.cross_entropy(model(augment(x[idx], gen)), noisy[idx], reduction="none")
            if e >= epochs // 3:
                loss_sum[idx] += loss.detach()
            opt.zero_grad()
            loss.mean().backward()
            opt.step()
    flagged = torch.zeros(n, dtype=torch.bool)
    flagged[loss_sum.argsort(descending=True)[:flip.numel()]] = True
    tp = (flagged & truth).sum().item()
    return tp / max(flagged.sum().item(), 1), tp / max(truth.sum().item(), 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--comine", help="the comine binary (makes the data with `comine synth`)")
    ap.add_argument("--data", help="an existing folder data set instead")
    ap.add_argument("--ids", type=int, default=50)
    ap.add_argument("--per-id", type=int, default=20)
    ap.add_argument("--test-per-id", type=int, default=5)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--noise", type=float, default=0.0,
                    help="also: flip this fraction of all labels and report small-loss detection P/R")
    ap.add_argument("--noise-epochs", type=int, default=12)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if not root:
            if not args.comine:
                sys.exit("give --comine BIN or --data DIR")
            root = os.path.join(tmp, "synth")
            subprocess.run([args.comine, "synth", "--out", root, "--ids", str(args.ids), "--per-id",
                            str(args.per_id), "--size", str(args.size), "--seed", str(args.seed), "--quiet"],
                           check=True, stdout=subprocess.DEVNULL)
        x, y, k, classes = load_folder(root, args.size)
    test = torch.tensor(k >= k.max() + 1 - args.test_per_id)
    x = (x - 0.5) / 0.25
    xtr, ytr, xte, yte = x[~test], y[~test], x[test], y[test]
    print(f"data: {classes} identities, {xtr.shape[0]} train / {xte.shape[0]} test images, "
          f"{args.size}x{args.size}; chance {100.0 / classes:.1f}%")

    best = None
    for wd in (1e-4, 1e-3, 1e-2):
        lin = nn.Sequential(nn.Flatten(), nn.Linear(3 * args.size * args.size, classes))
        tr, te = train(lin, xtr, ytr, xte, yte, args.epochs, 1e-3, wd, False, gen)
        print(f"linear (raw pixels, weight decay {wd:g}): train {100 * tr:.1f}%  test {100 * te:.1f}%")
        best = te if best is None else max(best, te)
    cnn = TinyCNN(classes)
    tr, te = train(cnn, xtr, ytr, xte, yte, args.epochs, 3e-3, 5e-4, True, gen)
    print(f"tiny CNN (3 conv layers, {sum(p.numel() for p in cnn.parameters())} parameters): "
          f"train {100 * tr:.1f}%  test {100 * te:.1f}%")
    print(f"summary: linear best test {100 * best:.1f}%  vs  CNN test {100 * te:.1f}%")
    if args.noise > 0:
        p, r = noise_check(x, y, classes, args.noise, args.noise_epochs, gen)
        print(f"noise check: {100 * args.noise:.0f}% uniform flips over all {x.shape[0]} images, tiny CNN "
              f"{args.noise_epochs} epochs, largest mean loss flagged: precision {p:.3f} recall {r:.3f}")


if __name__ == "__main__":
    main()
