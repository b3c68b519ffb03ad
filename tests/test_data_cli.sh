# test_data_cli.sh: `comine pack` and `comine inspect` end to end on small data sets made
# here (PGM files written with printf).  The packed .rec is read back by an independent
# Python reader that follows mxnet's MXIndexedRecordIO/unpack and dmlc-core's split
# records; bad images, ignored files, --strict and bad lists are checked for their exit
# status and messages.  Without /usr/bin/python3 the reader's check is skipped and the test
# exits 77 (CTest: skipped) when the others pass.  Usage: bash test_data_cli.sh COMINE_BIN SOURCE_DIR
set -u
BIN=$1
TMP=$(mktemp -d /tmp/comine_test_cli_data_XXXXXX)
trap 'rm -rf "$TMP"' EXIT
FAILS=0
SKIPPED=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; FAILS=$((FAILS + 1)); fi
}

pgm() { # pgm FILE VALUE: a 4x4 8-bit PGM
    mkdir -p "$(dirname "$1")"
    { printf 'P5\n4 4\n255\n'; for i in $(seq 16); do printf "\\$(printf '%03o' $(( ($2 + i) % 256 )))"; done; } > "$1"
}
pgm "$TMP/faces/Bob/b1.pgm" 10
pgm "$TMP/faces/Bob/b2.pgm" 20
pgm "$TMP/faces/Al/a1.pgm" 30
pgm "$TMP/faces/Cy/c1.pgm" 40
# A PGM whose pixels hold the RecordIO magic (0a 23 d7 ce) at an aligned record offset:
# record data = 24-byte IRHeader + "P5\n4 4\n255\n" (11 bytes) + pixels, so pixel 1 is at 36.
{ printf 'P5\n4 4\n255\n\001\012\043\327\316'; printf 'abcdefghijk'; } > "$TMP/faces/Cy/magic.pgm"

"$BIN" pack --data "$TMP/faces" --out "$TMP/rec/train" > "$TMP/pack.out" 2>&1
rc=$?
check "pack exits 0" test $rc -eq 0
check "pack reports 5 images, 3 identities, 1 split record" grep -q "packed 5 images of 3 identities.*(1 records split" "$TMP/pack.out"
check "property is 3,4,4" test "$(cat "$TMP/rec/property")" = "3,4,4"
check "index has 1 + 5 + 3 lines" test "$(wc -l < "$TMP/rec/train.idx")" -eq 9

if [ -x /usr/bin/python3 ]; then
    /usr/bin/python3 - "$TMP" > "$TMP/py.out" 2>&1 <<'EOF'
