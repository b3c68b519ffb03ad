"""check_fixtures.py: do the committed fixtures (tests/fixtures/*.bin) still come out of their
generators (tests/ref/gen_*.py)?  Runs every generator into a temporary folder (--out) with
--threads N (default 2) and --fixtures-only, and compares each file with the committed one:
the same tensors in the same order with the same shapes, and then the same bytes, or else
every element within 16 * eps * max|tensor| (eps = 2^-23) of the committed value.  PyTorch
is not bit-reproducible across versions and thread counts: a reduction split differently
rounds differently, by a few units in the last place of the tensor's largest values (2.4
measured on nn_layers.bin between PyTorch 1.13 with 2 threads and the version that made it;
gen_models.py computes in float64, and its files come out the same to a unit in the last
place of single elements); a change in what a generator computes moves values by far more.
Every committed fixture must come from some generator.

usage: /usr/bin/python3 tests/ref/check_fixtures.py [--threads N] [--keep DIR]
Exit status: 0 all match, 1 a mismatch, 77 PyTorch or numpy missing (the test is skipped).
"""
import argparse
import glob
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "fixtures"))
ULPS = 16
EPS = 2.0 ** -23


def read(path):
    """name -> (dims, float32 array), in file order (fixture.py's format)."""
    import numpy as np

    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"CMFX":
        raise ValueError("%s: not a fixture file" % path)
    version, count = struct.unpack_from("<II", data, 4)
    if version != 1:
        raise ValueError("%s: version %d" % (path, version))
    off, out = 12, {}
    for _ in range(count):
        (nl,) = struct.unpack_from("<I", data, off)
        off += 4
        name = data[off:off + nl].decode()
        off += nl
        (nd,) = struct.unpack_from("<I", data, off)
        off += 4
        dims = struct.unpack_from("<%dI" % nd, data, off)
        off += 4 * nd
        n = 1
        for d in dims:
            n *= d
        out[name] = (dims, np.frombuffer(data, dtype="<f4", count=n, offset=off))
        off += 4 * n
    if off != len(data):
        raise ValueError("%s: %d bytes after the last tensor" % (path, len(data) - off))
    return out


def compare(committed, fresh):
    """Returns a list of problems (empty when the files agree) and a one-line summary."""
    import numpy as np

    a, b = read(committed), read(fresh)
    if list(a) != list(b):
        missing = [k for k in a if k not in b][:5]
        extra = [k for k in b if k not in a][:5]
        return ["tensor names differ (committed only: %s; regenerated only: %s)" % (missing, extra)], ""
    problems, differ, worst, worst_name = [], 0, 0.0, ""
    for name, (dims, ref) in a.items():
        dims_b, got = b[name]
        if dims != dims_b:
            problems.append("%s: shape %s, regenerated %s" % (name, dims, dims_b))
            continue
        if ref.tobytes() == got.tobytes():
            continue
        differ += 1
        ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
        scale = float(np.abs(ref64).max()) if ref.size else 0.0
        err = float(np.abs(got64 - ref64).max())
        units = err / (EPS * scale) if scale > 0 else float("inf")
        if not units <= worst:
            worst, worst_name = units, name
        if not err <= ULPS * EPS * scale:
            problems.append("%s: max |diff| %.3g = %.1f eps * max|tensor| (allowed %d)" % (name, err, units, ULPS))
    if differ == 0:
        return problems, "identical bytes (%d tensors)" % len(a)
    return problems, "%d of %d tensors differ, at most %.3g eps * max|tensor| (%s; allowed %d)" % (
        differ, len(a), worst, worst_name, ULPS)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads of the generators (default 2)")
    ap.add_argument("--keep", help="write the regenerated fixtures to this folder and keep them")
    args = ap.parse_args()
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        print("check_fixtures: skipped: %s cannot import %s (Debian: apt-get install python3-torch)" %
              (sys.executable, e.name))
        return 77
    out = args.keep or tempfile.mkdtemp(prefix="comine_fixtures.")
    os.makedirs(out, exist_ok=True)
    fail = 0
    try:
        made = {}
        for gen in sorted(glob.glob(os.path.join(HERE, "gen_*.py"))):
            before = set(os.listdir(out))
            run = subprocess.run([sys.executable, gen, "--out", out, "--threads", str(args.threads), "--fixtures-only"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if run.returncode != 0:
                print("FAIL %s exited with %d:\n%s" % (os.path.basename(gen), run.returncode, run.stdout[-2000:]))
                fail += 1
                continue
            for f in sorted(set(os.listdir(out)) - before):
                made[f] = os.path.basename(gen)
        for path in sorted(glob.glob(os.path.join(FIXTURES, "*.bin"))):
            name = os.path.basename(path)
            if name not in made:
                print("FAIL %s: no generator writes it" % name)
                fail += 1
                continue
            try:
                problems, summary = compare(path, os.path.join(out, name))
            except ValueError as e:
                problems, summary = [str(e)], ""
            if problems:
                print("FAIL %s (%s) differs from the committed file:" % (name, made[name]))
                for p in problems[:10]:
                    print("     " + p)
                if len(problems) > 10:
                    print("     ... and %d more" % (len(problems) - 10))
                fail += 1
            else:
                print("ok   %-22s from %-14s %s" % (name, made[name], summary))
        for name in sorted(set(made) - {os.path.basename(p) for p in glob.glob(os.path.join(FIXTURES, "*.bin"))}):
            print("FAIL %s (%s) is written but not committed under tests/fixtures" % (name, made[name]))
            fail += 1
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    print("check_fixtures: %s (PyTorch %s, %d threads)" %
          ("%d FAILED" % fail if fail else "all fixtures match their generators", torch.__version__, args.threads))
    return 1 if fail else 0


if __name__ == "__main__":
    sys.exit(main())
