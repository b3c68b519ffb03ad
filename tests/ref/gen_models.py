"""gen_models.py: PyTorch reference for comine's backbones (tests/test_models_ref.c and the
parameter counts recorded in tests/test_models_file.c).

Defines insightface's iresnet (arcface_torch/backbones/iresnet.py, with a width multiplier
and input sizes 112/64/32) and MobileFaceNet (backbones/mobilefacenet.py, get_mbf: blocks
(1, 4, 6, 2), scale 2), then for
  - iresnet18, width 0.125, input 32, batch 4   -> tests/fixtures/models_iresnet18.bin
  - mobilefacenet, input 112, batch 4           -> tests/fixtures/models_mbf.bin
runs: an eval forward (initial running stats), a training forward (train-mode BN), the
ArcFace loss (s 32, m 0.5, easy margin, 10 classes, fixed given weight) per sample and its
mean, backward, then 3 SGD steps (lr 0.01, momentum 0.9, wd 5e-4) and the loss after them
(with lr 0.1 the loss falls from 10.6 to 0.02 in 3 steps, and the steps amplify the first
gradients' rounding errors tenfold in MobileFaceNet's last layers).

The weights, the input images and the head weight are NOT stored: they come from gen(),
a counter-based generator (FNV-1a of the tensor name, then splitmix64 of the element
index, in PyTorch's layout) that the C test implements bit for bit.  Exception: the
PReLU slopes of MobileFaceNet start at 1, given as init.<name>.  With slopes below 1, a
PReLU input within rounding distance of 0 takes one slope in one float32 computation and
the other in another; MobileFaceNet at 112 x 112, batch 4, has 12.6 million PReLU inputs,
and such flips alone put PyTorch's own float32 gradients up to 4% (of a tensor's max) away
from its float64 ones.  Slopes of 1 make the first gradients a smooth function of the
inputs, and the steps then move the slopes off 1.  The price: with slopes of 1, the
batch norm after each depthwise block's expanding convolution is followed, up to the next
batch norm, by linear layers only, so its gradients nearly cancel (about 30 tensors, where a
1% error stays under the C test's tolerance).  iresnet keeps gen_param's slopes: it has
110,000 PReLU inputs, and no flip shows.

The model runs in float64 from those float32 values, so that what is stored is the exact
result, rounded once to float32.  Stored whole, every element, in PyTorch's layout: the
embeddings (eval and train mode), the losses, the gradients after the first backward
("grad.<name>"), the parameters and running statistics after the 3 steps ("param3.<name>",
"buffer3.<name>"; gradient elements below 2^-30 of their summed terms, float64 rounding
noise where the sum cancels exactly, as 0); and per gradient the scale of the sums that make it
("gradterms.<name>", see TermScales), per parameter the same scale of the three gradients
weighed as they are in the parameter after the steps ("stepterms.<name>": lr * (2.71 g0 +
1.9 g1 + g2), momentum 0.9), and per running statistic the largest scale of what it
sums over the steps ("bufterms.<name>"); the C test's tolerances are relative to these.

Run: /usr/bin/python3 tests/ref/gen_models.py [--out DIR] [--threads N] [--fixtures-only]
(fixture.py: options; a minute or two)
"""
import math
import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

M64 = (1 << 64) - 1


# ---- the shared generator -------------------------------------------------------------
def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h ^= b
        h = (h * 0x100000001B3) & M64
    return h


def gen(name, n):
    """n values in [-1, 1): splitmix64(fnv1a64(name) + (k + 1) * golden) for k < n."""
    with np.errstate(over="ignore"):
        k = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(fnv1a64(name)) + k * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)
    return 2.0 * u - 1.0


def gen_param(name, shape):
    """The value rule the C test repeats: conv U(+-sqrt(6/fan_in)), linear U(+-1/sqrt(in)),
    1-d weights 0.75 + 0.25 u, 1-d biases 0.1 u."""
    n = int(np.prod(shape))
    u = gen(name, n)
    if len(shape) == 4:
        fan_in = shape[1] * shape[2] * shape[3]
        v = u * math.sqrt(6.0 / fan_in)
    elif len(shape) == 2:
        v = u / math.sqrt(shape[1])
    elif name.endswith(".bias"):
        v = 0.1 * u
    else:
        v = 0.75 + 0.25 * u
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