import os, struct, sys
tmp = sys.argv[1]
MAGIC = 0xced7230a
def read_record(f, off):
    # dmlc-core RecordIOReader::NextRecord, from one offset
    f.seek(off)
    out = b""
    while True:
        magic, lrec = struct.unpack("<II", f.read(8))
        assert magic == MAGIC, "bad magic at %d" % f.tell()
        cflag, length = lrec >> 29, lrec & ((1 << 29) - 1)
        out += f.read((length + 3) // 4 * 4)[:length]
        if cflag in (0, 3):
            return out
        out += struct.pack("<I", MAGIC)
def unpack(s):
    # mxnet.recordio.unpack: IRHeader '<IfQQ' then flag float32 labels
    flag, label, id1, id2 = struct.unpack("<IfQQ", s[:24])
    s = s[24:]
    if flag > 0:
        label = list(struct.unpack("<%df" % flag, s[:4 * flag]))
        s = s[4 * flag:]
    return (flag, label, id1, id2), s
idx = dict(tuple(map(int, l.split("\t"))) for l in open(os.path.join(tmp, "rec/train.idx")))
f = open(os.path.join(tmp, "rec/train.rec"), "rb")
(flag, lab, _, _), _ = unpack(read_record(f, idx[0]))
assert flag == 2 and lab == [6.0, 9.0], (flag, lab)
names = sorted(os.listdir(os.path.join(tmp, "faces")))
expect = []
for c, n in enumerate(names):
    for fn in sorted(os.listdir(os.path.join(tmp, "faces", n))):
        expect.append((c, open(os.path.join(tmp, "faces", n, fn), "rb").read()))
for k in range(1, 6):
    (flag, label, id1, id2), payload = unpack(read_record(f, idx[k]))
    assert flag == 0 and label == expect[k - 1][0] and id1 == k, (k, flag, label, id1)
    assert payload == expect[k - 1][1], "payload %d differs" % k
for c in range(3):
    (flag, lab, _, _), _ = unpack(read_record(f, idx[6 + c]))
    first = 1 + [e[0] for e in expect].index(c)
    last = 1 + max(i for i, e in enumerate(expect) if e[0] == c) + 1
    assert flag == 2 and lab == [float(first), float(last)], (c, lab)
print("python reader: header, 5 image records (bytes, labels, ids), 3 identity records agree")
EOF
    rc=$?
    cat "$TMP/py.out"
    check "independent Python (mxnet-style) reader agrees with the pack" test $rc -eq 0
else
    echo "skipped: Python reader check (/usr/bin/python3 absent)"
    SKIPPED=$((SKIPPED + 1))
fi

"$BIN" inspect --data "$TMP/rec/train.rec" --strict > "$TMP/insp_rec.out" 2>&1
rc=$?
check "inspect --strict on the clean .rec exits 0" test $rc -eq 0
check "inspect .rec: 3 identities, 5 images, 4x4" grep -q "4x4: 5" "$TMP/insp_rec.out"

# Bad files: a corrupt JPEG, a zero-byte PNG, a text file, an empty identity folder.
cp -r "$TMP/faces" "$TMP/dirty"
printf '\377\330\377\340broken' > "$TMP/dirty/Al/broken.jpg"
: > "$TMP/dirty/Bob/zero.png"
echo "notes" > "$TMP/dirty/Bob/notes.txt"
mkdir -p "$TMP/dirty/Dee"
"$BIN" inspect --data "$TMP/dirty" > "$TMP/insp.out" 2>&1
rc=$?
check "inspect without --strict exits 0 on a dirty set" test $rc -eq 0
check "inspect lists the corrupt JPEG by name" grep -q "broken.jpg: corrupt JPEG" "$TMP/insp.out"
check "inspect lists the zero-byte PNG" grep -q "zero.png: empty file" "$TMP/insp.out"
check "inspect lists the text file and the empty folder" grep -q "notes.txt: not an image" "$TMP/insp.out"
check "inspect lists the empty identity folder" grep -q "Dee: empty identity folder" "$TMP/insp.out"
check "inspect counts 2 bad images" grep -q "^bad images: 2" "$TMP/insp.out"
"$BIN" inspect --data "$TMP/dirty" --strict > /dev/null 2>&1
check "inspect --strict exits non-zero on a dirty set" test $? -ne 0
"$BIN" inspect --data "$TMP/dirty" --json --quiet > "$TMP/insp.json" 2> /dev/null
if command -v python3 > /dev/null; then
    res=$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
print(len(j["bad"]), len(j["ignored"]), j["images"], sum(s["count"] for s in j["sizes"]) + len(j["bad"]),
      any("broken.jpg: corrupt JPEG" in b for b in j["bad"]))' "$TMP/insp.json" 2>&1)
    echo "     inspect --json: bad, ignored, images, decoded + bad, broken.jpg named: $res"
    check "inspect --json: valid JSON with the 2 bad and 2 ignored files and every image counted" \
        test "$(cut -d' ' -f1,2,5 <<< "$res")" = "2 2 True" -a "$(cut -d' ' -f3 <<< "$res")" = "$(cut -d' ' -f4 <<< "$res")"
else
    check "inspect --json names the corrupt JPEG" grep -q '"bad": \[.*broken.jpg: corrupt JPEG' "$TMP/insp.json"
fi

"$BIN" pack --data "$TMP/dirty" --out "$TMP/rec2/train" > "$TMP/pack2.out" 2>&1
rc=$?
check "pack skips bad images by default (exit 0, 2 left out)" test $rc -eq 0 -a -n "$(grep 'left out 2' "$TMP/pack2.out")"
"$BIN" pack --data "$TMP/dirty" --out "$TMP/rec3/train" --on-bad fail > "$TMP/pack3.out" 2>&1
rc=$?
check "pack --on-bad fail exits non-zero naming the file" test $rc -ne 0 -a -n "$(grep -E 'broken.jpg|zero.png' "$TMP/pack3.out")"
check "pack --on-bad fail leaves no .rec behind" test ! -e "$TMP/rec3/train.rec"

# Lists: a good one with flags, and bad ones that must fail at open with file:line.
printf 'faces/Al/a1.pgm\t0\t0\nfaces/Bob/b1.pgm\t1\t1\nfaces/Cy/c1.pgm\t1\t2\n' > "$TMP/good.txt"
"$BIN" inspect --data "$TMP/good.txt" --strict > "$TMP/list.out" 2>&1
check "inspect list: exit 0, truth flags counted" grep -q "clean 1, label flip 1, outlier 1" "$TMP/list.out"
printf 'faces/Al/a1.pgm\t0\nfaces/Bob/b1.pgm\t2\n' > "$TMP/gap.txt"
"$BIN" inspect --data "$TMP/gap.txt" > "$TMP/gap.out" 2>&1
rc=$?
check "list with a label gap: non-zero exit, names the missing label" test $rc -ne 0 -a -n "$(grep 'gap.txt: labels must be 0..2.*: 1' "$TMP/gap.out")"
printf 'faces/Al/a1.pgm\t0\nfaces/Al/none.pgm\t0\n' > "$TMP/missing.txt"
"$BIN" pack --data "$TMP/missing.txt" --out "$TMP/rec4/x" > "$TMP/missing.out" 2>&1
rc=$?
check "pack of a list with a missing file: non-zero exit, file:line" test $rc -ne 0 -a -n "$(grep 'missing.txt:2' "$TMP/missing.out")"
"$BIN" pack --data "$TMP/faces" --out "$TMP/x.rec" > /dev/null 2>&1
check "pack --out with .rec suffix is refused" test $? -ne 0

if [ $FAILS -ne 0 ]; then echo "test_data_cli: $FAILS check(s) FAILED"; exit 1; fi
if [ $SKIPPED -ne 0 ]; then echo "test_data_cli: the checks that ran passed; $SKIPPED skipped (see above)"; exit 77; fi
echo "test_data_cli: all checks passed"
