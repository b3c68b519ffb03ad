"""loader_pil.py: the loader's work done with Pillow + NumPy, for comparison with
bench_loader: read, decode (PIL), convert to RGB, resize to 112x112 when the size differs
(box filter when shrinking, bilinear when growing), random horizontal flip, float32
(x - 127.5) / 128, in a seeded shuffled order.  One process.  Prints images per wall
second and per CPU second.  Usage: loader_pil.py [IMAGES_FOLDER] [MAX_IMAGES] [REPEATS]"""
import os
import random
import sys
import time

import numpy as np
from PIL import Image


def list_images(folder):
    exts = (".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".pnm")
    files = []
    for ident in sorted(os.listdir(folder)):
        d = os.path.join(folder, ident)
        if ident.startswith(".") or not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if not f.startswith(".") and f.lower().endswith(exts):
                files.append(os.path.join(d, f))
    return files


def load(path, size, flip):
    img = Image.open(path).convert("RGB")
    if img.size != (size, size):
        shrink = img.size[0] > size or img.size[1] > size
        img = img.resize((size, size), Image.BOX if shrink else Image.BILINEAR)
    if flip:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return (np.asarray(img, dtype=np.float32) - 127.5) / 128.0


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    folder = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else \
        os.path.join(here, "..", "..", "shared", "data", "lfw112", "images")
    if not os.path.isdir(folder):
        print("skipped: %s absent" % folder)
        return
    files = list_images(folder)
    if len(sys.argv) > 2 and int(sys.argv[2]) > 0:
        files = files[:int(sys.argv[2])]
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    rng = random.Random(3)
    best_wall = best_cpu = 0.0
    batch = np.empty((64, 112, 112, 3), np.float32)
    for _ in range(repeats):
        order = list(range(len(files)))
        rng.shuffle(order)
        t0, c0 = time.perf_counter(), time.process_time()
        for k, i in enumerate(order):
            batch[k % 64] = load(files[i], 112, rng.random() < 0.5)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        best_wall = max(best_wall, len(files) / wall)
        best_cpu = max(best_cpu, len(files) / cpu)
    print("data: %s, %d images; Pillow %s, NumPy %s" % (folder, len(files), Image.__version__, np.__version__))
    print("%-22s %9.0f %9.0f  PIL decode, flip, normalise to 112x112 floats, 1 process" %
          ("pil_1p", best_wall, best_cpu))
    print("RESULT pil=%.0f pil_cpu=%.0f n=%d" % (best_wall, best_cpu, len(files)))


if __name__ == "__main__":
    main()
