"""Max, average and global average pooling over NHWC inputs (no variables)."""

from typing import Optional

import numpy as np
import tensorflow as tf

from layers import _checks


class _Pool2D(tf.Module):
  """Square-window pooling; subclasses pick the reduction."""

  _op = None

  def __init__(self, window: int, stride: int, *, padding: str = "SAME",
               name: Optional[str] = None):
    """Stores the window.

    Args:
      window: Height and width of the pooling window.
      stride: Spatial stride.
      padding: "SAME" or "VALID".
      name: Module name.

    Raises:
      ValueError: If a size is not a positive integer or `padding` is unknown.
    """
    super().__init__(name=name)
    self.window = _checks.positive_int("window", window)
    self.stride = _checks.positive_int("stride", stride)
    self.padding = _checks.padding(padding)

  def out_size(self, in_size: int) -> int:
    """Spatial size of the output for a square input of side `in_size`."""
    if self.padding == "SAME":
      return -(-in_size // self.stride)
    return (in_size - self.window) // self.stride + 1

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    """Pools `x` of shape [N, H, W, C]."""
    if (self.stride == 1 and self.padding == "SAME" and x.shape[1] == 1
        and x.shape[2] == 1):
      return x  # A 1x1 map's window holds only the pixel itself (5a, 5b).
    return type(self)._op(x, ksize=self.window, strides=self.stride,
                          padding=self.padding)


class MaxPool2D(_Pool2D):
  """Max pooling (`tf.nn.max_pool2d`).

  `ceil_mode=True` is PyTorch's `MaxPool2d(ceil_mode=True)` without padding
  (torchvision's GoogLeNet): windows start at 0, s, 2s, ... as with VALID,
  and a last window that runs past the bottom or right edge is kept and
  pools only the pixels inside. It differs from SAME, which centres the
  windows: over 15 pixels a 3x3/2 pool gives 7 windows starting at 0 in
  ceil mode, and 8 starting at -1 with SAME.
  """
  _op = staticmethod(tf.nn.max_pool2d)

  def __init__(self, window: int, stride: int, *, padding: str = "SAME",
               ceil_mode: bool = False, name: Optional[str] = None):
    """As _Pool2D; `ceil_mode` replaces `padding` (see the class)."""
    super().__init__(window, stride, padding="VALID" if ceil_mode else padding,
                     name=name)
    self.ceil_mode = bool(ceil_mode)

  def out_size(self, in_size: int) -> int:
    """Spatial size of the output for a square input of side `in_size`."""
    if not self.ceil_mode:
      return super().out_size(in_size)
    size = -(-(in_size - self.window) // self.stride) + 1
    # PyTorch's rule: the last window must start inside the input.
    return size - 1 if (size - 1) * self.stride >= in_size else size

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    """Pools `x` of shape [N, H, W, C]."""
    if self.ceil_mode:
      extra = [max((self.out_size(side) - 1) * self.stride + self.window
                   - side, 0) for side in (x.shape[1], x.shape[2])]
      if any(extra):
        x = tf.pad(x, [[0, 0], [0, extra[0]], [0, extra[1]], [0, 0]],
                   constant_values=x.dtype.min)
    return super().__call__(x)


class AvgPool2D(_Pool2D):
  """Average pooling (`tf.nn.avg_pool2d`); SAME padding averages only the
  elements inside the image, as TF does."""
  _op = staticmethod(tf.nn.avg_pool2d)

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    """Pools `x` of shape [N, H, W, C]."""
    if (self.padding == "VALID" and x.shape[1] == self.window
        and x.shape[2] == self.window):
      # One window covering the map (the aux heads at 28x28): a mean, which
      # is cheaper than the pooling kernel and its gradient.
      return tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    return super().__call__(x)


class AdaptiveAvgPool2D(tf.Module):
  """PyTorch's `adaptive_avg_pool2d` to a fixed `size` x `size` output
  (torchvision's auxiliary heads pool 14x14 maps to 4x4): output cell i of
  a side of n pixels averages pixels floor(i n / size) to
  ceil((i + 1) n / size) - 1, so windows may differ in size and overlap.
  Computed as two products with constant averaging matrices (the input's
  sides must be static).
  """

  def __init__(self, size: int, *, name: Optional[str] = None):
    super().__init__(name=name)
    self.size = _checks.positive_int("size", size)

  def out_size(self, in_size: int) -> int:
    """Spatial size of the output (`size`, whatever `in_size` is)."""
    del in_size
    return self.size

  def matrix(self, side: int) -> np.ndarray:
    """[size, side]: row i averages the pixels of output cell i."""
    rows = np.zeros([self.size, side], np.float32)
    for i in range(self.size):
      start, stop = (i * side) // self.size, -(-((i + 1) * side) // self.size)
      rows[i, start:stop] = 1.0 / (stop - start)
    return rows

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    """Pools `x` of shape [N, H, W, C] to [N, size, size, C]."""
    rows = tf.constant(self.matrix(x.shape[1]), x.dtype)
    cols = tf.constant(self.matrix(x.shape[2]), x.dtype)
    return tf.einsum("ih,nhwc,jw->nijc", rows, x, cols)


class GlobalAvgPool(tf.Module):
  """Mean over the spatial dimensions: [N, H, W, C] -> [N, C]."""

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    """Averages `x` of shape [N, H, W, C] over H and W."""
    return tf.reduce_mean(x, axis=[1, 2])
