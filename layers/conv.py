"""2-D convolution over NHWC inputs with an explicitly shaped kernel."""

from typing import Callable, Optional

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
  return kernel[top:top + ch, left:left + cw]


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
    kernel = self.kernel
    if self.stride == 1 and self.padding == "SAME":
      kernel = crop_to_map(kernel, x.shape[1], x.shape[2])
    y = tf.nn.conv2d(x, tf.cast(kernel, x.dtype), strides=self.stride,
                     padding=self.padding)
    if self.bias is not None:
      y = tf.nn.bias_add(y, tf.cast(self.bias, x.dtype))
    return self._activation(y) if self._activation else y
