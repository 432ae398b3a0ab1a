"""Runs a Caffe2 NetDef in PyTorch, op by op, with torch.nn.functional.

The PyTorch peer of perf/bench_nets (docs/peers.md). The net is the same
text NetDef cortado runs; its parameters are loaded by blob name from .npy
files that cortado wrote, so both engines compute the same function. The
model also exports to ONNX (torch.onnx.export) for the ONNX Runtime peer.

Run with Debian's /usr/bin/python3 (python3-torch 1.13). Subcommands:

  calibrate  set every SpatialBN's running mean / variance to the batch
             statistics of its input (one forward pass, in order), so that a
             randomly filled ResNet keeps unit-scale activations; writes all
             parameters as .npy files plus a manifest
  run        optional ONNX export, then warm-up, timed iterations and the
             outputs; prints one JSON object with the times in ms

A manifest is a JSON object {blob name: .npy path}.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import c2net  # noqa: E402


class NetError(Exception):
    pass


def _pair(op, name, default, x_dims=None):
    """Caffe2's kernel/stride/pad/dilation argument forms, as (h, w)."""
    if op.arg(name + 's') is not None:
        v = op.arg(name + 's')
        if len(v) != 2:
            raise NetError('%s: %ss has %d values; only 2-d supported'
                           % (op.type, name, len(v)))
        return int(v[0]), int(v[1])
    if op.arg(name) is not None:
        return int(op.arg(name)), int(op.arg(name))
    h, w = op.arg(name + '_h'), op.arg(name + '_w')
    if h is not None or w is not None:
        return int(h if h is not None else default), \
            int(w if w is not None else default)
    return default, default


def _pads(op):
    """(top, left, bottom, right) from pad / pad_t.. / pads (Caffe2 order)."""
    if op.arg('pads') is not None:
        p = [int(v) for v in op.arg('pads')]
        if len(p) != 4:
            raise NetError('%s: pads has %d values; only 2-d supported'
                           % (op.type, len(p)))
        return p[0], p[1], p[2], p[3]
    if op.arg('pad') is not None:
        p = int(op.arg('pad'))
        return p, p, p, p
    return tuple(int(op.arg(k, 0))
                 for k in ('pad_t', 'pad_l', 'pad_b', 'pad_r'))


def _check_nchw(op):
    order = op.arg('order', 'NCHW')
    if order != 'NCHW':
        raise NetError('%s: order %s not supported (NCHW only)'
                       % (op.type, order))


def _legacy_out(in_size, k, s, p):
    """Caffe2's CAFFE_LEGACY_POOLING output size (Caffe's ceil rule)."""
    out = int(math.ceil(float(in_size + 2 * p - k) / s + 1))
    if p > 0 and (out - 1) * s >= in_size + p:
        out -= 1
    return out


def _same_pads(in_size, k, s, d):
    eff = (k - 1) * d + 1
    out = (in_size + s - 1) // s
    total = max((out - 1) * s + eff - in_size, 0)
    return total // 2, total - total // 2


