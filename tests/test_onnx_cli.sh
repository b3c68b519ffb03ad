#!/bin/bash
# test_onnx_cli.sh: `comine export --onnx` and `comine import --onnx` against independent
# forwards (tests/ref/onnx_ref.py, run with Debian's /usr/bin/python3):
#  - a trained iresnet18 (width 0.125, input 32) exported: valid under onnx.checker (full check,
#    strict shape inference); its flip-test embeddings computed from the ONNX file by a small
#    graph interpreter and by insightface's PyTorch modules loading the initialisers by name
#    match `comine embed` within 1e-4; importing the export gives the identical model file;
#  - insightface networks with random weights exported by torch.onnx.export (BN folded into
#    the convolutions, as insightface's torch2onnx does): iresnet18 and MobileFaceNet (the
#    other iresnets are recognised in test_interop_onnx); `comine import` then `comine embed`
#    match PyTorch's embeddings within 1e-4; export -> import of the imported model gives the
#    identical file again; on LFW crops
#    (../shared/data/lfw112 or $COMINE_LFW, when there) the graph interpreter on PyTorch's
#    MobileFaceNet file matches `comine embed` of the imported model;
#  - errors: a truncated file, a file that is not ONNX, a wrong --arch, a missing file, an
#    output folder that does not exist: exit 1 with the file named, no crash.
# Without python3-onnx (or PyTorch / PIL for the parts that need them) those parts are skipped
# and the test exits 77 when everything else passed.
# usage: bash test_onnx_cli.sh <comine binary> <source dir>
set -u
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SRC=$2
PY=/usr/bin/python3
REF=$SRC/tests/ref/onnx_ref.py
TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_onnx_cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail=0
skipped=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
check() { # check WHAT COMMAND...
    local what=$1; shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}
have_py() { [ -x "$PY" ] && "$PY" -c "import numpy, $1" >/dev/null 2>&1; }
# pyref WHAT ARGS...: run onnx_ref.py; exit 77 counts as skipped
pyref() {
    local what=$1; shift
    "$PY" "$REF" "$@" >"$TMP/py.txt" 2>&1
    local rc=$?
    if [ $rc -eq 0 ]; then ok "$what: $(tail -n 1 "$TMP/py.txt")"
    elif [ $rc -eq 77 ]; then echo "skipped: $what ($(tail -n 1 "$TMP/py.txt"))"; skipped=$((skipped + 1))
    else bad "$what: $(tail -n 5 "$TMP/py.txt")"; fi
    return $rc
}
expect_fail() { # expect_fail WHAT NEEDLE ARGS...
    local what=$1 needle=$2; shift 2
    "$BIN" "$@" >"$TMP/out.txt" 2>&1
    local rc=$?
    if [ $rc -eq 1 ] && grep -q -- "$needle" "$TMP/out.txt"; then ok "$what: $(head -n 1 "$TMP/out.txt")"
    else bad "$what: exit $rc, $(head -n 3 "$TMP/out.txt")"; fi
}
cd "$TMP" || exit 1

check "export --help" bash -c "'$BIN' export --help | grep -q -- --onnx"
check "import --help" bash -c "'$BIN' import --help | grep -q -- --arch"

# ---- export of a trained model -------------------------------------------------------------
"$BIN" synth --out syn --ids 6 --per-id 4 --size 32 --seed 3 --quiet >/dev/null || { echo "FAIL synth"; exit 1; }
"$BIN" train --data syn --out run --net iresnet18 --width 0.125 --input 32 --emb-dim 16 --batch 8 --epochs 1 \
    --mode arcface --threads 1 --decode-threads 1 --quiet >/dev/null || { echo "FAIL training"; exit 1; }
check "export" bash -c "'$BIN' export --model run/peer_a.model --onnx a.onnx >/dev/null"
"$BIN" embed --model run/peer_a.model --data syn --out c.npy --threads 1 --decode-threads 1 >/dev/null ||
    bad "comine embed"
if have_py onnx; then
    pyref "onnx.checker accepts the export" check a.onnx
    if pyref "graph interpreter embeds the images" embed a.onnx c.npy.paths.txt g.npy; then
        pyref "interpreter vs comine embed" compare c.npy g.npy 1e-4
    fi
    if pyref "insightface modules with the ONNX initialisers" embed a.onnx c.npy.paths.txt i.npy --insightface; then
        pyref "insightface vs comine embed" compare c.npy i.npy 1e-4
    fi
else
    echo "skipped: python3-onnx missing (the checker and the independent forwards)"
    skipped=$((skipped + 1))
fi
check "import of the export" bash -c "'$BIN' import --onnx a.onnx --out a2.model >/dev/null"
check "export -> import: the identical model file" cmp -s run/peer_a.model a2.model

