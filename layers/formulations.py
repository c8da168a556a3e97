"""Exact formulations of a 2-D convolution, and the choice among them.

`conv2d` computes activation(conv(x, kernel) + bias) through the cheapest
formulation that gives the same outputs and gradients (up to float rounding)
for the shapes at hand. `reference=True` is the textbook `tf.nn.conv2d` with
the whole kernel: what bench/flops.py counts as the model's nominal cost and
what the tests compare every fast path against. The `Conv2D` layer
(layers/conv.py) owns the variables; this module owns the arithmetic.
"""

import functools
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

Activation = Callable[[tf.Tensor], tf.Tensor]


def crop_to_map(kernel: tf.Tensor, height, width) -> tf.Tensor:
  """The part of an odd-sized kernel that a stride-1 SAME convolution over an
  (height x width) map can ever multiply with data.

  Output pixel i reads input i + t - (k - 1) / 2 for tap t, so over an input
  of side S only the central 2S - 1 taps meet data; the rest only meet the
  zero padding. Convolving with the central crop (again SAME) gives exactly
  the same output and gradients, without multiplying zeros: on GoogLeNet's
  28x28 input the 3x3 and 5x5 branches of 5a/5b run on 1x1 maps (9x and 25x
  wasted work) and the 5x5 branches of 4a-4e on 2x2 maps.
  """
  kh, kw = kernel.shape[0], kernel.shape[1]
  ch, cw = _cropped_sides(kh, kw, height, width)
  if (ch, cw) == (kh, kw):
    return kernel
  top, left = (kh - ch) // 2, (kw - cw) // 2
  # tf.slice, not [] indexing: Slice's gradient is a Pad, StridedSlice's a
  # generic StridedSliceGrad that was 3x slower here.
  return tf.slice(kernel, [top, left, 0, 0], [ch, cw, -1, -1])


def _out_shape(x: tf.Tensor, channels: int) -> list:
  """[N, H, W, channels], static where `x`'s shape is, for tf.reshape."""
  dynamic = tf.shape(x)
  return [dynamic[i] if d is None else d
          for i, d in enumerate(x.shape[:-1])] + [channels]


def _tap_selector(kernel_size: int, height: int, width: int) -> np.ndarray:
  """One-hot [H*W (input pixel) * H*W (output pixel), kernel taps].

  Row (i, o) selects the tap that a stride-1 SAME convolution multiplies
  input pixel i with to produce output pixel o; an all-zero row where
  pixel i lies outside o's window.
  """
  half = (kernel_size - 1) // 2
  pixels = [(r, c) for r in range(height) for c in range(width)]
  select = np.zeros([len(pixels), len(pixels), kernel_size * kernel_size],
                    np.float32)
  for i, (ir, ic) in enumerate(pixels):
    for o, (orow, ocol) in enumerate(pixels):
      tr, tc = ir - orow + half, ic - ocol + half
      if 0 <= tr < kernel_size and 0 <= tc < kernel_size:
        select[i, o, tr * kernel_size + tc] = 1.0
  return select.reshape([len(pixels) ** 2, kernel_size * kernel_size])


def _cropped_sides(kh: int, kw: int, height, width):
  """A kernel's (height, width) after `crop_to_map` (None: side unknown)."""
  if kh % 2 == 0 or kw % 2 == 0:
    return kh, kw
  return (kh if height is None else min(kh, 2 * height - 1),
          kw if width is None else min(kw, 2 * width - 1))


def _use_dense(kh: int, kw: int, height, width) -> bool:
  """Whether a whole-map matrix product beats the convolution: it costs
  (H W)^2 C K multiply-adds against the convolution's H W k^2 C K, and wins
  when it does at most half the work (2x2 maps with 3x3 kernels; measured in
  BUILD.md). Non-square kernels keep the convolution."""
  if height is None or width is None or kh != kw:
    return False
  return 2 * height * width <= kh * kw


def choose(kernel_shape, height, width, *, stride: int, padding,
           reference: bool = False) -> str:
  """Names the formulation `conv2d` uses for these shapes.

  Returns:
    "reference" (`tf.nn.conv2d`, whole kernel), "pointwise" (a 1x1 kernel,
    or one cropped to 1x1 by `crop_to_map`, as [N H W, C] x [C, K]),
    "whole_map" (one matrix product over whole maps) or "convolution"
    (`tf.nn.conv2d` on the cropped kernel).
  """
  if reference:
    return "reference"
  kh, kw = kernel_shape[0], kernel_shape[1]
  if stride == 1 and padding == "SAME":
    kh, kw = _cropped_sides(kh, kw, height, width)
    if (kh, kw) == (1, 1):
      return "pointwise"
    if _use_dense(kh, kw, height, width):
      return "whole_map"
    return "convolution"
  unpadded = padding in ("SAME", "VALID", 0)
  return ("pointwise" if stride == 1 and (kh, kw) == (1, 1) and unpadded
          else "convolution")


