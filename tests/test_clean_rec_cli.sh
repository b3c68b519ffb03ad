#!/bin/bash
# test_clean_rec_cli.sh: train -> clean -> retrain on insightface's RecordIO.  Synthetic faces
# with injected label flips are packed into a .rec (`comine pack`), a tiny model trains 2
# epochs on it, `comine clean --out-rec` writes the cleaned .rec/.idx, and training on the
# cleaned .rec runs.  An independent Python reader (mxnet's record layout, written here) checks
# the cleaned file: header record 0 with labels [N+1, N+1+C], N image records that are exactly
# the unflagged records of the original (label, truth flag in id2, payload bytes), identity
# records with each identity's key range.  Also: the .lst list of the same images trains, and
# misuse (no .rec suffix, another run's data) is refused with a clear message; and the whole
# chain once more on LFW-derived files (10 people x 20 images) when ../shared/data/lfw112 is there.
# Without /usr/bin/python3 or LFW that part is skipped (exit 77 when the rest passes).
# usage: bash test_clean_rec_cli.sh <comine binary> <source dir>
set -u
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_clean_rec_cli.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT
fail=0
skipped=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=$((fail + 1)); fi
}
cd "$TMP" || exit 1
TRAIN=(--net iresnet18 --width 0.125 --input 32 --emb-dim 64 --batch 16 --tk 1 --threads 1 --decode-threads 2 --quiet)
"$BIN" synth --out S --ids 8 --per-id 6 --size 32 --seed 5 --quiet > /dev/null &&
    "$BIN" corrupt --data S --out noisy.txt --flip 0.3 --seed 2 > /dev/null &&
    "$BIN" pack --data noisy.txt --out rec/train > pack.out 2>&1 || { echo "FAIL making the .rec"; cat pack.out; exit 1; }
"$BIN" train --data rec/train.rec --out run --mode comining --epochs 2 --tau 0.4 "${TRAIN[@]}" > train.out 2>&1
check "train 2 epochs on the .rec" test $? -eq 0
# a low threshold flags every sample with a vote: the cleaned set is smaller than the original
"$BIN" clean --run run --out-rec clean/train.rec --rank votes --vote-threshold 0.01 --top 0 > clean.out 2>&1
rc=$?
cat clean.out | sed 's/^/     /'
check "clean --out-rec exits 0" test $rc -eq 0
check "clean --out-rec writes .rec, .idx and property" test -s clean/train.rec -a -s clean/train.idx -a -s clean/property
flagged=$(awk -F, 'NR > 1 && $4 / ($5 > 0 ? $5 : 1) >= 0.01 && $5 > 0' run/noise.csv | wc -l)
check "some samples are flagged ($flagged), some kept" test "$flagged" -gt 0 -a "$flagged" -lt 48
check "clean reports $((48 - flagged)) images kept" grep -q "cleaned RecordIO: clean/train.rec .*: $((48 - flagged)) images of 8 identities" clean.out

if [ -x /usr/bin/python3 ]; then
    /usr/bin/python3 - > py.out 2>&1 <<'EOF'
