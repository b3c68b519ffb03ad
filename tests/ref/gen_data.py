"""gen_data.py: PyTorch reference for comine's image preprocessing (tests/test_data_resize.c).

Writes tests/fixtures/data_resize.bin: small uint8 images (stored as float32) and what
torch.nn.functional.interpolate makes of them after (x - 127.5) / 128:
- bilinear, align_corners=False (half-pixel centres), growing a 9x13 image to 20x20;
- area (adaptive average pooling), shrinking a 12x8 image by integer factors to 4x4;
- the mirrored bilinear result (torch.flip on the width axis).
comine's area weights equal adaptive average pooling exactly when the factor is an integer;
fractional factors are checked against a hand computation in test_data_image.c.
Run: /usr/bin/python3 tests/ref/gen_data.py [--out DIR] [--threads N]   (fixture.py: options)
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

import fixture

OUT = fixture.options(__doc__).out
rng = np.random.default_rng(20261128)
grow_src = rng.integers(0, 256, size=(9, 13, 3), dtype=np.uint8)
shrink_src = rng.integers(0, 256, size=(12, 8, 3), dtype=np.uint8)


def to_nchw(img):
    return torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1).unsqueeze(0)


def to_input(t):
    return ((t - 127.5) / 128.0).squeeze(0).permute(1, 2, 0).contiguous()


grow = to_input(F.interpolate(to_nchw(grow_src), size=(20, 20), mode="bilinear", align_corners=False))
shrink = to_input(F.interpolate(to_nchw(shrink_src), size=(4, 4), mode="area"))
grow_flip = torch.flip(grow, dims=[1])
out = os.path.join(OUT, "data_resize.bin")
fixture.write(out, {
    "grow_src": grow_src, "grow_20": grow, "grow_20_flip": grow_flip,
    "shrink_src": shrink_src, "shrink_4": shrink,
})
print("wrote", out)
