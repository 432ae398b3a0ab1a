// The ONNX Runtime peer of perf/bench_nets (docs/peers.md): loads an ONNX
// model exported by c2torch.py, feeds one float32 .npy as input "data",
// warms up, times N runs and writes the outputs as .npy files. Prints one
// JSON object with the times in ms.
//
//   node ort_bench.js MODEL.onnx INPUT.npy THREADS WARMUP ITERS [OUT.npy...]
//
// onnxruntime-node is looked up in perf/peers/node_modules (installed with
// `npm install --ignore-scripts`, see the Makefile target bench-nets) or
// wherever NODE_PATH points. Session options: intraOpNumThreads THREADS,
// interOpNumThreads 1, executionMode sequential, graphOptimizationLevel all.
'use strict';

const fs = require('fs');

function npyRead(path) {
  const buf = fs.readFileSync(path);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') {
    throw new Error(path + ': not a .npy file');
  }
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const off = major === 1 ? 10 : 12;
  const hdr = buf.toString('latin1', off, off + hlen);
  if (!/'descr':\s*'<f4'/.test(hdr) || /'fortran_order':\s*True/.test(hdr)) {
    throw new Error(path + ': want little-endian float32, C order: ' + hdr);
  }
  const m = /'shape':\s*\(([^)]*)\)/.exec(hdr);
  const dims = m[1].split(',').map((s) => s.trim()).filter((s) => s.length)
    .map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  const body = buf.subarray(off + hlen, off + hlen + 4 * n);
  new Uint8Array(data.buffer).set(body);
  return { dims, data };
}

function npyWrite(path, dims, data) {
  const shape = dims.join(', ') + (dims.length === 1 ? ',' : '');
  let hdr = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape}), }`;
  const pad = (64 - ((10 + hdr.length + 1) % 64)) % 64;
  hdr += ' '.repeat(pad) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(hdr.length, 8);
  const f32 = Float32Array.from(data);
  fs.writeFileSync(path, Buffer.concat([head, Buffer.from(hdr, 'latin1'),
    Buffer.from(f32.buffer)]));
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.length < 5) {
    console.error('usage: node ort_bench.js MODEL INPUT THREADS WARMUP ' +
                  'ITERS [OUT.npy...]');
    process.exit(2);
  }
  const [model, input] = argv;
  const threads = Number(argv[2]);
  const warmup = Number(argv[3]);
  const iters = Number(argv[4]);
  const outPaths = argv.slice(5);
  const ort = require('onnxruntime-node');
  const sess = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const x = npyRead(input);
  const feeds = { data: new ort.Tensor('float32', x.data, x.dims) };
  let out;
  for (let i = 0; i < warmup; i++) {
    out = await sess.run(feeds);
  }
  const times = [];
  for (let i = 0; i < iters; i++) {
    const t0 = process.hrtime.bigint();
    out = await sess.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  sess.outputNames.forEach((name, i) => {
    if (i < outPaths.length) {
      npyWrite(outPaths[i], out[name].dims, out[name].data);
    }
  });
  times.sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  console.log(JSON.stringify({
    min_ms: times[0], median_ms: times[Math.floor(times.length / 2)],
    mean_ms: mean, iters: times.length, threads,
    ort: ort.env.versions.node || ort.env.versions.common,
  }));
}

main().catch((e) => {
  console.error('ort_bench: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