def conv2d(x: tf.Tensor, kernel: tf.Tensor, bias: Optional[tf.Tensor] = None,
           activation: Optional[Activation] = None, *, stride: int = 1,
           padding="SAME", reference: bool = False) -> tf.Tensor:
  """activation(conv(x, kernel) + bias) over NHWC `x`, through the cheapest
  exact formulation for the shapes (`choose`; all give the same outputs and
  gradients up to float rounding; tests/layers/formulations_test.py checks
  each):

  - a 1x1 kernel at stride 1, or a kernel cropped to 1x1 (`crop_to_map`),
    is a matrix product over all pixels: [N H W, C] x [C, K] (in bfloat16
    on maps of 7x7 or more, with a bias or activation: a 1x1 convolution
    forward and those products backward; `large_bfloat16` says why);
  - a stride-1 SAME convolution over a map with few pixels (2x2 under a 3x3
    kernel) is one matrix product over whole maps, [N, H W C] x [H W C, H W K],
    with the weight matrix assembled from the kernel's taps by a constant
    one-hot product (its gradient is a matrix product too, deterministic on
    every device);
  - anything else is `tf.nn.conv2d`.

  oneDNN's convolution primitives carry a fixed cost per call that dominates
  on the tiny maps of a 28x28 input (GoogLeNet's 4x and 5x blocks); matrix
  products do not. `kernel` and `bias` are cast to `x`'s dtype.

  Args:
    x: [N, H, W, C] input.
    kernel: [k, k, C, K] weights.
    bias: Optional [K] bias.
    activation: Optional function applied after the bias.
    stride: Spatial stride.
    padding: "SAME", "VALID" or an int (zeros on every side).
    reference: Use the textbook `tf.nn.conv2d` with the whole kernel.

  Returns:
    [N, H', W', K] in `x`'s dtype.
  """
  kernel = tf.cast(kernel, x.dtype)
  height, width = x.shape[1], x.shape[2]
  out_channels = kernel.shape[3]
  path = choose(kernel.shape, height, width, stride=stride, padding=padding,
                reference=reference)
  if path != "reference" and stride == 1 and padding == "SAME":
    kernel = crop_to_map(kernel, height, width)
  if path == "pointwise" and large_bfloat16(x) and (
      bias is not None or activation is not None):
    return bias_activation(_pointwise_convolution(x, kernel), bias,
                            activation)
  if path == "pointwise":
    rows = tf.matmul(tf.reshape(x, [-1, kernel.shape[2]]),
                     tf.reshape(kernel, [kernel.shape[2], out_channels]))
  elif path == "whole_map":
    rows = _whole_map_product(x, kernel)
  else:
    return bias_activation(
        tf.nn.conv2d(x, kernel, strides=stride, padding=_tf_padding(padding)),
        bias,
        activation)
  # Bias and activation on [rows, K], where grappler fuses them into the
  # matrix product; then back to NHWC.
  return tf.reshape(bias_activation(rows, bias, activation),
                    _out_shape(x, out_channels))


def large_bfloat16(x: tf.Tensor) -> bool:
  """Whether `x` is a bfloat16 map of at least 7x7 pixels (the smallest of
  GoogLeNet at 224x224), where a pointwise product with a bias or activation
  runs forward as a 1x1 convolution, and an inception block's three 1x1
  convolutions on its input as one (layers/inception.py).

  In bfloat16 grappler fuses MatMul + BiasAdd + Relu into oneDNN's inner
  product, which runs a gemm without AMX: 1.4-2x slower than the 1x1
  convolution with the same fused epilogue (on AMX) at batch 64 on 7x7 and
  14x14 maps, 5x on 56x56. On 4x4 maps and smaller (a 28x28 input's blocks)
  the convolution's fixed cost per call makes it the slower one; in
  float32, and without an epilogue to fuse, the matrix product is as fast.
  Measured in docs/experiments/2026-12-amx-profile.md.
  """
  height, width = x.shape[1], x.shape[2]
  return (x.dtype == tf.bfloat16 and height is not None and width is not None
          and height * width >= 49)