# ---- insightface's iresnet, with a width multiplier and input size ----------------------
def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class IBasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.bn1(x)
        out = self.conv1(out)
        out = self.bn2(out)
        out = self.prelu(out)
        out = self.conv2(out)
        out = self.bn3(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        return out + identity


def scaled(c, w):
    return max(1, int(math.floor(c * w + 0.5)))


class IResNet(nn.Module):
    def __init__(self, layers, width=1.0, input_size=112, dropout=0.0, num_features=512):
        super().__init__()
        self.inplanes = scaled(64, width)
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes, eps=1e-05)
        self.prelu = nn.PReLU(self.inplanes)
        self.layer1 = self._make_layer(scaled(64, width), layers[0])
        self.layer2 = self._make_layer(scaled(128, width), layers[1])
        self.layer3 = self._make_layer(scaled(256, width), layers[2])
        self.layer4 = self._make_layer(scaled(512, width), layers[3])
        c = scaled(512, width)
        self.final_hw = input_size // 16
        self.bn2 = nn.BatchNorm2d(c, eps=1e-05)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(c * self.final_hw * self.final_hw, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-05)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False

    def _make_layer(self, planes, blocks):
        downsample = nn.Sequential(conv1x1(self.inplanes, planes, 2), nn.BatchNorm2d(planes, eps=1e-05))
        layers = [IBasicBlock(self.inplanes, planes, 2, downsample)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(IBasicBlock(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.bn2(x)
        x = torch.flatten(x, 1)
        x = self.dropout(x)
        x = self.fc(x)
        return self.features(x)


IRESNET_LAYERS = {"iresnet18": [2, 2, 2, 2], "iresnet34": [3, 4, 6, 3], "iresnet50": [3, 4, 14, 3],
                  "iresnet100": [3, 13, 30, 3]}


# ---- insightface's MobileFaceNet ---------------------------------------------------------
class Flatten(nn.Module):
    def forward(self, x):
        return x.view(x.size(0), -1)


class ConvBlock(nn.Module):
    def __init__(self, in_c, out_c, kernel=(1, 1), stride=(1, 1), padding=(0, 0), groups=1):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_c, out_c, kernel, groups=groups, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(num_features=out_c), nn.PReLU(num_parameters=out_c))

    def forward(self, x):
        return self.layers(x)


class LinearBlock(nn.Module):
    def __init__(self, in_c, out_c, kernel=(1, 1), stride=(1, 1), padding=(0, 0), groups=1):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_c, out_c, kernel, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(num_features=out_c))

    def forward(self, x):
        return self.layers(x)


class DepthWise(nn.Module):
    def __init__(self, in_c, out_c, residual=False, kernel=(3, 3), stride=(2, 2), padding=(1, 1), groups=1):
        super().__init__()
        self.residual = residual
        self.layers = nn.Sequential(
            ConvBlock(in_c, out_c=groups, kernel=(1, 1), padding=(0, 0), stride=(1, 1)),
            ConvBlock(groups, groups, groups=groups, kernel=kernel, padding=padding, stride=stride),
            LinearBlock(groups, out_c, kernel=(1, 1), padding=(0, 0), stride=(1, 1)))

    def forward(self, x):
        y = self.layers(x)
        return x + y if self.residual else y


class Residual(nn.Module):
    def __init__(self, c, num_block, groups, kernel=(3, 3), stride=(1, 1), padding=(1, 1)):
        super().__init__()
        self.layers = nn.Sequential(*[DepthWise(c, c, True, kernel, stride, padding, groups)
                                      for _ in range(num_block)])

    def forward(self, x):
        return self.layers(x)


class GDC(nn.Module):
    def __init__(self, embedding_size):
        super().__init__()
        self.layers = nn.Sequential(
            LinearBlock(512, 512, groups=512, kernel=(7, 7), stride=(1, 1), padding=(0, 0)),
            Flatten(), nn.Linear(512, embedding_size, bias=False), nn.BatchNorm1d(embedding_size))

    def forward(self, x):
        return self.layers(x)


class MobileFaceNet(nn.Module):
    def __init__(self, num_features=512, blocks=(1, 4, 6, 2), scale=2):
        super().__init__()
        s = scale
        self.layers = nn.ModuleList()
        self.layers.append(ConvBlock(3, 64 * s, kernel=(3, 3), stride=(2, 2), padding=(1, 1)))
        self.layers.append(ConvBlock(64 * s, 64 * s, kernel=(3, 3), stride=(1, 1), padding=(1, 1), groups=64))
        self.layers.extend([
            DepthWise(64 * s, 64 * s, kernel=(3, 3), stride=(2, 2), padding=(1, 1), groups=128),
            Residual(64 * s, num_block=blocks[1], groups=128),
            DepthWise(64 * s, 128 * s, kernel=(3, 3), stride=(2, 2), padding=(1, 1), groups=256),
            Residual(128 * s, num_block=blocks[2], groups=256),
            DepthWise(128 * s, 128 * s, kernel=(3, 3), stride=(2, 2), padding=(1, 1), groups=512),
            Residual(128 * s, num_block=blocks[3], groups=256),
        ])
        self.conv_sep = ConvBlock(128 * s, 512, kernel=(1, 1), stride=(1, 1), padding=(0, 0))
        self.features = GDC(num_features)

    def forward(self, x):
        for f in self.layers:
            x = f(x)
        return self.features(self.conv_sep(x))


# ---- the ArcFace head (easy margin) -------------------------------------------------------
def arcface_loss(emb, weight, labels, s=32.0, m=0.5):
    cos = nn.functional.normalize(emb) @ nn.functional.normalize(weight).t()
    cos = cos.clamp(-1.0, 1.0)
    sin = torch.sqrt((1.0 - cos * cos).clamp(min=0.0))
    phi = cos * math.cos(m) - sin * math.sin(m)
    phi = torch.where(cos > 0, phi, cos)
    onehot = nn.functional.one_hot(labels, weight.shape[0]).bool()
    logits = torch.where(onehot, phi, cos) * s
    return nn.functional.cross_entropy(logits, labels, reduction="none")


def store(out, key, name, t):
    out[key + "." + name] = t.detach().clone()


class TermScales:
    """Records, during one backward, the scale of the sums that make each parameter gradient:
    a gradient element is a sum of products (dy * x over batch and positions), and fp32
    rounding errs in proportion to the sum of their magnitudes, not to the result (which
    may cancel to nothing: the gradient of a batch-norm bias followed by a convolution and
    another batch norm is exactly 0).  scale: per trainable parameter, the max over its
    elements of sum |terms|; per batch-norm running statistic, the max over channels of the
    batch's mean |x| (running_mean) or mean x^2 (running_var), what their sums add up."""

    def __init__(self, model):
        self.inputs, self.scale, self.hooks = {}, {}, []
        for mname, mod in model.named_modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.PReLU)):
                self.hooks.append(mod.register_forward_hook(self._forward(mname)))
                self.hooks.append(mod.register_full_backward_hook(self._backward(mname)))

    def _forward(self, mname):
        def hook(mod, inp, out):
            x = inp[0].detach()
            self.inputs[mname] = x
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                dims = [d for d in range(x.dim()) if d != 1]
                self.scale[mname + ".running_mean"] = float(x.abs().mean(dim=dims).max())
                self.scale[mname + ".running_var"] = float((x * x).mean(dim=dims).max())
        return hook

    def _backward(self, mname):
        def hook(mod, grad_in, grad_out):
            x, dy = self.inputs[mname].abs(), grad_out[0].detach().abs()
            s = {}
            if isinstance(mod, nn.Conv2d):
                s["weight"] = torch.nn.grad.conv2d_weight(x, mod.weight.shape, dy, mod.stride, mod.padding,
                                                          mod.dilation, mod.groups)
            elif isinstance(mod, nn.Linear):
                s["weight"] = dy.t() @ x
                s["bias"] = dy.sum(0)
            elif isinstance(mod, nn.PReLU):
                neg = self.inputs[mname].clamp(max=0).abs()
                s["weight"] = (dy * neg).sum(dim=[d for d in range(dy.dim()) if d != 1])
            else:
                xin = self.inputs[mname]
                dims = [d for d in range(xin.dim()) if d != 1]
                mean = xin.mean(dim=dims, keepdim=True)
                var = xin.var(dim=dims, unbiased=False, keepdim=True)
                xhat = (xin - mean) / torch.sqrt(var + mod.eps)
                s["weight"] = (dy * xhat.abs()).sum(dim=dims)
                s["bias"] = dy.sum(dim=dims)
            for pname, v in s.items():
                p = getattr(mod, pname, None)
                if p is not None and p.requires_grad:
                    self.scale[(mname + "." if mname else "") + pname] = float(v.max())
        return hook

    def remove(self):
        for h in self.hooks:
            h.remove()