# ---- models exported by PyTorch --------------------------------------------------------------
"$BIN" synth --out syn112 --ids 2 --per-id 2 --size 112 --seed 4 --quiet >/dev/null || bad "synth 112"
torch_case() { # torch_case ARCH DATA ARGS...
    local arch=$1 data=$2; shift 2
    find "$data" -name '*.png' | LC_ALL=C sort > order.npy.paths.txt  # comine embed's row order
    pyref "torch.onnx.export of insightface's $arch" torch-export "$arch" "t_$arch.onnx" order.npy.paths.txt \
        "t_$arch.npy" "$@" || return
    if "$BIN" import --onnx "t_$arch.onnx" --out "t_$arch.model" >"$TMP/imp.txt" 2>&1; then
        ok "import $arch: $(cat "$TMP/imp.txt")"
    else bad "import $arch: $(cat "$TMP/imp.txt")"; return; fi
    "$BIN" embed --model "t_$arch.model" --data "$data" --out "c_$arch.npy" --threads 2 --decode-threads 1 >/dev/null ||
        { bad "embed $arch"; return; }
    check "the same row order" cmp -s order.npy.paths.txt "c_$arch.npy.paths.txt"
    pyref "PyTorch vs comine embed ($arch)" compare "t_$arch.npy" "c_$arch.npy" 1e-4
    "$BIN" export --model "t_$arch.model" --onnx "e_$arch.onnx" >/dev/null && "$BIN" import --onnx "e_$arch.onnx" \
        --out "e_$arch.model" >/dev/null
    check "$arch: export -> import of the imported model: the identical file" cmp -s "t_$arch.model" "e_$arch.model"
    rm -f order.npy order.npy.paths.txt
}
if have_py "onnx, torch, PIL"; then
    torch_case iresnet18 syn --width 0.125 --input 32 --emb-dim 16 --seed 1
    torch_case mobilefacenet syn112 --emb-dim 32 --seed 3
    pyref "onnx.checker accepts comine's MobileFaceNet export" check e_mobilefacenet.onnx
    if pyref "graph interpreter on comine's MobileFaceNet export" embed e_mobilefacenet.onnx \
        c_mobilefacenet.npy.paths.txt g_mbf.npy; then
        pyref "interpreter vs comine embed (MobileFaceNet)" compare c_mobilefacenet.npy g_mbf.npy 1e-4
    fi
    # on LFW crops (JPEG: comine's decoder against PIL's), when ../shared/data/lfw112 is there
    LFW=${COMINE_LFW:-$SRC/../shared/data/lfw112}
    if [ -d "$LFW/images/Aaron_Peirsol" ] && [ -d "$LFW/images/Abdullah_Gul" ] && [ -s t_mobilefacenet.model ]; then
        mkdir -p lfw && ln -s "$LFW/images/Aaron_Peirsol" "$LFW/images/Abdullah_Gul" lfw/
        "$BIN" embed --model t_mobilefacenet.model --data lfw --out l.npy --threads 2 --decode-threads 1 >/dev/null ||
            bad "embed LFW"
        if pyref "graph interpreter on PyTorch's MobileFaceNet export, LFW crops" embed t_mobilefacenet.onnx \
            l.npy.paths.txt lr.npy; then
            pyref "interpreter vs comine embed on LFW crops" compare l.npy lr.npy 1e-4
        fi
    else
        echo "skipped: LFW crops absent ($LFW)"
        skipped=$((skipped + 1))
    fi
else
    echo "skipped: PyTorch, PIL or python3-onnx missing (models exported by PyTorch)"
    skipped=$((skipped + 1))
fi

# ---- errors ------------------------------------------------------------------------------------
head -c 5000 a.onnx > cut.onnx
expect_fail "truncated file" "cut.onnx: byte" import --onnx cut.onnx --out x.model
expect_fail "a model file is not ONNX" "a2.model" import --onnx a2.model --out x.model
expect_fail "wrong --arch" "iresnet50" import --onnx a.onnx --out x.model --arch iresnet50
expect_fail "missing file" "nothere.onnx" import --onnx nothere.onnx --out x.model
expect_fail "export of a missing model" "nothere.model" export --model nothere.model --onnx x.onnx
check "no output left by the failures" test ! -e x.model -a ! -e x.onnx
out=$("$BIN" export --model a2.model --onnx a2.model/x.onnx 2>&1); rc=$?
check "export --onnx under a file: refused before any work (exit 2, naming it)" \
    test $rc = 2 -a -n "$(grep -F "a2.model is not a folder" <<< "$out")"
check "export --onnx into a missing folder: the folder is made" \
    eval '"$BIN" export --model a2.model --onnx nofolder/x.onnx > /dev/null 2>&1 && test -s nofolder/x.onnx'


if [ $fail -gt 0 ]; then echo "test_onnx_cli: $fail check(s) FAILED"; exit 1; fi
if [ $skipped -gt 0 ]; then echo "test_onnx_cli: passed, $skipped part(s) skipped"; exit 77; fi
echo "test_onnx_cli: all checks passed"
