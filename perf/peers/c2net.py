"""Caffe2 NetDef text format (.pbtxt) reader and tiny .npy helpers.

Pure standard library (no numpy, no protobuf), so that perf/bench_nets can
run its --smoke case on a machine that has neither. A binary NetDef is first
turned into text with `cortado convert NET.pb NET.pbtxt`.

A parsed message is a list of (field, value) pairs in file order; a value is
an int, a float, a str (string fields, unescaped) or a nested message.
"""

import array
import ast
import math
import re
import struct
import sys

_TOKEN = re.compile(
    r'\s*(?:#[^\n]*\n?)*\s*'
    r'(?:(?P<str>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')'
    r'|(?P<punct>[{}:<>\[\],;])'
    r'|(?P<word>[^\s{}:<>\[\],;"\'#]+))', re.S)

_ESCAPES = {'n': '\n', 't': '\t', 'r': '\r', '"': '"', "'": "'", '\\': '\\',
            'a': '\a', 'b': '\b', 'f': '\f', 'v': '\v'}


def _unescape(body):
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != '\\':
            out += c.encode('utf-8')
            i += 1
            continue
        n = body[i + 1]
        if n in _ESCAPES:
            out += _ESCAPES[n].encode()
            i += 2
        elif n in 'xX':
            m = re.match(r'[0-9a-fA-F]{1,2}', body[i + 2:])
            out.append(int(m.group(0), 16))
            i += 2 + len(m.group(0))
        else:
            m = re.match(r'[0-7]{1,3}', body[i + 1:])
            out.append(int(m.group(0), 8))
            i += 1 + len(m.group(0))
    return out.decode('utf-8', errors='replace')


def _scalar(word):
    if re.fullmatch(r'[-+]?(0[xX][0-9a-fA-F]+|\d+)', word):
        return int(word, 0)
    try:
        return float(word.rstrip('fF'))
    except ValueError:
        return word  # enum values and true/false stay as words


class ParseError(Exception):
    pass


def parse_text(text):
    """Parses protobuf text format into nested lists of (field, value)."""
    toks = []
    pos = 0
    while True:
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            rest = text[pos:].strip()
            if rest:
                raise ParseError('cannot tokenize near %r' % rest[:40])
            break
        pos = m.end()
        if m.group('str') is not None:
            toks.append(('str', _unescape(m.group('str')[1:-1])))
        elif m.group('punct') is not None:
            toks.append(('p', m.group('punct')))
        elif m.group('word') is not None:
            toks.append(('w', m.group('word')))
    idx = 0

    def message(close):
        nonlocal idx
        fields = []
        while idx < len(toks):
            kind, val = toks[idx]
            if kind == 'p' and val == close:
                idx += 1
                return fields
            if kind != 'w':
                raise ParseError('want a field name, got %r' % val)
            name = val
            idx += 1
            if idx < len(toks) and toks[idx] == ('p', ':'):
                idx += 1
            kind, val = toks[idx]
            if kind == 'p' and val in '{<':
                idx += 1
                fields.append((name, message('}' if val == '{' else '>')))
            elif kind == 'p' and val == '[':
                idx += 1
                while toks[idx] != ('p', ']'):
                    k, v = toks[idx]
                    if k != 'p':
                        fields.append((name, v if k == 'str' else _scalar(v)))
                    idx += 1
                idx += 1
            else:
                # Adjacent string literals concatenate.
                if kind == 'str':
                    s = val
                    idx += 1
                    while idx < len(toks) and toks[idx][0] == 'str':
                        s += toks[idx][1]
                        idx += 1
                    fields.append((name, s))
                else:
                    fields.append((name, _scalar(val)))
                    idx += 1
            if idx < len(toks) and toks[idx] in (('p', ','), ('p', ';')):
                idx += 1
        if close is not None:
            raise ParseError('unterminated message')
        return fields

    return message(None)


def get_all(msg, field):
    return [v for k, v in msg if k == field]


