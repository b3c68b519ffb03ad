"""onnx_ref.py: independent references for comine's ONNX export and import (tests/test_onnx_cli.sh).

  check FILE.onnx
      onnx.checker (full check, with shape inference): exit 1 on an invalid model.
  embed FILE.onnx PATHS OUT.npy [--insightface]
      the flip-test embeddings of the images listed in PATHS (one path per line, as `comine
      embed` writes them), computed from the ONNX file by a small interpreter of its graph
      (numpy + torch.nn.functional, float64): normalize(f(x) + f(mirror x)), x the RGB image
      (x - 127.5) / 128, NCHW.  --insightface: the same with insightface's PyTorch modules
      (gen_models.py) loading the ONNX initialisers by name, a second forward that shares no
      code with the first.
  torch-export ARCH OUT.onnx PATHS OUT.npy [--width W] [--input S] [--emb-dim D] [--seed K]
      insightface's network (gen_models.py) with random weights and batch-norm statistics,
      exported by torch.onnx.export in eval mode (opset 11, input "data", dynamic batch, as
      insightface's torch2onnx.py does: batch norms after convolutions folded), and the
      flip-test embeddings of PATHS by the PyTorch module itself.
  compare A.npy B.npy TOL
      max |a - b| over every element; exit 1 above TOL.

Exit 77 when numpy, onnx, torch or PIL is missing (CTest: skipped).
Run with /usr/bin/python3 (Debian's packages); 2 threads.
"""
import os
import sys

try:
    import numpy as np
except ImportError:
    print("skip: numpy missing")
    sys.exit(77)


def need(*mods):
    try:
        for m in mods:
            __import__(m)
    except ImportError as e:
        print("skip: %s" % e)
        sys.exit(77)


def load_images(paths_file):
    from PIL import Image
    base = os.path.dirname(os.path.abspath(paths_file))
    xs = []
    for line in open(paths_file):
        p = line.rstrip("\n")
        if not p:
            continue
        if not os.path.isabs(p) and not os.path.exists(p):
            p = os.path.join(base, p)
        a = np.asarray(Image.open(p).convert("RGB"), dtype=np.float64)
        xs.append(((a - 127.5) / 128.0).transpose(2, 0, 1))
    return np.stack(xs)


def flip_embed(f, x):
    e = f(x) + f(x[:, :, :, ::-1].copy())
    return e / np.linalg.norm(e, axis=1, keepdims=True)


# ---- a small ONNX interpreter (the ops iresnet / MobileFaceNet exports use) ----------------
def attrs_of(node):
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def run_graph(model, x):
    import onnx.numpy_helper as nh
    import torch
    import torch.nn.functional as F
    env = {t.name: nh.to_array(t) for t in model.graph.initializer}
    env[model.graph.input[0].name] = x
    T = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float64))  # noqa: E731
    for n in model.graph.node:
        a = attrs_of(n)
        i = [env[k] if k else None for k in n.input]
        op = n.op_type
        if op == "Conv":
            pads = a.get("pads", [0, 0, 0, 0])
            assert pads[0] == pads[2] and pads[1] == pads[3], "asymmetric pads"
            y = F.conv2d(T(i[0]), T(i[1]), T(i[2]) if len(i) > 2 and i[2] is not None else None,
                         stride=tuple(a.get("strides", [1, 1])), padding=(pads[0], pads[1]),
                         dilation=tuple(a.get("dilations", [1, 1])), groups=a.get("group", 1)).numpy()
        elif op == "BatchNormalization":
            xx, g, b, m, v = (np.asarray(t, dtype=np.float64) for t in i[:5])
            shp = (1, -1) + (1,) * (xx.ndim - 2)
            y = (xx - m.reshape(shp)) / np.sqrt(v.reshape(shp) + a.get("epsilon", 1e-5)) * g.reshape(shp) + b.reshape(shp)
        elif op == "PRelu":
            xx, s = np.asarray(i[0], np.float64), np.asarray(i[1], np.float64)
            y = np.where(xx >= 0, xx, xx * s)
        elif op == "Relu":
            y = np.maximum(i[0], 0)
        elif op == "Add":
            y = np.asarray(i[0], np.float64) + np.asarray(i[1], np.float64)
        elif op == "Flatten":
            ax = a.get("axis", 1)
            y = i[0].reshape(int(np.prod(i[0].shape[:ax])), -1)
        elif op == "Reshape":
            y = i[0].reshape([int(d) if d != 0 else i[0].shape[k] for k, d in enumerate(i[1])])
        elif op == "Gemm":
            A = i[0].T if a.get("transA", 0) else i[0]
            B = i[1].T if a.get("transB", 0) else i[1]
            y = a.get("alpha", 1.0) * (np.asarray(A, np.float64) @ np.asarray(B, np.float64))
            if len(i) > 2 and i[2] is not None:
                y = y + a.get("beta", 1.0) * np.asarray(i[2], np.float64)
        elif op == "MatMul":
            y = np.asarray(i[0], np.float64) @ np.asarray(i[1], np.float64)
        elif op in ("Identity", "Dropout"):
            y = i[0]
        elif op == "Constant":
            y = nh.to_array(a["value"])
        elif op == "Shape":
            y = np.array(i[0].shape, dtype=np.int64)
        elif op == "Gather":
            y = np.take(i[0], i[1], axis=a.get("axis", 0))
        elif op == "Unsqueeze":
            y = np.expand_dims(i[0], tuple(a["axes"]))
        elif op == "Concat":
            y = np.concatenate(i, axis=a["axis"])
        else:
            raise SystemExit("interpreter: unsupported op %s (node %s)" % (op, n.name))
        env[n.output[0]] = y
    return np.asarray(env[model.graph.output[0].name], dtype=np.float64)


