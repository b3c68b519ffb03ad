"""torch_bench.py: PyTorch's side of `comine bench` (bench/run.sh runs both alternately).

The same networks as comine (insightface's iresnet with a width multiplier and input size,
and MobileFaceNet, taken from tests/ref/gen_models.py), an ArcFace head (s 64, m 0.5,
per-sample losses), SGD (momentum 0.9, weight decay 5e-4) on backbone and head, in
PyTorch's fastest CPU configuration here: oneDNN on, channels_last, N threads.
  --mode arcface:  one network, plain ArcFace on the whole batch;
  --mode comining: two peers on the same batch, the Co-Mining selection (drop rate 0.2:
                   small-loss sets, C re-weighted by margin m + 0.2, exchanged samples plain,
                   N dropped), as comine's step.
Times training steps and eval forwards (torch.inference_mode) after warm-up steps; prints
medians and the same JSON keys as `comine bench --json`.  FLOPs are analytic: 2 x MACs of
the convolutions and linear layers, backward = 2 x forward, plus the head's products.

Run: MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 \
     /usr/bin/python3 bench/torch_bench.py --net iresnet18 --input 112 --batch 32 --classes 10575
The two variables keep glibc's malloc from giving PyTorch's activations back to the system
and faulting them in again at every forward, which slowed PyTorch several times over on
these VMs (docs/PERFORMANCE_ZEN5.md); bench/run.sh sets them for both sides.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
from gen_models import IRESNET_LAYERS, IResNet, MobileFaceNet, flops  # noqa: E402

S_SCALE, MARGIN, EXTRA_MARGIN, DROP_RATE = 64.0, 0.5, 0.2, 0.2


def arcface_losses(emb, weight, labels, margin):
    """Per-sample ArcFace loss; margin is a scalar or a per-sample tensor (easy margin off,
    insightface's fallback for theta + m > pi)."""
    cos = F.linear(F.normalize(emb), F.normalize(weight)).clamp(-1.0, 1.0)
    target = cos.gather(1, labels[:, None]).squeeze(1)
    theta = torch.acos(target.clamp(-1.0 + 1e-7, 1.0 - 1e-7))
    m = margin if torch.is_tensor(margin) else torch.full_like(target, margin)
    psi = torch.where(theta + m < math.pi, torch.cos(theta + m), target - m * torch.sin(m))
    logits = cos.scatter(1, labels[:, None], psi[:, None]) * S_SCALE
    return F.cross_entropy(logits, labels, reduction="none")


def select(loss_a, loss_b):
    """Co-Mining's sets from the two peers' plain losses: per peer the keep smallest losses;
    returns, per peer, the margins and weights of every sample."""
    n = loss_a.numel()
    keep = min(max(int(round((1.0 - DROP_RATE) * n)), 1), n)
    ga = torch.zeros(n, dtype=torch.bool)
    gb = torch.zeros(n, dtype=torch.bool)
    ga[torch.argsort(loss_a, stable=True)[:keep]] = True
    gb[torch.argsort(loss_b, stable=True)[:keep]] = True
    clean = ga & gb
    out = []
    for exchanged in (gb & ~ga, ga & ~gb):  # A learns XA = GB \ GA, B learns XB = GA \ GB
        used = clean | exchanged
        weight = used.float() / max(int(used.sum()), 1)
        margin = torch.where(clean, torch.tensor(MARGIN + EXTRA_MARGIN), torch.tensor(MARGIN))
        out.append((margin, weight))
    return out


class Peer:
    def __init__(self, args, seed):
        torch.manual_seed(seed)
        if args.net == "mobilefacenet":
            self.model = MobileFaceNet()
        else:
            self.model = IResNet(IRESNET_LAYERS[args.net], width=args.width, input_size=args.input)
        if args.memory_format == "channels_last":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.head = torch.nn.Parameter(0.01 * torch.randn(args.classes, 512))
        params = [p for p in self.model.parameters() if p.requires_grad] + [self.head]
        self.opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)


def train_step(peers, images, labels):
    embs = [p.model(images) for p in peers]
    if len(peers) == 1:
        losses = [arcface_losses(embs[0], peers[0].head, labels, MARGIN).mean()]
    else:
        with torch.no_grad():
            plain = [arcface_losses(e.detach(), p.head.detach(), labels, MARGIN) for p, e in zip(peers, embs)]
        forms = select(plain[0], plain[1])
        losses = [(arcface_losses(e, p.head, labels, m) * w).sum() for p, e, (m, w) in zip(peers, embs, forms)]
    for p in peers:
        p.opt.zero_grad(set_to_none=False)
    sum(losses).backward()
    for p in peers:
        p.opt.step()


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", default="iresnet18", choices=list(IRESNET_LAYERS) + ["mobilefacenet"])
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--input", type=int, default=112)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--classes", type=int, default=10575)
    ap.add_argument("--mode", default="arcface", choices=["arcface", "comining"])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup-steps", "--warmup", dest="warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--memory-format", choices=["contiguous", "channels_last"], default="channels_last",
                    help="layout of the model and input (channels_last: PyTorch's faster one on this CPU)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.mkldnn.enabled = True

    peers = [Peer(args, k) for k in range(2 if args.mode == "comining" else 1)]
    g = torch.Generator().manual_seed(1)
    images = (torch.rand(args.batch, 3, args.input, args.input, generator=g) * 2 - 1).contiguous(
        memory_format=torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format)
    labels = torch.randint(0, args.classes, (args.batch,), generator=g)

    for _ in range(args.warmup):
        train_step(peers, images, labels)
    times, cpu = [], []
    for _ in range(args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        train_step(peers, images, labels)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    model = peers[0].model
    model.eval()
    infer = []
    with torch.inference_mode():
        model(images)
        for _ in range(args.steps):
            t0 = time.perf_counter()
            model(images)
            infer.append(time.perf_counter() - t0)

    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    fwd = flops(model, args.input)
    step_flops = len(peers) * (3.0 * fwd * args.batch + 6.0 * args.batch * args.classes * 512)
    t_train, t_infer = median(times), median(infer)
    res = {
        "net": args.net, "width": args.width, "input": args.input, "batch": args.batch, "classes": args.classes,
        "mode": args.mode, "threads": torch.get_num_threads(), "steps": args.steps, "params": n_params,
        "gflop_per_image": fwd * 1e-9, "train_step_s": t_train, "train_step_min_s": min(times),
        "train_step_max_s": max(times), "train_step_cpu_s": median(cpu), "infer_batch_s": t_infer,
        "train_images_per_s": args.batch / t_train, "infer_images_per_s": args.batch / t_infer,
        "gflops": step_flops / t_train * 1e-9, "infer_gflops": fwd * args.batch / t_infer * 1e-9,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    if args.json:
        print(json.dumps(res))
        return
    print("%s width %g, %dx%d, batch %d, %d classes, mode %s, %d thread(s), torch %s" % (
        args.net, args.width, args.input, args.input, args.batch, args.classes, args.mode, res["threads"],
        torch.__version__))
    print("parameters (one network): %d, forward %.3f GFLOP/image" % (n_params, fwd * 1e-9))
    print("training:  %8.1f images/s  (step %.1f ms median)  %.1f GFLOP/s" % (
        res["train_images_per_s"], 1e3 * t_train, res["gflops"]))
    print("inference: %8.1f images/s  (batch %.1f ms median)  %.1f GFLOP/s" % (
        res["infer_images_per_s"], 1e3 * t_infer, res["infer_gflops"]))
    print("peak memory: %.1f MiB" % res["peak_rss_mb"])


if __name__ == "__main__":
    main()
