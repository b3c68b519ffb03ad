#!/usr/bin/python3
"""tau_split.py: where the cross-fitted noise-rate estimate errs (docs/CROSSFIT.md, "What is left
of the error").

    experiments/tau_split.py [--bin COMINE] [--seeds 1,2] WORK NAME=LIST [NAME=LIST ...]

For each noisy list (written by `comine corrupt`, so its third column is the truth) and each
seed of the folds, runs `comine estimate --data LIST --out WORK/NAME_sSEED` with the settings of
`experiments/run.sh crossfit` (a finished estimate is read back and ranked again), and splits
its p-values by the truth at lambda 0.8, where the estimate is #{p > 0.8} / (n T(0.8)):
  - the wrong labels' part, tau (their share above 0.8 / T(0.8) - 1),
  - the right labels' part, (1 - tau) (their share above 0.8) / T(0.8),
and, for the right labels above 0.8 against the others, how many of their label's faces in the
fold its network trained on were right.  With two seeds or more: the correlation between two
seeds of "a wrong sample's p is above 0.8".  Prints a markdown table.  Uses numpy only.
"""
import argparse
import csv
import os
import re
import subprocess
import sys

import numpy as np


def estimate(binary, work, name, lst, seed):
    out = os.path.join(work, f"{name}_s{seed}")
    samples = out + ".samples.csv"
    cmd = [binary, "estimate", "--data", lst, "--out", out, "--net", "iresnet18", "--width", "0.25",
           "--input", "64", "--batch", "64", "--lr", "0.1", "--s", "32", "--m", "0.2", "--epochs", "8",
           "--seed", str(seed), "--threads", "2", "--decode-threads", "1", "--samples", samples]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"tau_split: {' '.join(cmd)} failed:\n{r.stderr}")
    text = r.stdout + r.stderr
    t = re.search(r"above 0\.8 with probability ([0-9.]+) \(([0-9.]+) where wrong samples fall on labels at random, "
                  r"([0-9.]+) on images at random", text)
    e = re.search(r"tau estimate: ([0-9.]+) \(crossfit; Storey's lambda ([0-9.]+)\)", text)
    if not t or not e:
        sys.exit(f"tau_split: no estimate or null law in the output of {' '.join(cmd)}")
    p, truth, path = [], [], []
    with open(samples) as f:
        for row in csv.DictReader(f):
            p.append(float(row["p"]) if row["p"] else np.nan)
            truth.append(int(row["truth"]))
            path.append(row["path"])
    # the fold each sample's network trained on: half h's noise report lists its training samples
    trained_by = {}
    for h in (1, 2):
        with open(os.path.join(out, f"half{h}", "noise.csv")) as f:
            for row in csv.DictReader(f):
                trained_by[row["path"]] = h
    return {"tau": float(e.group(1)), "lambda": float(e.group(2)), "T": float(t.group(1)),
            "p": np.array(p), "wrong": np.array(truth) > 0, "path": path,
            "half": np.array([trained_by.get(x, 0) for x in path])}


def labels_of(lst):
    with open(lst) as f:
        return np.array([int(line.split("\t")[1]) for line in f if line.strip()])


def split(r, labels):
    p, wrong = r["p"], r["wrong"]
    ok = np.isfinite(p)
    n, tw = ok.sum(), (wrong & ok).sum() / ok.sum()
    ws = ((p > 0.8) & ok & wrong).sum() / (ok & wrong).sum()
    rs = ((p > 0.8) & ok & ~wrong).sum() / (ok & ~wrong).sum()
    true = wrong.mean()
    e8 = ((p > 0.8) & ok).sum() / (n * r["T"]) - true
    # right samples above 0.8: is their label's training fold (the other half) mostly wrong?
    mostly = []
    for i in np.where(ok & ~wrong)[0]:
        same = (labels == labels[i]) & (r["half"] != r["half"][i]) & (r["half"] > 0)
        mostly.append((p[i] > 0.8, (~wrong[same]).sum() < same.sum() / 2))
    m = np.array(mostly, dtype=bool)
    hi = m[:, 0]
    return (true, e8, ws, tw * (ws / r["T"] - 1), rs, (1 - tw) * rs / r["T"],
            m[hi, 1].mean() if hi.any() else np.nan, m[~hi, 1].mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "release", "comine"))
    ap.add_argument("--seeds", default="1")
    ap.add_argument("work")
    ap.add_argument("sets", nargs="+", help="NAME=LIST")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    print("| set, fold seed | error (Storey's lambda) | error at lambda 0.8 | wrong labels above 0.8 / T(0.8): "
          "their part | right labels above 0.8: their part | training fold mostly wrong: right above 0.8 / "
          "the other right |")
    print("|---|---|---|---|---|---|")
    corr = []
    for spec in a.sets:
        name, lst = spec.split("=", 1)
        labels = labels_of(lst)
        runs = [(s, estimate(a.bin, a.work, name, lst, s)) for s in a.seeds.split(",")]
        for s, r in runs:
            true, e8, ws, wpart, rs, rpart, mh, mr = split(r, labels)
            print(f"| {name}, {s} | {r['tau'] - true:+.3f} ({r['lambda']:.2f}) | {e8:+.3f} | {ws:.3f} / {r['T']:.3f}: "
                  f"{wpart:+.3f} | {100 * rs:.1f}%: {rpart:+.3f} | {mh:.2f} / {mr:.2f} |")
        if len(runs) >= 2:
            x, y = runs[0][1], runs[1][1]
            ok = np.isfinite(x["p"]) & np.isfinite(y["p"]) & x["wrong"]
            corr.append((name, np.corrcoef(x["p"][ok] > 0.8, y["p"][ok] > 0.8)[0, 1]))
    for name, c in corr:
        print(f"\n{name}: a wrong sample's p above 0.8, correlation between the first two seeds {c:.2f}")


if __name__ == "__main__":
    main()
