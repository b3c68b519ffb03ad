"""gen_nn_fused.py: PyTorch reference fixtures for comine's eval convolution with an epilogue
(comine_conv2d_forward_fused, tests/test_nn_fused.c): out = prelu(conv(x) + b) + residual,
and each part alone, for the geometries that take different kernels: grouped convolutions
with 2 channels per group (the direct kernel, with channel counts that exercise its vector
tails), dense 1x1 and 3x3 convolutions (oneDNN, with post-ops or an epilogue pass; with 32
channels or more and without AVX-512, Winograd F(2x2, 3x3), here with odd rows and columns
that leave part of the last tiles outside the image; stride 2 with 32 channels or more,
matrix products over the gathered windows without AVX-512; 1x1 with output channels a
multiple of 32, comine's kernel on AVX-512: pixels that leave partial tiles, and more
pixels than one chunk with 272 channels) and
depthwise ones (the direct kernel on AVX-512: strides 1 and 2, 3x3 and MobileFaceNet's 7x7
without padding, rows not a multiple of its 4 pixels; 24 channels, which only the AVX2
version takes) and a first layer on RGB images (the
direct kernel on AVX-512: 3 input channels, a whole block of 128 output channels and a part
of one, an odd number of output pixels; 16 output channels in blocks of 8 pixels and 32 in
blocks of 4, with and without padding, rows that end in a part of a block);
and the same with a PReLU on the input first (out_in, out_in_both).

Run: /usr/bin/python3 tests/ref/gen_nn_fused.py [--out DIR] [--threads N]   (fixture.py: options)
Writes tests/fixtures/nn_fused.bin.  Activations NHWC, parameters in PyTorch's layout.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

torch.manual_seed(4321)

# name: N, C, H, W, OC, K, stride, pad, groups, bias
CASES = {
    "pairs3x3": (2, 8, 6, 5, 8, 3, 1, 1, 4, 1),
    "pairs3x3_s2": (2, 16, 7, 7, 16, 3, 2, 1, 8, 0),
    "pairs3x3_wide": (1, 40, 4, 4, 40, 3, 1, 1, 20, 1),
    "pairs3x3_many": (1, 272, 3, 3, 272, 3, 1, 1, 136, 1),
    "dense1x1": (2, 16, 5, 5, 24, 1, 1, 0, 1, 1),
    "dense3x3": (2, 16, 6, 6, 16, 3, 1, 1, 1, 1),
    "dw3x3_s2": (2, 16, 7, 7, 16, 3, 2, 1, 16, 1),
    "dw3x3": (2, 32, 6, 5, 32, 3, 1, 1, 32, 1),
    "dw7x7_gdc": (3, 32, 7, 7, 32, 7, 1, 0, 32, 0),
    "dw3x3_s2_odd": (1, 48, 9, 11, 48, 3, 2, 1, 48, 1),
    "rgb3x3_s2": (2, 3, 9, 10, 64, 3, 2, 1, 1, 1),
    "rgb3x3_wide": (1, 3, 3, 5, 176, 3, 1, 1, 1, 0),
    "dw3x3_c24": (2, 24, 6, 7, 24, 3, 1, 1, 24, 1),
    "dense3x3_wide": (2, 32, 7, 5, 40, 3, 1, 1, 1, 1),
    "dense3x3_s2": (2, 32, 9, 7, 48, 3, 2, 1, 1, 1),
    "dense1x1_panels": (2, 40, 5, 7, 64, 1, 1, 0, 1, 1),
    "dense1x1_chunks": (3, 272, 9, 11, 96, 1, 1, 0, 1, 0),
    "rgb3x3_c16": (2, 3, 7, 21, 16, 3, 1, 1, 1, 1),
    "rgb3x3_c16_nopad": (1, 3, 5, 18, 16, 3, 1, 0, 1, 0),
    "rgb3x3_c32_s2": (2, 3, 9, 19, 32, 3, 2, 1, 1, 1),
    "dense3x3_c16_wf4": (3, 16, 13, 10, 32, 3, 1, 1, 1, 1),
    "dense3x3_c16_nobias": (2, 16, 9, 17, 16, 3, 1, 1, 1, 0),
}


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous()


def main():
    opts = fixture.options(__doc__)
    torch.set_num_threads(opts.threads)
    t = {}
    with torch.no_grad():
        for name, (N, C, H, W, OC, K, s, p, g, bias) in CASES.items():
            conv = torch.nn.Conv2d(C, OC, K, stride=s, padding=p, groups=g, bias=bool(bias)).double()
            x = torch.randn(N, C, H, W, dtype=torch.float64)
            alpha = torch.rand(OC, dtype=torch.float64) * 0.5 - 0.1
            y = conv(x)
            res = torch.randn_like(y)
            act = torch.where(y > 0, y, y * alpha.view(1, OC, 1, 1))
            t[name + ".meta"] = torch.tensor([N, C, H, W, OC, K, s, p, g, bias], dtype=torch.float32)
            t[name + ".x"] = nhwc(x).float()
            t[name + ".w"] = conv.weight.float()
            if bias:
                t[name + ".b"] = conv.bias.float()
            t[name + ".alpha"] = alpha.float()
            t[name + ".res"] = nhwc(res).float()
            t[name + ".out"] = nhwc(y).float()
            t[name + ".out_prelu"] = nhwc(act).float()
            t[name + ".out_res"] = nhwc(y + res).float()
            t[name + ".out_both"] = nhwc(act + res).float()
            # a PReLU on the input first (the depthwise kernel's input_prelu), its slopes
            # from a generator of their own so that the other tensors stay as they were
            gen = torch.Generator().manual_seed(1000 + len(t))
            alpha_in = torch.rand(C, generator=gen, dtype=torch.float64) * 0.5 - 0.1
            x_in = torch.where(x > 0, x, x * alpha_in.view(1, C, 1, 1))
            y_in = conv(x_in)
            act_in = torch.where(y_in > 0, y_in, y_in * alpha.view(1, OC, 1, 1))
            t[name + ".alpha_in"] = alpha_in.float()
            t[name + ".out_in"] = nhwc(y_in).float()
            t[name + ".out_in_both"] = nhwc(act_in + res).float()
    fixture.write(os.path.join(opts.out, "nn_fused.bin"), t)
    print("wrote nn_fused.bin (%d tensors)" % len(t))


if __name__ == "__main__":
    main()