class Caffe2Module(torch.nn.Module):
    """A NetDef as an nn.Module: forward(x) returns the requested blobs."""

    def __init__(self, net, data_input, outputs, params):
        super().__init__()
        self.net = net
        self.data_input = data_input
        self.outputs = list(outputs)
        self.blob_attr = {}
        for i, name in enumerate(net.params(data_input)):
            if name not in params:
                raise NetError('parameter %s: no .npy given' % name)
            attr = 'p%03d' % i
            t = torch.from_numpy(np.ascontiguousarray(params[name]))
            self.register_buffer(attr, t)
            self.blob_attr[name] = attr
        self.calibrating = False

    def param(self, name):
        return getattr(self, self.blob_attr[name])

    def forward(self, x):
        blobs = {self.data_input: x}
        for name in self.blob_attr:
            blobs[name] = self.param(name)
        for idx, op in enumerate(self.net.ops):
            fn = getattr(self, '_op_' + op.type, None)
            if fn is None:
                raise NetError('op %d (%s): type not supported by the '
                               'PyTorch interpreter' % (idx, op.type))
            ins = [blobs[b] for b in op.inputs]
            outs = fn(op, ins)
            if not isinstance(outs, (list, tuple)):
                outs = [outs]
            for b, t in zip(op.outputs, outs):
                blobs[b] = t
        return tuple(blobs[b] for b in self.outputs)

    # ---- operators ------------------------------------------------------

    def _op_Conv(self, op, ins):
        _check_nchw(op)
        x, w = ins[0], ins[1]
        b = ins[2] if len(ins) > 2 else None
        kh, kw = _pair(op, 'kernel', 0)
        if (kh, kw) != (0, 0) and (kh, kw) != tuple(w.shape[2:]):
            raise NetError('Conv: kernel %s but filter %s'
                           % ((kh, kw), tuple(w.shape)))
        kh, kw = w.shape[2], w.shape[3]
        sh, sw = _pair(op, 'stride', 1)
        dh, dw = _pair(op, 'dilation', 1)
        pt, pl, pb, pr = _pads(op)
        legacy = int(op.arg('legacy_pad', 0))
        if legacy == 1:
            pt = pl = pb = pr = 0
        elif legacy == 2:
            pt, pb = _same_pads(x.shape[2], kh, sh, dh)
            pl, pr = _same_pads(x.shape[3], kw, sw, dw)
        elif legacy == 3:
            raise NetError('Conv: legacy_pad 3 (Caffe pooling) is for pooling')
        group = int(op.arg('group', 1))
        if pt == pb and pl == pr:
            return F.conv2d(x, w, b, (sh, sw), (pt, pl), (dh, dw), group)
        x = F.pad(x, (pl, pr, pt, pb))
        return F.conv2d(x, w, b, (sh, sw), 0, (dh, dw), group)

    def _pool(self, op, ins, kind):
        _check_nchw(op)
        x = ins[0]
        if int(op.arg('global_pooling', 0)):
            k = (x.shape[2], x.shape[3])
            if kind == 'max':
                return F.max_pool2d(x, k)
            return F.avg_pool2d(x, k)
        kh, kw = _pair(op, 'kernel', 0)
        sh, sw = _pair(op, 'stride', 1)
        dh, dw = _pair(op, 'dilation', 1)
        if (dh, dw) != (1, 1):
            raise NetError('%s: dilation not supported' % op.type)
        pt, pl, pb, pr = _pads(op)
        legacy = int(op.arg('legacy_pad', 0))
        ceil = False
        if legacy == 1:
            pt = pl = pb = pr = 0
        elif legacy == 2:
            pt, pb = _same_pads(x.shape[2], kh, sh, 1)
            pl, pr = _same_pads(x.shape[3], kw, sw, 1)
        elif legacy == 3:
            if (pt, pl) != (pb, pr):
                raise NetError('%s: legacy_pad 3 with asymmetric pads'
                               % op.type)
            ceil = True
        include = bool(int(op.arg('count_include_pad', 0)))
        if (pt, pl) != (pb, pr):
            # Asymmetric: pad explicitly (max: -inf; avg: zeros). Without
            # count_include_pad an average divides by the window's count of
            # real values: the same pooling over a padded tensor of ones.
            if kind == 'avg' and not include:
                ones = F.pad(torch.ones_like(x[:1, :1]), (pl, pr, pt, pb))
                x = F.pad(x, (pl, pr, pt, pb))
                return (F.avg_pool2d(x, (kh, kw), (sh, sw)) /
                        F.avg_pool2d(ones, (kh, kw), (sh, sw)))
            fill = float('-inf') if kind == 'max' else 0.0
            x = F.pad(x, (pl, pr, pt, pb), value=fill)
            pt = pl = 0
        if kind == 'max':
            y = F.max_pool2d(x, (kh, kw), (sh, sw), (pt, pl), ceil_mode=ceil)
        else:
            y = F.avg_pool2d(x, (kh, kw), (sh, sw), (pt, pl), ceil_mode=ceil,
                             count_include_pad=include)
        if ceil:
            want = (_legacy_out(x.shape[2], kh, sh, pt),
                    _legacy_out(x.shape[3], kw, sw, pl))
            if tuple(y.shape[2:]) != want:
                raise NetError('%s: legacy pooling gives %s, PyTorch %s'
                               % (op.type, want, tuple(y.shape[2:])))
        return y

    def _op_MaxPool(self, op, ins):
        return self._pool(op, ins, 'max')

    def _op_AveragePool(self, op, ins):
        return self._pool(op, ins, 'avg')

    def _op_SpatialBN(self, op, ins):
        _check_nchw(op)
        if not int(op.arg('is_test', 0)):
            raise NetError('SpatialBN: only is_test=1 (inference) supported')
        x, scale, bias, mean, var = ins[:5]
        eps = float(op.arg('epsilon', 1e-5))
        if self.calibrating:
            xd = x.detach().double()
            mean.copy_(xd.mean(dim=(0, 2, 3)).float())
            var.copy_(xd.var(dim=(0, 2, 3), unbiased=False).float())
        return F.batch_norm(x, mean, var, scale, bias, False, 0.0, eps)

    def _op_Relu(self, op, ins):
        return F.relu(ins[0])

    def _op_Sum(self, op, ins):
        y = ins[0]
        for t in ins[1:]:
            y = y + t
        return y

    def _broadcast_rhs(self, op, a, b):
        if int(op.arg('broadcast', 0)) and b.dim() < a.dim():
            axis = int(op.arg('axis', a.dim() - b.dim()))
            if axis < 0:
                axis += a.dim()
            b = b.reshape(list(b.shape) + [1] * (a.dim() - axis - b.dim()))
        return b

    def _op_Add(self, op, ins):
        return ins[0] + self._broadcast_rhs(op, ins[0], ins[1])

    def _op_Mul(self, op, ins):
        return ins[0] * self._broadcast_rhs(op, ins[0], ins[1])

    def _op_FC(self, op, ins):
        x, w, b = ins[0], ins[1], ins[2]
        axis = int(op.arg('axis', 1))
        axis_w = int(op.arg('axis_w', 1))
        lead = list(x.shape[:axis])
        x2 = x.reshape(math.prod(lead), -1)
        w2 = w.reshape(math.prod(w.shape[:axis_w]), -1)
        y = F.linear(x2, w2, b)
        return y.reshape(lead + [w2.shape[0]])

    def _op_Softmax(self, op, ins):
        x = ins[0]
        axis = int(op.arg('axis', 1))
        if axis < 0:
            axis += x.dim()
        y = F.softmax(x.reshape(math.prod(x.shape[:axis]), -1), dim=1)
        return y.reshape(x.shape)

    def _op_Concat(self, op, ins):
        axis = int(op.arg('axis', 3 if op.arg('order') == 'NHWC' else 1))
        if int(op.arg('add_axis', 0)):
            y = torch.stack(ins, dim=axis)
        else:
            y = torch.cat(ins, dim=axis)
        if len(op.outputs) < 2:
            return y
        split = torch.tensor([t.shape[axis] if t.dim() > axis else 1
                              for t in ins], dtype=torch.int32)
        return y, split

    def _op_Dropout(self, op, ins):
        if not int(op.arg('is_test', 0)):
            raise NetError('Dropout: only is_test=1 supported')
        if len(op.outputs) < 2:
            return ins[0]
        return ins[0], torch.ones_like(ins[0], dtype=torch.bool)

    def _op_LRN(self, op, ins):
        _check_nchw(op)
        size = int(op.arg('size'))
        alpha = float(op.arg('alpha', 0.0))
        beta = float(op.arg('beta', 0.0))
        bias = float(op.arg('bias', 1.0))
        if size % 2 != 1:
            raise NetError('LRN: even size %d not supported' % size)
        return F.local_response_norm(ins[0], size, alpha, beta, bias)

    def _op_Flatten(self, op, ins):
        x = ins[0]
        axis = int(op.arg('axis', 1))
        return x.reshape(math.prod(x.shape[:axis]), -1)

    def _op_FlattenToVec(self, op, ins):
        return ins[0].reshape(-1)

    def _op_Reshape(self, op, ins):
        x = ins[0]
        if op.arg('shape') is None:
            raise NetError('Reshape: shape from a second input not supported')
        shape = [int(v) for v in op.arg('shape')]
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
        if len(op.outputs) < 2:
            return x.reshape(shape)
        old = torch.tensor(list(x.shape), dtype=torch.int64)
        return x.reshape(shape), old