# ---- insightface's modules loading the ONNX initialisers by name ---------------------------
def insightface_forward(model):
    import onnx.numpy_helper as nh
    import torch
    import gen_models as gm
    meta = {p.key: p.value for p in model.metadata_props}
    arch, emb = meta["comine.arch"], int(meta["comine.emb_dim"])
    if arch == "mobilefacenet":
        net = gm.MobileFaceNet(num_features=emb)
    else:
        net = gm.IResNet(gm.IRESNET_LAYERS[arch], width=float(meta["comine.width"]),
                         input_size=int(meta["comine.input"]), num_features=emb)
    inits = {t.name: nh.to_array(t) for t in model.graph.initializer}
    sd = net.state_dict()
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            continue
        if k not in inits:
            raise SystemExit("insightface: no initializer %s in the ONNX file" % k)
        sd[k] = torch.from_numpy(inits[k].reshape(tuple(v.shape)).copy())
    net.load_state_dict(sd)
    net = net.double().eval()

    def forward(x):
        with torch.no_grad():
            return net(torch.from_numpy(x)).numpy()
    return forward


def cmd_check(path):
    need("onnx")
    import onnx
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
    print("onnx.checker: %s valid (ir %d, opset %s, %d nodes, %d initializers)" % (
        path, m.ir_version, ",".join(str(o.version) for o in m.opset_import), len(m.graph.node),
        len(m.graph.initializer)))


def cmd_embed(path, paths, out, insightface):
    need("onnx", "torch", "PIL")
    import onnx
    import torch
    torch.set_num_threads(2)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    m = onnx.load(path)
    x = load_images(paths)
    f = insightface_forward(m) if insightface else (lambda b: run_graph(m, b))
    np.save(out, flip_embed(f, x).astype(np.float32))
    print("%s: %d images embedded (%s)" % (out, len(x), "insightface modules" if insightface else "graph interpreter"))


def cmd_torch_export(arch, out, paths, npy, width, size, emb, seed):
    need("onnx", "torch", "PIL")
    import torch
    torch.set_num_threads(2)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gen_models as gm
    torch.manual_seed(seed)
    if arch == "mobilefacenet":
        net = gm.MobileFaceNet(num_features=emb)
    else:
        net = gm.IResNet(gm.IRESNET_LAYERS[arch], width=width, input_size=size, num_features=emb)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() == 4:
                p.copy_(torch.randn_like(p) * (2.0 / (p.shape[1] * p.shape[2] * p.shape[3])) ** 0.5)
            elif p.dim() == 2:
                p.copy_((torch.rand_like(p) * 2 - 1) / p.shape[1] ** 0.5)
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif name.endswith("features.weight") and arch != "mobilefacenet":
                pass  # insightface holds it at 1
            else:  # BN weights, PReLU slopes
                p.copy_(0.75 + 0.5 * torch.rand_like(p))
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn_like(b))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand_like(b))
    net.eval()
    dummy = torch.zeros(1, 3, size, size)
    torch.onnx.export(net, dummy, out, input_names=["data"], output_names=["fc1"], opset_version=11,
                      keep_initializers_as_inputs=False, dynamic_axes={"data": {0: "None"}, "fc1": {0: "None"}})
    x = load_images(paths)
    net = net.double()
    with torch.no_grad():
        e = flip_embed(lambda b: net(torch.from_numpy(b)).numpy(), x)
    np.save(npy, e.astype(np.float32))
    print("torch.onnx.export: %s (%s, %d images embedded)" % (out, arch, len(x)))


def cmd_compare(a, b, tol):
    x, y = np.load(a), np.load(b)
    if x.shape != y.shape:
        print("shapes differ: %s %s vs %s %s" % (a, x.shape, b, y.shape))
        sys.exit(1)
    err = float(np.abs(x.astype(np.float64) - y).max())
    print("max |difference| %.3g over %d x %d (tolerance %g)" % (err, x.shape[0], x.shape[1], tol))
    sys.exit(0 if err <= tol else 1)


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, rest = argv[1], argv[2:]
    opts = {}
    pos = []
    k = 0
    while k < len(rest):
        if rest[k].startswith("--"):
            if rest[k] == "--insightface":
                opts["insightface"] = True
            else:
                opts[rest[k][2:]] = rest[k + 1]
                k += 1
        else:
            pos.append(rest[k])
        k += 1
    if cmd == "check":
        cmd_check(pos[0])
    elif cmd == "embed":
        cmd_embed(pos[0], pos[1], pos[2], opts.get("insightface", False))
    elif cmd == "torch-export":
        cmd_torch_export(pos[0], pos[1], pos[2], pos[3], float(opts.get("width", 1)), int(opts.get("input", 112)),
                         int(opts.get("emb-dim", 512)), int(opts.get("seed", 0)))
    elif cmd == "compare":
        cmd_compare(pos[0], pos[1], float(pos[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
