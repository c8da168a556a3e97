"""2-D convolution layer over NHWC inputs with an explicitly shaped kernel."""

from typing import List, Optional, Sequence, Union

import tensorflow as tf

from layers import _checks
from layers import formulations
from layers import initializers
from layers import normalization
from layers import variables

class Conv2D(tf.Module):
  """Square 2-D convolution, optional bias or batch normalisation, and
  activation.

  Variables are float32; the convolution runs in the input's dtype (the kernel
  is cast), which is how mixed precision keeps float32 master weights.
  """

  def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
               stride: int = 1, padding: Union[str, int] = "SAME",
               activation: Optional[formulations.Activation] = None,
               use_bias: bool = True, batch_norm: bool = False,
               kernel_init: Optional[initializers.Initializer] = None,
               bias_init: Optional[initializers.Initializer] = None,
               name: Optional[str] = None):
    """Creates the kernel and the bias.

    Args:
      in_channels: Input channels; fixes the kernel shape.
      out_channels: Number of filters.
      kernel_size: Height and width of the square kernel.
      stride: Spatial stride.
      padding: "SAME", "VALID", or an int: that many zero rows and columns
        on every side, as PyTorch pads (torchvision's GoogLeNet pads its
        stride-2 first convolution by 3 on both sides, where TF's SAME pads
        2 before and 3 after).
      activation: Applied after the bias, e.g. `tf.nn.relu`; None for linear.
      use_bias: Whether to add a per-channel bias (ignored with
        `batch_norm`, whose beta is the bias).
      batch_norm: Normalise the convolution's output before the activation
        (layers/normalization.py).
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
    self.padding = _checks.padding(padding, explicit=True)
    self.activation = activation
    kernel_init = kernel_init or initializers.he_normal()
    bias_init = bias_init or initializers.zeros()
    with self.name_scope:
      self.kernel = variables.weight(
          kernel_init([kernel_size, kernel_size, in_channels, out_channels],
                      tf.float32), name="kernel")
      self.bias = (variables.weight(bias_init([out_channels], tf.float32),
                                    name="bias")
                   if use_bias and not batch_norm else None)
      self.norm = (normalization.BatchNorm(out_channels, name="batch_norm")
                   if batch_norm else None)

  def out_size(self, in_size: int) -> int:
    """Spatial size of the output for a square input of side `in_size`."""
    if self.padding == "SAME":
      return -(-in_size // self.stride)
    pad = 0 if self.padding == "VALID" else 2 * self.padding
    return (in_size + pad - self.kernel_size) // self.stride + 1

  def __call__(self, x: tf.Tensor, *,
               stats: Optional[normalization.BatchStatistics] = None,
               reference: bool = False) -> tf.Tensor:
    """Convolves `x` of shape [N, H, W, in_channels].

    Args:
      x: The input.
      stats: With batch normalisation, training: the forward pass's
        statistics context; None normalises with the moving statistics.
      reference: Use the textbook convolution instead of the fastest exact
        formulation (layers/formulations.py).
    """
    _checks.channels(self.name, self.in_channels, x.shape[-1])
    if self.norm is None:
      return formulations.conv2d(x, self.kernel, self.bias, self.activation,
                                 stride=self.stride, padding=self.padding,
                                 reference=reference)
    y = self.norm(formulations.conv2d(
        x, self.kernel, None, None, stride=self.stride, padding=self.padding,
        reference=reference), stats)
    return y if self.activation is None else self.activation(y)


def side_by_side(convs: Sequence[Conv2D], x: tf.Tensor) -> List[tf.Tensor]:
  """`[c(x) for c in convs]` as one convolution with the kernels and biases
  concatenated (every call; the variables stay each layer's own, so their
  checkpoint keys do not change): one read of `x` and one product, whose
  input gradient is one product instead of a sum of one per layer.

  Raises:
    ValueError: If the layers differ in input width, kernel size, stride,
      padding or activation, or one has no bias or has batch normalisation.
  """
  first = convs[0]
  shared = lambda c: (c.in_channels, c.kernel_size, c.stride, c.padding,
                      c.activation)
  if any(shared(c) != shared(first) or c.bias is None for c in convs):
    raise ValueError(
        "`convs` must share input width, kernel size, stride, padding and "
        "activation and each have a bias and no batch normalisation; "
        f"received convs={[c.name for c in convs]}.")
  _checks.channels(first.name, first.in_channels, x.shape[-1])
  y = formulations.conv2d(
      x, tf.concat([c.kernel for c in convs], axis=-1),
      tf.concat([c.bias for c in convs], axis=-1), first.activation,
      stride=first.stride, padding=first.padding)
  return tf.split(y, [c.out_channels for c in convs], axis=-1)
