"""fixture.py: write comine's test fixture files (read by tests/fixture.h).

Format (little-endian): b"CMFX", u32 version (1), u32 count; then per tensor:
u32 name length, name bytes (UTF-8), u32 ndim, ndim x u32 dims, prod(dims) x f32.
Integers (labels) are stored as float32 too; scalars as ndim 0.

Every generator takes the same options (options() below): --out DIR (default tests/fixtures),
--threads N (torch's intra-op threads, default 1, as the committed fixtures were made) and
--fixtures-only (leave out what a generator computes besides the fixtures: gen_models.py's
table of model sizes); tests/ref/check_fixtures.py uses them to regenerate the fixtures
elsewhere and compare.
"""
import argparse
import os
import struct

import numpy as np

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")


def options(doc):
    """Parses the options, sets torch's thread count, makes the folder; returns the options
    (.out, .threads, .fixtures_only)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=FIXTURES, help="folder to write the fixtures to (default tests/fixtures)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--fixtures-only", action="store_true", help="write the fixtures, compute nothing else")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    return args


def write(path, tensors):
    """tensors: dict name -> array-like (torch tensors are detached and moved to numpy)."""
    with open(path, "wb") as f:
        f.write(b"CMFX")
        f.write(struct.pack("<II", 1, len(tensors)))
        for name, t in tensors.items():
            if hasattr(t, "detach"):
                t = t.detach().cpu().numpy()
            a = np.ascontiguousarray(np.asarray(t, dtype=np.float32))
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<I", a.ndim))
            for d in a.shape:
                f.write(struct.pack("<I", d))
            f.write(a.astype("<f4").tobytes())