def _pointwise_convolution(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
  """x * kernel for a [1, 1, C, K] kernel: a 1x1 convolution forward, whose
  gradients are the matrix products of the pointwise path (oneDNN's 1x1
  weight gradient is 2-4x slower than the product's)."""
  in_channels, out_channels = kernel.shape[2], kernel.shape[3]

  @tf.custom_gradient
  def convolve(x, kernel):
    rows = tf.reshape(x, [-1, in_channels])
    weights = tf.reshape(kernel, [in_channels, out_channels])

    def gradient(dy):
      dy_rows = tf.reshape(dy, [-1, out_channels])
      return (tf.reshape(tf.matmul(dy_rows, weights, transpose_b=True),
                         tf.shape(x)),
              tf.reshape(tf.matmul(rows, dy_rows, transpose_a=True),
                         kernel.shape))
    return tf.nn.conv2d(x, kernel, strides=1, padding="VALID"), gradient
  return convolve(x, kernel)


def _tf_padding(padding):
  """`tf.nn.conv2d`'s padding for ours: an int is explicit NHWC padding."""
  if isinstance(padding, str):
    return padding
  return [[0, 0], [padding, padding], [padding, padding], [0, 0]]


def _whole_map_product(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
  """[N H W, K] rows of a stride-1 SAME convolution as one product per map."""
  k, in_channels, out_channels = kernel.shape[0], kernel.shape[2], kernel.shape[3]
  height, width = x.shape[1], x.shape[2]
  pixels = height * width
  select = tf.constant(_tap_selector(k, height, width), x.dtype)
  weights = tf.matmul(select, tf.reshape(kernel, [k * k, -1]))
  weights = tf.reshape(tf.transpose(tf.reshape(
      weights, [pixels, pixels, in_channels, out_channels]), [0, 2, 1, 3]),
                       [pixels * in_channels, pixels * out_channels])
  return tf.reshape(
      tf.matmul(tf.reshape(x, [-1, pixels * in_channels]), weights),
      [-1, out_channels])


def bias_add(y: tf.Tensor, bias: tf.Tensor,
             activation: Optional[Activation] = None) -> tf.Tensor:
  """activation(y + bias) on the last axis, `bias` cast to y's dtype.

  In bfloat16 the bias's gradient is accumulated in float32 and returned
  in the bias's dtype. TensorFlow's own gradient accumulates bfloat16 in
  bfloat16 on the CPU (BiasAddGrad, and oneDNN's convolution backward with
  the bias fused): a sum of ones stops at 256, and on a 224x224 network's
  maps the bias gradients came out 20-40 % off
  (docs/experiments/2026-12-amx-limits.md). Here `_column_sums` sums it in
  float32. A ReLU runs inside the same gradient, so grappler still fuses
  the product or convolution, BiasAdd and Relu into one kernel. float16
  keeps TF's gradient, which sums in float32.
  """
  if y.dtype != tf.bfloat16:
    y = tf.nn.bias_add(y, tf.cast(bias, y.dtype))
    return activation(y) if activation is not None else y
  relu = activation is tf.nn.relu

  @tf.custom_gradient
  def add(y, bias):
    out = tf.nn.bias_add(y, tf.cast(bias, y.dtype))
    out = tf.nn.relu(out) if relu else out

    def gradient(dy):
      if relu:
        dy = tf.raw_ops.ReluGrad(gradients=dy, features=out)
      channels = tf.shape(dy)[-1] if dy.shape[-1] is None else dy.shape[-1]
      rows = tf.reshape(dy, [-1, channels])
      return dy, tf.cast(_column_sums(rows), bias.dtype)
    return out, gradient
  out = add(y, tf.convert_to_tensor(bias))
  return activation(out) if activation is not None and not relu else out


def _column_sums(rows: tf.Tensor) -> tf.Tensor:
  """[K] sums of bfloat16 [R, K] `rows`, accumulated in float32.

  Where TensorFlow's bfloat16 product accumulates in float32 and rounds
  once (oneDNN's with native bfloat16, as on AMX; cuBLAS; XLA) the sum is
  a product with a row of ones, as before this choice existed. Where it is
  TF's own CPU kernel (oneDNN off, or a CPU without AVX-512 such as an
  AVX2 EPYC, where oneDNN declines bfloat16) the product truncates the
  float32 sum to bfloat16: 0.25 % low on average, up to 0.7 % on a
  [50,176, 256] gradient. There the rows are cast and summed in float32,
  exact on every device (TF's GPU Sum adds bfloat16 in bfloat16).
  """
  if _product_rounds_once():
    total = tf.matmul(tf.ones([1, tf.shape(rows)[0]], rows.dtype), rows)
    return tf.reshape(total, [-1])
  return tf.reduce_sum(tf.cast(rows, tf.float32), 0)


@functools.lru_cache(maxsize=None)
def _product_rounds_once() -> bool:
  """Whether this process's CPU bfloat16 MatMul accumulates in float32 and
  rounds once: 1 + 2^-8 + 2^-10 is 1 + 2^-7 rounded, 1 truncated, and a
  sum of 300 ones is 300 (one that adds in bfloat16 stops at 256, in any
  order). Asked of the kernel itself, in a graph as training runs it
  (grappler's oneDNN rewrite), since TF picks it at import from its build,
  the CPU and TF_ENABLE_ONEDNN_OPTS."""
  product = tf.function(tf.matmul)
  with tf.init_scope(), tf.device("/CPU:0"):
    terms = tf.constant([[1.0, 2.0**-8, 2.0**-10]], tf.bfloat16)
    rounded = product(terms, tf.ones([3, 1], tf.bfloat16))[0, 0] > 1
    ones = product(tf.ones([1, 300], tf.bfloat16),
                   tf.ones([300, 1], tf.bfloat16))[0, 0]
    return bool(rounded) and float(ones) == 300


def bias_activation(y: tf.Tensor, bias: Optional[tf.Tensor],
                    activation: Optional[Activation]) -> tf.Tensor:
  """activation(y + bias), either optional (`bias_add` when there is a
  bias)."""
  if bias is not None:
    return bias_add(y, bias, activation)
  return activation(y) if activation is not None else y
