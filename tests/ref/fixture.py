"""fixture.py: write comine's test fixture files (read by tests/fixture.h).

Format (little-endian): b"CMFX", u32 version (1), u32 count; then per tensor:
u32 name length, name bytes (UTF-8), u32 ndim, ndim x u32 dims, prod(dims) x f32.
Integers (labels) are stored as float32 too; scalars as ndim 0.
"""
import struct

import numpy as np


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