import csv, struct
MAGIC = 0xced7230a
def read_record(f, off):
    # dmlc-core RecordIOReader: parts joined with the magic put back
    f.seek(off)
    out = b""
    while True:
        magic, lrec = struct.unpack("<II", f.read(8))
        assert magic == MAGIC, "bad magic at %d" % off
        cflag, length = lrec >> 29, lrec & ((1 << 29) - 1)
        out += f.read((length + 3) // 4 * 4)[:length]
        if cflag in (0, 3):
            return out
        out += struct.pack("<I", MAGIC)
def unpack(s):
    flag, label, id1, id2 = struct.unpack("<IfQQ", s[:24])
    s = s[24:]
    if flag > 0:
        label = list(struct.unpack("<%df" % flag, s[:4 * flag]))
        s = s[4 * flag:]
    return (flag, label, id1, id2), s
def load(prefix):
    idx = dict(tuple(map(int, l.split("\t"))) for l in open(prefix + ".idx"))
    return idx, open(prefix + ".rec", "rb")
oidx, of = load("rec/train")
cidx, cf = load("clean/train")
rows = list(csv.DictReader(open("run/noise.csv")))
want = []
for r in rows:
    votes, rounds = int(r["votes"]), int(r["rounds"])
    if rounds > 0 and votes / rounds >= 0.01:
        continue
    (flag, label, _, id2), payload = unpack(read_record(of, oidx[int(r["path"][4:])]))
    assert label == int(r["label"])
    want.append((int(label), id2, payload))
(flag, lab, _, _), _ = unpack(read_record(cf, cidx[0]))
N, C = len(want), 8
assert flag == 2 and lab == [float(N + 1), float(N + 1 + C)], ("header", flag, lab, N)
got = []
for k in range(1, N + 1):
    (flag, label, id1, id2), payload = unpack(read_record(cf, cidx[k]))
    assert flag == 0 and id1 == k, (k, flag, id1)
    got.append((int(label), id2, payload))
assert sorted(got) == sorted(want), "the cleaned images differ from the unflagged originals"
assert [g[0] for g in got] == sorted(g[0] for g in got), "image records not grouped by identity"
for c in range(C):
    (flag, lab, _, _), _ = unpack(read_record(cf, cidx[N + 1 + c]))
    keys = [k + 1 for k, g in enumerate(got) if g[0] == c]
    rng = [float(keys[0]), float(keys[-1] + 1)] if keys else lab
    assert flag == 2 and lab == rng and lab[0] <= lab[1], (c, lab, rng)
assert sorted(cidx) == list(range(N + C + 1)), "index keys"
print("     python reader: header [%d, %d], %d image records = the unflagged originals (label, id2, bytes), "
      "%d identity records" % (N + 1, N + 1 + C, N, C))
EOF
    rc=$?
    cat py.out
    check "independent Python reader agrees with the cleaned .rec" test $rc -eq 0
else
    echo "skipped: Python reader check (/usr/bin/python3 absent)"
    skipped=$((skipped + 1))
fi

"$BIN" inspect --data clean/train.rec --strict > inspect.out 2>&1
check "inspect --strict accepts the cleaned .rec" test $? -eq 0
"$BIN" train --data clean/train.rec --out run2 --mode comining --epochs 1 "${TRAIN[@]}" > train2.out 2>&1
check "retrain on the cleaned .rec" test $? -eq 0 -a -s run2/peer_a.model
check "the retrain saw $((48 - flagged)) samples" test "$(($(wc -l < run2/noise.csv) - 1))" -eq $((48 - flagged))
# a second clean of the retrained run (a .rec run again) with a list as well
"$BIN" clean --run run2 --out clean2.txt --out-rec clean2/x.rec --top 0 > clean2.out 2>&1
check "clean of the retrained run: --out and --out-rec together" test $? -eq 0 -a -s clean2.txt -a -s clean2/x.rec

# misuse
"$BIN" clean --run run --out-rec clean/train > bad1.out 2>&1
check "--out-rec without .rec is refused" test $? -ne 0 -a -n "$(grep -- '--out-rec' bad1.out)"
"$BIN" clean --run run --out-rec bad/train.rec --data noisy.txt > bad2.out 2>&1
check "--data that is not the run's data is refused naming noise.csv:line" \
    test $? -ne 0 -a -n "$(grep 'noise.csv:2: .*not the data of this run' bad2.out)" -a ! -e bad/train.rec
"$BIN" clean --run run > bad3.out 2>&1
check "neither --out nor --out-rec is refused" test $? -ne 0 -a -n "$(grep -- '--out-rec' bad3.out)"

# the same images as an MXNet .lst (index, label, path) train directly
awk -F'\t' '{ printf "%d\t%d.000000\t%s\n", NR - 1, $2, $1 }' noisy.txt > noisy.lst
"$BIN" train --data noisy.lst --out run3 --epochs 1 "${TRAIN[@]}" > train3.out 2>&1
check "train on an MXNet .lst of the same images" test $? -eq 0 -a "$(($(wc -l < run3/noise.csv) - 1))" -eq 48
printf '0\t0.000000\tS/a.png\n1\tx\n' > bad.lst
"$BIN" train --data bad.lst --out run4 --epochs 1 "${TRAIN[@]}" > bad4.out 2>&1
check "a malformed .lst names file:line" test $? -ne 0 -a -n "$(grep 'bad.lst:' bad4.out)"

# the same on LFW-derived files, when ../shared/data/lfw112 is there: 10 people x 20 images,
# 20% label flips, packed (JPEG payloads), trained, cleaned to a .rec, trained again
LFW=${COMINE_LFW:-/work/shared/data/lfw112}
if [ -d "$LFW/images" ] && [ -f "$LFW/lists/lfw-names.txt" ]; then
    awk -F'\t' '$2 >= 20' "$LFW/lists/lfw-names.txt" | head -10 | cut -f1 |
        awk -v root="$LFW/images" '{ for (i = 1; i <= 20; i++) printf "%s/%s/%s_%04d.jpg\t%d\n", root, $1, $1, i, NR - 1 }' > lfw.txt
    "$BIN" corrupt --data lfw.txt --out lfw_noisy.txt --flip 0.2 --seed 3 > /dev/null &&
        "$BIN" pack --data lfw_noisy.txt --out lfwrec/train > lfwpack.out 2>&1 &&
        "$BIN" train --data lfwrec/train.rec --out lfwrun --mode comining --epochs 2 --tau 0.4 "${TRAIN[@]}" > lfwtrain.out 2>&1 &&
        "$BIN" clean --run lfwrun --out-rec lfwclean/train.rec --rank votes --vote-threshold 0.01 --top 0 > lfwclean.out 2>&1
    check "LFW: pack, train 2 epochs, clean --out-rec" test $? -eq 0
    kept=$(sed -n 's/.*: \([0-9]*\) images of 10 identities.*/\1/p' lfwclean.out)
    flagged=$(awk -F, 'NR > 1 && $5 > 0 && $4 / $5 >= 0.01' lfwrun/noise.csv | wc -l)
    echo "     LFW: 200 images, $flagged flagged, ${kept:-?} kept"
    check "LFW: the cleaned .rec holds the 200 - $flagged unflagged images" test "${kept:-x}" = $((200 - flagged))
    "$BIN" inspect --data lfwclean/train.rec --strict > lfwinspect.out 2>&1 &&
        "$BIN" train --data lfwclean/train.rec --out lfwrun2 --epochs 1 "${TRAIN[@]}" > lfwtrain2.out 2>&1
    check "LFW: inspect --strict and a retrain on the cleaned .rec" test $? -eq 0 -a -s lfwrun2/peer_a.model
else
    echo "skipped: the LFW part (no $LFW)"
    skipped=$((skipped + 1))
fi

if [ $fail -gt 0 ]; then echo "$fail check(s) FAILED"; exit 1; fi
[ $skipped -gt 0 ] && exit 77
echo "all checks passed"
