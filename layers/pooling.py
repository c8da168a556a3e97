"""Max, average and global average pooling over NHWC inputs (no variables)."""

from typing import Optional

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
  """Max pooling (`tf.nn.max_pool2d`)."""
  _op = staticmethod(tf.nn.max_pool2d)


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


class GlobalAvgPool(tf.Module):
  """Mean over the spatial dimensions: [N, H, W, C] -> [N, C]."""

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    """Averages `x` of shape [N, H, W, C] over H and W."""
    return tf.reduce_mean(x, axis=[1, 2])