def run_case(path, model, N, S, emb_dim, classes=10, prelu_start=None):
    """prelu_start: a value for every PReLU slope instead of gen_param's rule; the fixture then
    gives them as init.<name>."""
    torch.manual_seed(0)
    out = {}
    prelus = {mname + ".weight" for mname, mod in model.named_modules() if isinstance(mod, nn.PReLU)}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                if prelu_start is not None and name in prelus:
                    p.fill_(prelu_start)
                    out["init." + name] = p.detach().clone()
                else:
                    p.copy_(gen_param(name, tuple(p.shape)))
    # float64 from the float32 values: the stored results are the exact ones, rounded once
    model = model.double()
    x = torch.from_numpy(gen("input", N * 3 * S * S).astype(np.float32).reshape(N, 3, S, S)).double()
    head = gen("head.weight", classes * emb_dim).astype(np.float32).reshape(classes, emb_dim)
    head = torch.from_numpy(head).double()
    labels = torch.tensor([(3 + 7 * i) % classes for i in range(N)])
    out["labels"] = labels.float()

    model.eval()
    with torch.no_grad():
        out["emb_eval"] = model(x)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    # what the first three gradients weigh in the parameters after 3 steps: lr * (2.71, 1.9, 1)
    weigh = [0.01 * (1 + 0.9 + 0.81), 0.01 * (1 + 0.9), 0.01]
    step_terms, buf_terms = {}, {}
    for step in range(4):
        opt.zero_grad()
        terms = TermScales(model) if step < 3 else None
        emb = model(x)
        loss = arcface_loss(emb, head, labels)
        if step == 0:
            out["emb"] = emb
            out["loss"] = loss
            out["loss_mean"] = loss.mean().reshape(())
        if step == 3:
            out["loss_after3"] = loss
            out["loss_mean_after3"] = loss.mean().reshape(())
            break
        loss.mean().backward()
        terms.remove()
        for name, p in model.named_parameters():
            if p.requires_grad:
                if step == 0:
                    # float64 rounding noise of a sum that cancels exactly (see TermScales): 0
                    grad = p.grad.detach().clone()
                    grad[grad.abs() < 2.0 ** -30 * terms.scale[name]] = 0
                    store(out, "grad", name, grad)
                    out["gradterms." + name] = np.array(terms.scale[name], dtype=np.float32)
                step_terms[name] = step_terms.get(name, 0.0) + weigh[step] * terms.scale[name]
        for name, b in model.named_buffers():
            if name in terms.scale:
                buf_terms[name] = max(buf_terms.get(name, 0.0), terms.scale[name])
        opt.step()
    for name, p in model.named_parameters():
        store(out, "param3", name, p)
        if name in step_terms:
            out["stepterms." + name] = np.array(step_terms[name], dtype=np.float32)
    for name, b in model.named_buffers():
        if name.endswith("num_batches_tracked"):
            continue
        store(out, "buffer3", name, b)
        out["bufterms." + name] = np.array(buf_terms[name], dtype=np.float32)
    fixture.write(path, out)
    size = os.path.getsize(path)
    print("%s: %d tensors, %d bytes, loss %.6f -> %.6f after 3 steps" %
          (os.path.basename(path), len(out), size, float(out["loss_mean"]), float(out["loss_mean_after3"])))