def get_one(msg, field, default=None):
    vals = get_all(msg, field)
    return vals[-1] if vals else default


class Op:
    """One OperatorDef: type, inputs, outputs and its arguments by name."""

    def __init__(self, msg):
        self.type = get_one(msg, 'type', '')
        self.name = get_one(msg, 'name', '')
        self.inputs = get_all(msg, 'input')
        self.outputs = get_all(msg, 'output')
        self.args = {}
        for a in get_all(msg, 'arg'):
            name = get_one(a, 'name')
            if get_all(a, 'ints'):
                self.args[name] = list(get_all(a, 'ints'))
            elif get_all(a, 'floats'):
                self.args[name] = list(get_all(a, 'floats'))
            elif get_all(a, 'strings'):
                self.args[name] = list(get_all(a, 'strings'))
            elif get_one(a, 'i') is not None:
                self.args[name] = get_one(a, 'i')
            elif get_one(a, 'f') is not None:
                self.args[name] = get_one(a, 'f')
            elif get_one(a, 's') is not None:
                self.args[name] = get_one(a, 's')
            else:
                self.args[name] = None

    def arg(self, name, default=None):
        v = self.args.get(name)
        return default if v is None else v


class Net:
    """A NetDef: ops in order plus its declared external inputs/outputs."""

    def __init__(self, path):
        with open(path, encoding='utf-8') as f:
            msg = parse_text(f.read())
        self.path = path
        self.name = get_one(msg, 'name', '')
        self.ops = [Op(m) for m in get_all(msg, 'op')]
        self.external_inputs = get_all(msg, 'external_input')
        self.external_outputs = get_all(msg, 'external_output')

    def read_not_produced(self):
        """Blobs read before any op produces them, in first-use order."""
        produced = set()
        seen = []
        for op in self.ops:
            for b in op.inputs:
                if b not in produced and b not in seen:
                    seen.append(b)
            produced.update(op.outputs)
        return seen

    def params(self, data_input):
        """The parameter blobs: read-not-produced minus the data input."""
        return [b for b in self.read_not_produced() if b != data_input]


# ---- .npy (float32, C order) without numpy --------------------------------

def npy_write_f32(path, shape, values):
    """Writes a little-endian float32 .npy; values is an array('f') or list."""
    arr = values
    if not isinstance(arr, array.array):
        arr = array.array('f', values)
    if sys.byteorder != 'little':
        arr = array.array('f', arr)
        arr.byteswap()
    dims = ', '.join(str(d) for d in shape) + (',' if len(shape) == 1 else '')
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % dims
    pad = 64 - (10 + len(header) + 1) % 64
    header += ' ' * (pad % 64) + '\n'
    with open(path, 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)))
        f.write(header.encode('latin1'))
        arr.tofile(f)


def npy_read(path):
    """Reads a .npy of float32/float64/int32/int64; returns (shape, array)."""
    with open(path, 'rb') as f:
        data = f.read()
    if data[:6] != b'\x93NUMPY':
        raise ValueError('%s: not a .npy file' % path)
    major = data[6]
    if major == 1:
        hlen = struct.unpack('<H', data[8:10])[0]
        off = 10
    else:
        hlen = struct.unpack('<I', data[8:12])[0]
        off = 12
    hdr = ast.literal_eval(data[off:off + hlen].decode('latin1'))
    if hdr.get('fortran_order'):
        raise ValueError('%s: Fortran order not supported' % path)
    descr = hdr['descr']
    codes = {'<f4': 'f', '<f8': 'd', '<i4': 'i', '<i8': 'q'}
    if descr not in codes:
        raise ValueError('%s: dtype %s not supported' % (path, descr))
    arr = array.array(codes[descr])
    arr.frombytes(data[off + hlen:])
    if sys.byteorder != 'little':
        arr.byteswap()
    shape = tuple(hdr['shape'])
    if math.prod(shape) != len(arr):
        raise ValueError('%s: %d values for shape %s'
                         % (path, len(arr), shape))
    return shape, arr
