"""2-D convolution over NHWC inputs with an explicitly shaped kernel."""

import contextlib
import threading
from typing import Callable, Iterator, Optional

import numpy as np
import tensorflow as tf

from layers import _checks
from layers import initializers
from layers import variables

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
  if kh % 2 == 0 or kw % 2 == 0:
    return kernel
  ch = kh if height is None else min(kh, 2 * height - 1)
  cw = kw if width is None else min(kw, 2 * width - 1)
  if (ch, cw) == (kh, kw):
    return kernel
  top, left = (kh - ch) // 2, (kw - cw) // 2
  # tf.slice, not [] indexing: Slice's gradient is a Pad, StridedSlice's a
  # generic StridedSliceGrad that was 3x slower here.
  return tf.slice(kernel, [top, left, 0, 0], [ch, cw, -1, -1])


_MODE = threading.local()


@contextlib.contextmanager
def reference_convolutions() -> Iterator[None]:
  """Within this context (at trace time), `conv2d` runs the textbook
  `tf.nn.conv2d` with the whole kernel: what bench/flops.py counts as the
  model's nominal cost and what the tests compare the fast paths against."""
  previous = getattr(_MODE, "reference", False)
  _MODE.reference = True
  try:
    yield
  finally:
    _MODE.reference = previous


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


def _use_dense(kernel: tf.Tensor, height, width) -> bool:
  """Whether a whole-map matrix product beats the convolution: it costs
  (H W)^2 C K multiply-adds against the convolution's H W k^2 C K, and wins
  when it does at most half the work (2x2 maps with 3x3 kernels; measured in
  BUILD.md). Non-square kernels keep the convolution."""
  k = kernel.shape[0]
  if height is None or width is None or k != kernel.shape[1]:
    return False
  return 2 * height * width <= k * k


def conv2d(x: tf.Tensor, kernel: tf.Tensor, bias: Optional[tf.Tensor] = None,
           activation: Optional[Activation] = None, *, stride: int = 1,
           padding: str = "SAME") -> tf.Tensor:
  """activation(conv(x, kernel) + bias) over NHWC `x`, through the cheapest
  exact formulation for the shapes (all give the same outputs and gradients
  up to float rounding; tests/layers/conv_test.py checks each):

  - a 1x1 kernel at stride 1, or a kernel cropped to 1x1 (`crop_to_map`),
    is a matrix product over all pixels: [N H W, C] x [C, K];
  - a stride-1 SAME convolution over a map with few pixels (2x2 under a 3x3
    kernel) is one matrix product over whole maps, [N, H W C] x [H W C, H W K],
    with the weight matrix assembled from the kernel's taps by a constant
    one-hot product (its gradient is a matrix product too, deterministic on
    every device);
  - anything else is `tf.nn.conv2d`.

  oneDNN's convolution primitives carry a fixed cost per call that dominates
  on the tiny maps of a 28x28 input (GoogLeNet's 4x and 5x blocks); matrix
  products do not. `kernel` and `bias` are cast to `x`'s dtype.
  """
  kernel = tf.cast(kernel, x.dtype)
  height, width = x.shape[1], x.shape[2]
  in_channels, out_channels = kernel.shape[2], kernel.shape[3]
  if getattr(_MODE, "reference", False):
    return _bias_activation(
        tf.nn.conv2d(x, kernel, strides=stride, padding=padding), bias,
        activation)
  if stride == 1 and padding == "SAME":
    kernel = crop_to_map(kernel, height, width)
  k = kernel.shape[0]
  if stride == 1 and k == 1 and kernel.shape[1] == 1:
    rows = tf.matmul(tf.reshape(x, [-1, in_channels]),
                     tf.reshape(kernel, [in_channels, out_channels]))
  elif stride == 1 and padding == "SAME" and _use_dense(kernel, height,
                                                          width):
    pixels = height * width
    select = tf.constant(_tap_selector(k, height, width), x.dtype)
    weights = tf.matmul(select, tf.reshape(kernel, [k * k, -1]))
    weights = tf.reshape(tf.transpose(tf.reshape(
        weights, [pixels, pixels, in_channels, out_channels]), [0, 2, 1, 3]),
                         [pixels * in_channels, pixels * out_channels])
    rows = tf.reshape(
        tf.matmul(tf.reshape(x, [-1, pixels * in_channels]), weights),
        [-1, out_channels])
  else:
    return _bias_activation(
        tf.nn.conv2d(x, kernel, strides=stride, padding=padding), bias,
        activation)
  # Bias and activation on [rows, K], where grappler fuses them into the
  # matrix product; then back to NHWC.
  return tf.reshape(_bias_activation(rows, bias, activation),
                    _out_shape(x, out_channels))


def _bias_activation(y, bias, activation):
  if bias is not None:
    y = tf.nn.bias_add(y, tf.cast(bias, y.dtype))
  return activation(y) if activation is not None else y


class Conv2D(tf.Module):
  """Square 2-D convolution, optional bias and activation.

  Variables are float32; the convolution runs in the input's dtype (the kernel
  is cast), which is how mixed precision keeps float32 master weights.
  """

  def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
               stride: int = 1, padding: str = "SAME",
               activation: Optional[Activation] = None, use_bias: bool = True,
               kernel_init: Optional[initializers.Initializer] = None,
               bias_init: Optional[initializers.Initializer] = None,
               name: Optional[str] = None):
    """Creates the kernel and the bias.

    Args:
      in_channels: Input channels; fixes the kernel shape.
      out_channels: Number of filters.
      kernel_size: Height and width of the square kernel.
      stride: Spatial stride.
      padding: "SAME" or "VALID".
      activation: Applied after the bias, e.g. `tf.nn.relu`; None for linear.
      use_bias: Whether to add a per-channel bias.
      kernel_init: Defaults to He normal (initializers.py says why).
      bias_init: Defaults to zeros.
      name: Module name; prefixes every variable name.

    Raises:
      ValueError: If a size is not a positive integer or `padding` is unknown.
    """
    super().__init__(name=name)
    self.in_channels = _checks.positive_int("in_channels", in_channels)
    self.out_channels = _checks.positive_int("out_channels", out_channels)
    self.kernel_size = _checks.positive_int("kernel_size", kernel_size)
    self.stride = _checks.positive_int("stride", stride)
    self.padding = _checks.padding(padding)
    self._activation = activation
    kernel_init = kernel_init or initializers.he_normal()
    bias_init = bias_init or initializers.zeros()
    with self.name_scope:
      self.kernel = variables.weight(
          kernel_init([kernel_size, kernel_size, in_channels, out_channels],
                      tf.float32), name="kernel")
      self.bias = (variables.weight(bias_init([out_channels], tf.float32),
                                    name="bias") if use_bias else None)

  def out_size(self, in_size: int) -> int:
    """Spatial size of the output for a square input of side `in_size`."""
    if self.padding == "SAME":
      return -(-in_size // self.stride)
    return (in_size - self.kernel_size) // self.stride + 1

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    """Convolves `x` of shape [N, H, W, in_channels]."""
    _checks.channels(self.name, self.in_channels, x.shape[-1])
    return conv2d(x, self.kernel, self.bias, self._activation,
                  stride=self.stride, padding=self.padding)