# ---- helpers ------------------------------------------------------------

def load_manifest(path):
    with open(path, encoding='utf-8') as f:
        files = json.load(f)
    return {name: np.load(p) for name, p in files.items()}


def build(args, params):
    net = c2net.Net(args.net)
    mod = Caffe2Module(net, args.data, args.outputs, params)
    mod.eval()
    return mod


def cmd_calibrate(args):
    params = load_manifest(args.params)
    mod = build(args, params)
    x = torch.from_numpy(np.load(args.input))
    mod.calibrating = True
    with torch.no_grad():
        mod(x)
    mod.calibrating = False
    os.makedirs(args.out_dir, exist_ok=True)
    manifest = {}
    for i, name in enumerate(mod.blob_attr):
        path = os.path.join(args.out_dir, 'p%03d.npy' % i)
        np.save(path, mod.param(name).numpy())
        manifest[name] = path
    with open(os.path.join(args.out_dir, 'manifest.json'), 'w',
              encoding='utf-8') as f:
        json.dump(manifest, f, indent=0)
    with torch.no_grad():
        outs = mod(x)
    stats = {name: {'mean_abs': float(t.abs().mean()),
                    'max_abs': float(t.abs().max()),
                    'finite': bool(torch.isfinite(t).all())}
             for name, t in zip(args.outputs, outs)}
    print(json.dumps({'calibrated': True, 'outputs': stats}))


