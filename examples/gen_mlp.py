#!/usr/bin/env python3
"""Generates the example MLP for cortado and checks cortado's output.

    python3 examples/gen_mlp.py                  # (re)write the example files
    python3 examples/gen_mlp.py --verify         # committed files up to date?
    python3 examples/gen_mlp.py --check prob.npy # compare a cortado output

The net is data[5,8] -> FC(W1[16,8], b1[16]) -> Relu -> FC(W2[4,16], b2[4])
-> Softmax -> prob[5,4]. Weights and input are small multiples of 1/32, so
they are exact in float32 and print exactly in text format; no random
generator is involved, so every numpy version writes the same bytes.
The reference output is computed here with numpy in float64.
Needs only python3 and numpy.
"""
import argparse
import io
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = ("mlp_init.pbtxt", "mlp_predict.pbtxt", "mlp_input.npy",
         "mlp_expected.npy")


def params():
    """Deterministic weights and input (float32, exact)."""
    i, j = np.meshgrid(np.arange(16), np.arange(8), indexing="ij")
    w1 = ((i * 7 + j * 3) % 17 - 8) / 16.0
    b1 = (np.arange(16) * 5 % 7 - 3) / 32.0
    i, j = np.meshgrid(np.arange(4), np.arange(16), indexing="ij")
    w2 = ((i * 11 + j * 5) % 13 - 6) / 16.0
    b2 = (np.arange(4) - 1.5) / 8.0
    n, k = np.meshgrid(np.arange(5), np.arange(8), indexing="ij")
    x = ((n * 5 + k * 3) % 11 - 5) / 8.0
    f = np.float32
    return {"W1": w1.astype(f), "b1": b1.astype(f), "W2": w2.astype(f),
            "b2": b2.astype(f)}, x.astype(f)


def reference(p, x):
    """Caffe2 semantics: FC is x @ W.T + b; Softmax over axis 1."""
    d = np.float64
    h = np.maximum(x.astype(d) @ p["W1"].astype(d).T + p["b1"].astype(d), 0)
    y = h @ p["W2"].astype(d).T + p["b2"].astype(d)
    e = np.exp(y - y.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def fmt_float(v):
    # cortado's text writer prints floats as %.6g (protobuf SimpleFtoa).
    return "%.6g" % float(v)


def init_pbtxt(p):
    out = ['name: "mlp_init"']
    for name in ("W1", "b1", "W2", "b2"):
        a = p[name]
        out.append("op {")
        out.append('  output: "%s"' % name)
        out.append('  name: "fill_%s"' % name)
        out.append('  type: "GivenTensorFill"')
        out.append("  arg {")
        out.append('    name: "shape"')
        out += ["    ints: %d" % s for s in a.shape]
        out.append("  }")
        out.append("  arg {")
        out.append('    name: "values"')
        out += ["    floats: %s" % fmt_float(v) for v in a.ravel()]
        out.append("  }")
        out.append("}")
    out += ['external_output: "%s"' % n for n in ("W1", "b1", "W2", "b2")]
    return "\n".join(out) + "\n"


def predict_pbtxt():
    ops = [
        (["data", "W1", "b1"], ["fc1"], "fc1", "FC"),
        (["fc1"], ["relu1"], "relu1", "Relu"),
        (["relu1", "W2", "b2"], ["fc2"], "fc2", "FC"),
        (["fc2"], ["prob"], "softmax", "Softmax"),
    ]
    out = ['name: "mlp_predict"']
    for ins, outs, name, typ in ops:
        out.append("op {")
        out += ['  input: "%s"' % b for b in ins]
        out += ['  output: "%s"' % b for b in outs]
        out.append('  name: "%s"' % name)
        out.append('  type: "%s"' % typ)
        out.append("}")
    out += ['external_input: "%s"' % n
            for n in ("data", "W1", "b1", "W2", "b2")]
    out.append('external_output: "prob"')
    return "\n".join(out) + "\n"


def npy_bytes(a):
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def generate():
    p, x = params()
    return {
        "mlp_init.pbtxt": init_pbtxt(p).encode(),
        "mlp_predict.pbtxt": predict_pbtxt().encode(),
        "mlp_input.npy": npy_bytes(x),
        "mlp_expected.npy": npy_bytes(reference(p, x).astype(np.float32)),
    }


def check(path, rtol, atol):
    p, x = params()
    ref = reference(p, x)
    got = np.load(path, allow_pickle=False)
    if got.shape != ref.shape:
        print("check: %s has shape %s, expected %s" % (path, got.shape,
                                                        ref.shape))
        return 1
    if got.dtype != np.float32:
        print("check: %s has dtype %s, expected float32" % (path, got.dtype))
        return 1
    err = np.abs(got.astype(np.float64) - ref)
    ok = np.all(err <= atol + rtol * np.abs(ref))
    print("check: %s: max abs err %.3g, max rel err %.3g (rtol %g): %s"
          % (path, err.max(), (err / np.abs(ref)).max(), rtol,
             "ok" if ok else "MISMATCH"))
    if not ok:
        print("got:\n%s\nexpected:\n%s" % (got, ref))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", metavar="PROB_NPY",
                    help="compare a cortado output with the reference")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--atol", type=float, default=1e-7)
    ap.add_argument("--verify", action="store_true",
                    help="check that the committed files are up to date")
    ap.add_argument("--out-dir", default=HERE,
                    help="where to write the files (default: next to "
                         "this script)")
    args = ap.parse_args()
    if args.check:
        return check(args.check, args.rtol, args.atol)
    files = generate()
    if args.verify:
        stale = []
        for name in FILES:
            path = os.path.join(args.out_dir, name)
            try:
                with open(path, "rb") as f:
                    same = f.read() == files[name]
            except OSError:
                same = False
            if not same:
                stale.append(name)
        if stale:
            print("verify: stale or missing: %s (run %s)"
                  % (", ".join(stale), os.path.relpath(__file__)))
            return 1
        print("verify: %d files up to date" % len(FILES))
        return 0
    os.makedirs(args.out_dir, exist_ok=True)
    for name in FILES:
        with open(os.path.join(args.out_dir, name), "wb") as f:
            f.write(files[name])
        print("wrote %s" % os.path.join(args.out_dir, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
