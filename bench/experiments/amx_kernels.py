"""`python -m bench.experiments.amx_kernels MODE [BATCH]`: single kernels of
GoogLeNet's bfloat16 step at 224x224, alone, against alternatives
(docs/experiments/2026-12-amx-limits.md).

  wgrad  each 3x3 and 5x5 layer's weight gradient: oneDNN's
      conv2d_backprop_filter, im2col and one matrix product, and k x k
      products of shifted windows summed; ms, GFLOP/s, error against oneDNN.
  elementwise  the memory-bound kernels on one [BATCH, 28, 28, 256] tensor
      in float32 and bfloat16: ReluGrad, a multiply, BiasAddGrad against a
      product with a row of ones, a concatenation, slices, max pooling.
"""

import statistics
import sys

import numpy as np
import tensorflow as tf

from bench.contenders import timed_windows

# (name, map side, input channels, output channels, kernel side): Table 1's.
LAYERS = (("conv2", 56, 64, 192, 3), ("3a_3x3", 28, 96, 128, 3),
          ("3a_5x5", 28, 16, 32, 5), ("3b_3x3", 28, 128, 192, 3),
          ("3b_5x5", 28, 32, 96, 5), ("4a_3x3", 14, 96, 208, 3),
          ("4a_5x5", 14, 16, 48, 5), ("4d_3x3", 14, 144, 288, 3),
          ("4e_3x3", 14, 160, 320, 3), ("4e_5x5", 14, 32, 128, 5),
          ("5b_3x3", 7, 192, 384, 3), ("5b_5x5", 7, 48, 128, 5))


def milliseconds(f, *args, rounds: int = 7) -> float:
  """The median wall time of `f(*args)` after one warm-up call."""
  def run(n):
    for _ in range(n):
      tf.nest.map_structure(lambda t: t.numpy(), f(*args))
  return 1e3 / statistics.median(timed_windows(run, 1)(1, rounds, 1))


def _windows(x, k):
  p = k // 2
  padded = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
  side = x.shape[1]
  return [padded[:, i:i + side, j:j + side, :]
          for i in range(k) for j in range(k)]


def im2col(x, dy, k):
  cols = tf.reshape(tf.concat(_windows(x, k), -1), [-1, k * k * x.shape[3]])
  g = tf.matmul(cols, tf.reshape(dy, [-1, dy.shape[3]]), transpose_a=True)
  return tf.reshape(g, [k, k, x.shape[3], dy.shape[3]])


def shifted(x, dy, k):
  d = tf.reshape(dy, [-1, dy.shape[3]])
  parts = [tf.matmul(tf.reshape(w, [-1, x.shape[3]]), d, transpose_a=True)
           for w in _windows(x, k)]
  return tf.reshape(tf.stack(parts), [k, k, x.shape[3], dy.shape[3]])


def wgrad(batch: int) -> None:
  totals = {}
  for name, side, cin, cout, k in LAYERS:
    x = tf.cast(tf.nn.relu(tf.random.normal([batch, side, side, cin])),
                tf.bfloat16)
    dy = tf.cast(tf.random.normal([batch, side, side, cout]), tf.bfloat16)
    ways = {
        "onednn": tf.function(lambda x, dy: tf.compat.v1.nn
                              .conv2d_backprop_filter(
                                  x, [k, k, cin, cout], dy, [1, 1, 1, 1],
                                  "SAME")),
        "im2col": tf.function(lambda x, dy: im2col(x, dy, k)),
        "shifted": tf.function(lambda x, dy: shifted(x, dy, k)),
    }
    reference = tf.cast(ways["onednn"](x, dy), tf.float32)
    scale = float(tf.reduce_max(tf.abs(reference)))
    gflop = 2 * batch * side * side * k * k * cin * cout / 1e9
    cells = []
    for way, f in ways.items():
      ms = min(milliseconds(f, x, dy) for _ in range(2))
      error = float(tf.reduce_max(tf.abs(
          tf.cast(f(x, dy), tf.float32) - reference))) / scale
      totals[way] = totals.get(way, 0.0) + ms
      cells.append(f"{way} {ms:7.2f} ms {gflop / ms * 1e3:5.0f} GFLOP/s "
                   f"(error {error:.0e})")
    print(f"{name:7s} {gflop:6.2f} GFLOP  " + "  ".join(cells), flush=True)
  print("twelve layers: " + ", ".join(f"{w} {ms:.1f} ms"
                                      for w, ms in totals.items()))


def elementwise(batch: int) -> None:
  shape = [batch, 28, 28, 256]
  rows = int(np.prod(shape[:3]))
  for dtype in (tf.float32, tf.bfloat16):
    y = tf.cast(tf.nn.relu(tf.random.normal(shape)), dtype)
    dy = tf.cast(tf.random.normal(shape), dtype)
    ways = {
        "ReluGrad": lambda dy, y: tf.raw_ops.ReluGrad(gradients=dy,
                                                      features=y),
        "multiply": lambda dy, y: dy * y,
        "BiasAddGrad": lambda dy, y: tf.raw_ops.BiasAddGrad(out_backprop=dy),
        "ones @ dy": lambda dy, y: tf.matmul(
            tf.ones([1, rows], dtype), tf.reshape(dy, [rows, shape[3]])),
        "concat": lambda dy, y: tf.concat(
            [dy[..., :128], y[..., :64], dy[..., :32], y[..., :32]], -1),
        "4 slices": lambda dy, y: [dy[..., :128], dy[..., 128:192],
                                   dy[..., 192:224], dy[..., 224:]],
        "max pool 3x3/1": lambda dy, y: tf.nn.max_pool2d(y, 3, 1, "SAME"),
    }
    print(dtype.name + ": " + ", ".join(
        f"{way} {milliseconds(tf.function(f), dy, y):.2f} ms"
        for way, f in ways.items()), flush=True)
    # The product must give the bias gradient BiasAddGrad gives.
    exact = tf.reduce_sum(tf.cast(tf.reshape(dy, [rows, shape[3]]),
                                  tf.float64), 0)
    for way in ("BiasAddGrad", "ones @ dy"):
      got = tf.cast(tf.reshape(ways[way](dy, y), [-1]), tf.float64)
      print(f"  {way}: largest error against a float64 sum "
            f"{float(tf.reduce_max(tf.abs(got - exact))):.3g} (sums of "
            f"about {float(tf.reduce_mean(tf.abs(exact))):.3g})")


if __name__ == "__main__":
  {"wgrad": wgrad, "elementwise": elementwise}[sys.argv[1]](
      int(sys.argv[2]) if len(sys.argv) > 2 else 64)
