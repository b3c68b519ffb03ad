"""binset_pickles.py: insightface-style verification sets (.bin) written by Python's own pickle,
for tests/test_eval_binset.c and tests/test_eval_bin_cli.sh, and the seeds of fuzz/fuzz_binset.c.
Standard library only.

usage: python3 tests/ref/binset_pickles.py tests/fixtures/binset
       python3 tests/ref/binset_pickles.py --fuzz tests/fuzz_corpus/binset

DIR/images/ holds small JPEG / PNG faces (made once with `comine synth --size 24`, one folder per
identity); this script adds DIR/images/tiny/0000.png (a 4x4 grey PNG under 256 bytes, so that the
short opcodes appear) and writes:
- DIR/pairs.tsv: PAIRS pairs `images/A<TAB>images/B<TAB>same`, matched and mismatched in turn;
- DIR/py_pP.bin for P = 2..5: pickle.dump((bins, issame), f, protocol=P) with bins[2k], bins[2k+1]
  the file bytes of pair k (one bytes object per file, so repeated images are memo references)
  and issame[k] a bool;
- DIR/py2str_p2.bin: the same as Python 2's pickler writes it (images as str:
  SHORT_BINSTRING / BINSTRING), the form of the distributed lfw.bin.
PAIRS (510) makes 1020 images: more than one APPENDS batch of 1000.

--fuzz DIR writes small seeds (fake image bytes) in every form the reader accepts.
"""
import os
import pickle
import struct
import sys
import zlib

PAIRS = 510


class Py2StrPickler(pickle._Pickler):
    """Python 2's pickler for protocol 2: a str (here bytes) as SHORT_BINSTRING / BINSTRING."""
    dispatch = pickle._Pickler.dispatch.copy()

    def save_str(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_str


def tiny_png(w=4, h=4, grey=128):
    raw = b"".join(b"\x00" + bytes([grey] * w) for _ in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


class Lcg:
    """A fixed generator (the output must not depend on the Python version)."""

    def __init__(self, seed):
        self.s = seed

    def below(self, n):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return (self.s >> 33) % n


def write_pickle(path, obj, protocol, py2=False):
    with open(path, "wb") as f:
        if py2:
            Py2StrPickler(f, protocol=2).dump(obj)
        else:
            pickle.dump(obj, f, protocol=protocol)


def test_data(d):
    img_dir = os.path.join(d, "images")
    os.makedirs(os.path.join(img_dir, "tiny"), exist_ok=True)
    with open(os.path.join(img_dir, "tiny", "0000.png"), "wb") as f:
        f.write(tiny_png())
    ids = {}
    for ident in sorted(os.listdir(img_dir)):
        files = sorted(os.listdir(os.path.join(img_dir, ident)))
        ids[ident] = ["images/%s/%s" % (ident, n) for n in files if n.endswith((".jpg", ".png"))]
    names = sorted(ids)
    multi = [n for n in names if len(ids[n]) >= 2]
    rng = Lcg(2024)
    pairs = []
    for k in range(PAIRS):
        if k % 2 == 0:
            who = multi[rng.below(len(multi))]
            i = rng.below(len(ids[who]))
            j = (i + 1 + rng.below(len(ids[who]) - 1)) % len(ids[who])
            pairs.append((ids[who][i], ids[who][j], True))
        else:
            a = rng.below(len(names))
            b = (a + 1 + rng.below(len(names) - 1)) % len(names)
            pa, pb = names[a], names[b]
            pairs.append((ids[pa][rng.below(len(ids[pa]))], ids[pb][rng.below(len(ids[pb]))], False))
    with open(os.path.join(d, "pairs.tsv"), "w") as f:
        for a, b, same in pairs:
            f.write("%s\t%s\t%d\n" % (a, b, 1 if same else 0))
    content = {}
    for a, b, _ in pairs:
        for p in (a, b):
            if p not in content:
                with open(os.path.join(d, p), "rb") as f:
                    content[p] = f.read()
    bins = [content[p] for a, b, _ in pairs for p in (a, b)]
    issame = [same for _, _, same in pairs]
    for protocol in (2, 3, 4, 5):
        write_pickle(os.path.join(d, "py_p%d.bin" % protocol), (bins, issame), protocol)
    write_pickle(os.path.join(d, "py2str_p2.bin"), (bins, issame), 2, py2=True)


def fuzz_seeds(d):
    os.makedirs(d, exist_ok=True)
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(12))
    png = tiny_png()
    bins = [jpeg, png, png, b"\xff\xd8\xff" + b"x" * 300, jpeg, bytes([0xc3, 0xa9, 0x80])]
    issame = [True, False, True]
    for protocol in (2, 3, 4, 5):
        write_pickle(os.path.join(d, "seed_p%d.bin" % protocol), (bins, issame), protocol)
    write_pickle(os.path.join(d, "seed_py2str.bin"), (bins, issame), 2, py2=True)
    write_pickle(os.path.join(d, "seed_int_issame_p4.bin"), (bins, [1, 0, 1]), 4)
    # forms Python's pickler does not write for this object but Python's unpickler reads:
    # BINBYTES8, MARK ... LIST, MARK ... TUPLE, APPEND one at a time, LONG_BINPUT / LONG_BINGET
    b8 = lambda b: b"\x8e" + struct.pack("<Q", len(b)) + b
    get7 = b"j\x07\x00\x00\x00"
    raw = (b"\x80\x04((" + b8(jpeg) + b"r\x07\x00\x00\x00" + b8(png) + get7 + b"C\x03abc" + get7 + b"C\x01xl" +
           b"]\x88a\x89a\x89at.")
    with open(os.path.join(d, "seed_binbytes8_list_tuple.bin"), "wb") as f:
        f.write(raw)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--fuzz":
        fuzz_seeds(sys.argv[2])
    elif len(sys.argv) == 2:
        test_data(sys.argv[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
