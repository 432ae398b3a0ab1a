#!/usr/bin/env python3
"""Independent float64 NumPy forward pass of the Caffe2 MNIST LeNet
(mnist_lenet_agnostic12) over the 10,000 MNIST test images, used to check
the accuracy cortado reports (docs/models.md).

Usage, from the repository root (weights dumped by cortado itself):
  mkdir -p /tmp/lw
  D=../shared/data/caffe2/mnist_lenet_agnostic12
  ./build/cortado run --net $D/predict_net.pb --init $D/init_net.pb \
      --input-shape data=1,1,28,28 -q \
      $(for b in conv1_w conv1_b conv2_w conv2_b fc3_w fc3_b pred_w pred_b; \
        do echo -o $b=/tmp/lw/$b.npy; done)
  /usr/bin/python3 tests/models/lenet_reference.py /tmp/lw
"""
import gzip
import sys

import numpy as np

NAMES = ["conv1_w", "conv1_b", "conv2_w", "conv2_b",
         "fc3_w", "fc3_b", "pred_w", "pred_b"]


def conv(x, w, b):
    """Valid convolution, stride 1, NCHW."""
    k = w.shape[2]
    cols = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return np.einsum("ncijab,mcab->nmij", cols, w) + b[None, :, None, None]


def pool(x):
    """2x2 max pooling, stride 2."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def main():
    wdir = sys.argv[1] if len(sys.argv) > 1 else "/tmp/lw"
    data = sys.argv[2] if len(sys.argv) > 2 else "../shared/data/mnist"
    W = {k: np.load("%s/%s.npy" % (wdir, k)).astype(np.float64)
         for k in NAMES}
    with gzip.open(data + "/t10k-images-idx3-ubyte.gz") as f:
        imgs = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 1, 28, 28)
    with gzip.open(data + "/t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read()[8:], np.uint8)
    correct = 0
    for s in range(0, len(labels), 1000):
        x = imgs[s:s + 1000].astype(np.float64) / 256
        y = pool(conv(x, W["conv1_w"], W["conv1_b"]))
        y = pool(conv(y, W["conv2_w"], W["conv2_b"]))
        y = y.reshape(y.shape[0], -1)
        y = np.maximum(y @ W["fc3_w"].T + W["fc3_b"], 0)
        y = y @ W["pred_w"].T + W["pred_b"]
        correct += int((y.argmax(1) == labels[s:s + 1000]).sum())
    print("numpy float64 reference: top-1 accuracy %.2f%% (%d / %d)"
          % (100.0 * correct / len(labels), correct, len(labels)))


if __name__ == "__main__":
    main()