def cmd_run(args):
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    params = load_manifest(args.params)
    mod = build(args, params)
    x = torch.from_numpy(np.load(args.input))
    if args.onnx:
        with torch.no_grad():
            torch.onnx.export(
                mod, (x,), args.onnx, input_names=['data'],
                output_names=['out%d' % i for i in range(len(args.outputs))],
                opset_version=13, do_constant_folding=True)
    times = []
    with torch.no_grad():
        for _ in range(args.warmup):
            outs = mod(x)
        for _ in range(args.iters):
            t0 = time.perf_counter()
            outs = mod(x)
            times.append((time.perf_counter() - t0) * 1e3)
    for path, t in zip(args.save, outs):
        np.save(path, t.numpy())
    times.sort()
    print(json.dumps({'min_ms': times[0],
                      'median_ms': times[len(times) // 2],
                      'mean_ms': sum(times) / len(times),
                      'iters': len(times), 'threads': args.threads,
                      'torch': torch.__version__}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    for name in ('calibrate', 'run'):
        p = sub.add_parser(name)
        p.add_argument('--net', required=True, help='predict NetDef (.pbtxt)')
        p.add_argument('--data', required=True, help='the data input blob')
        p.add_argument('--params', required=True, help='manifest .json')
        p.add_argument('--input', required=True, help='input .npy')
        p.add_argument('--outputs', required=True, nargs='+',
                       help='blobs forward() returns')
    c = sub.choices['calibrate']
    c.add_argument('--out-dir', required=True)
    r = sub.choices['run']
    r.add_argument('--threads', type=int, default=1)
    r.add_argument('--warmup', type=int, default=1)
    r.add_argument('--iters', type=int, default=5)
    r.add_argument('--save', nargs='*', default=[],
                   help='.npy paths for the outputs, in order')
    r.add_argument('--onnx', help='export the model to this .onnx first')
    args = ap.parse_args()
    try:
        if args.cmd == 'calibrate':
            cmd_calibrate(args)
        else:
            cmd_run(args)
    except NetError as e:
        print('c2torch: %s: %s' % (args.net, e), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
