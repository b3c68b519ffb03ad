"""gen_nn.py: PyTorch reference fixtures for comine's layers (tests/test_nn_layers.c)
and optimizer (tests/test_nn_optim.c).

Run: /usr/bin/python3 tests/ref/gen_nn.py [--out DIR] [--threads N]   (fixture.py: options)
Writes tests/fixtures/nn_layers.bin and tests/fixtures/nn_optim.bin.  Activations are
written NHWC (comine's layout), parameters in PyTorch's layout.  Gradients use the
(out * dout).sum() trick with a random dout.
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

torch.manual_seed(1234)


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous() if t.dim() == 4 else t


# name: N, C, H, W, OC, K, stride, pad, groups, bias
CONV_CASES = {
    "conv3x3_s1": (2, 4, 6, 6, 5, 3, 1, 1, 1, 0),
    "conv3x3_s2_bias": (2, 3, 7, 7, 4, 3, 2, 1, 1, 1),
    "conv1x1_s2": (2, 4, 6, 6, 6, 1, 2, 0, 1, 0),
    "dw3x3": (2, 6, 5, 5, 6, 3, 1, 1, 6, 0),
    "gdc7x7": (2, 8, 7, 7, 8, 7, 1, 0, 8, 0),
    "grouped3x3": (3, 6, 5, 4, 4, 3, 1, 1, 2, 1),
}


def conv_cases(t):
    for name, (N, C, H, W, OC, K, s, p, g, bias) in CONV_CASES.items():
        conv = torch.nn.Conv2d(C, OC, K, stride=s, padding=p, groups=g, bias=bool(bias))
        x = torch.randn(N, C, H, W, requires_grad=True)
        out = conv(x)
        dout = torch.randn_like(out)
        (out * dout).sum().backward()
        t[name + ".meta"] = torch.tensor([N, C, H, W, OC, K, s, p, g, bias], dtype=torch.float32)
        t[name + ".x"] = nhwc(x)
        t[name + ".w"] = conv.weight
        if bias:
            t[name + ".b"] = conv.bias
            t[name + ".db"] = conv.bias.grad
        t[name + ".out"] = nhwc(out)
        t[name + ".dout"] = nhwc(dout)
        t[name + ".dx"] = nhwc(x.grad)
        t[name + ".dw"] = conv.weight.grad


def bn_cases(t):
    for name, shape in (("bn2d", (3, 5, 4, 4)), ("bn1d", (6, 7))):
        C = shape[1]
        bn = torch.nn.BatchNorm2d(C) if len(shape) == 4 else torch.nn.BatchNorm1d(C)
        with torch.no_grad():
            bn.weight.copy_(torch.rand(C) + 0.5)
            bn.bias.copy_(torch.randn(C))
            bn.running_mean.copy_(torch.randn(C))
            bn.running_var.copy_(torch.rand(C) + 0.5)
        # an offset and a spread per channel: the statistics must be stable
        scale = (torch.rand(C) * 3 + 0.5).view(1, C, *([1] * (len(shape) - 2)))
        offset = (torch.randn(C) * 4 + 10).view(1, C, *([1] * (len(shape) - 2)))
        x = (torch.randn(*shape) * scale + offset).requires_grad_(True)
        t[name + ".x"] = nhwc(x)
        t[name + ".gamma"] = bn.weight
        t[name + ".beta"] = bn.bias
        t[name + ".running_mean0"] = bn.running_mean.clone()
        t[name + ".running_var0"] = bn.running_var.clone()
        bn.eval()
        t[name + ".out_eval"] = nhwc(bn(x))
        bn.train()
        out = bn(x)
        dout = torch.randn_like(out)
        (out * dout).sum().backward()
        t[name + ".out"] = nhwc(out)
        t[name + ".dout"] = nhwc(dout)
        t[name + ".dx"] = nhwc(x.grad)
        t[name + ".dgamma"] = bn.weight.grad
        t[name + ".dbeta"] = bn.bias.grad
        t[name + ".running_mean"] = bn.running_mean
        t[name + ".running_var"] = bn.running_var


def act_cases(t):
    x = torch.randn(2, 5, 3, 3, requires_grad=True)
    prelu = torch.nn.PReLU(5)
    with torch.no_grad():
        prelu.weight.copy_(torch.rand(5) * 0.3 + 0.1)
    out = prelu(x)
    dout = torch.randn_like(out)
    (out * dout).sum().backward()
    t["prelu.x"] = nhwc(x)
    t["prelu.alpha"] = prelu.weight
    t["prelu.out"] = nhwc(out)
    t["prelu.dout"] = nhwc(dout)
    t["prelu.dx"] = nhwc(x.grad)
    t["prelu.dalpha"] = prelu.weight.grad

    x = torch.randn(3, 4, 2, 5, requires_grad=True)
    out = torch.relu(x)
    dout = torch.randn_like(out)
    (out * dout).sum().backward()
    t["relu.x"] = nhwc(x)
    t["relu.out"] = nhwc(out)
    t["relu.dout"] = nhwc(dout)
    t["relu.dx"] = nhwc(x.grad)


def linear_case(t):
    lin = torch.nn.Linear(6, 3)
    x = torch.randn(4, 6, requires_grad=True)
    out = lin(x)
    dout = torch.randn_like(out)
    (out * dout).sum().backward()
    t["linear.x"] = x
    t["linear.w"] = lin.weight
    t["linear.b"] = lin.bias
    t["linear.out"] = out
    t["linear.dout"] = dout
    t["linear.dx"] = x.grad
    t["linear.dw"] = lin.weight.grad
    t["linear.db"] = lin.bias.grad


def optim_cases(t):
    p = torch.nn.Parameter(torch.randn(10))
    t["sgd.p0"] = p.detach().clone()
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=5e-4)
    for step in range(3):
        g = torch.randn(10)
        t["sgd.g%d" % step] = g
        p.grad = g.clone()
        opt.step()
        t["sgd.p%d" % (step + 1)] = p.detach().clone()

    # schedules at integer epochs 0..11 through PyTorch's schedulers (stepped per epoch);
    # the cosine ends at epoch 11 (PyTorch's restarts past T_max, comine stays at min_lr)
    def run(make, warmup=0.0):
        q = torch.nn.Parameter(torch.zeros(1))
        o = torch.optim.SGD([q], lr=0.1)
        sched = make(o)
        lrs = []
        for e in range(12):
            w = min(1.0, e / warmup) if warmup > 0 else 1.0
            lrs.append(o.param_groups[0]["lr"] * w)
            o.step()
            sched.step()
        return torch.tensor(lrs)

    t["lr.constant"] = run(lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 1.0))
    t["lr.step"] = run(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[4, 8], gamma=0.1))
    t["lr.cosine"] = run(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=11, eta_min=0.001))
    t["lr.cosine_warmup"] = run(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=11, eta_min=0.001),
                                warmup=2.0)
    t["lr.step_warmup"] = run(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[4, 8], gamma=0.1),
                              warmup=3.0)


def main():
    out_dir = fixture.options(__doc__).out
    layers = {}
    conv_cases(layers)
    bn_cases(layers)
    act_cases(layers)
    linear_case(layers)
    fixture.write(os.path.join(out_dir, "nn_layers.bin"), layers)
    optim = {}
    optim_cases(optim)
    fixture.write(os.path.join(out_dir, "nn_optim.bin"), optim)
    print("wrote nn_layers.bin (%d tensors), nn_optim.bin (%d tensors)" % (len(layers), len(optim)))


if __name__ == "__main__":
    main()