def main():
    opts = fixture.options(__doc__)
    out_dir = opts.out
    run_case(os.path.join(out_dir, "models_iresnet18.bin"),
             IResNet(IRESNET_LAYERS["iresnet18"], width=0.125, input_size=32), N=4, S=32, emb_dim=512)
    run_case(os.path.join(out_dir, "models_mbf.bin"), MobileFaceNet(), N=4, S=112, emb_dim=512, prelu_start=1.0)
    if opts.fixtures_only:
        return
    print("full width, 112 x 112, 512-d: parameters (all / trainable), FLOPs per image (2 x MACs):")
    models = [(name, IResNet(layers)) for name, layers in IRESNET_LAYERS.items()]
    models.append(("mobilefacenet", MobileFaceNet()))
    models.append(("iresnet18 w0.25 in64", IResNet(IRESNET_LAYERS["iresnet18"], width=0.25, input_size=64)))
    for name, mdl in models:
        total = sum(p.numel() for p in mdl.parameters())
        train = sum(p.numel() for p in mdl.parameters() if p.requires_grad)
        print("  %-20s %d / %d, %d FLOPs" % (name, total, train, flops(mdl, 64 if "in64" in name else 112)))


def flops(model, size):
    """2 x multiply-accumulates of the convolutions and linear layers for one image."""
    macs = [0]

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            macs[0] += out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
        else:
            macs[0] += mod.in_features * mod.out_features
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in hs:
        h.remove()
    return 2 * macs[0]


if __name__ == "__main__":
    main()
