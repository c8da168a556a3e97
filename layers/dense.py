"""Fully connected layer with an explicitly shaped kernel."""

from typing import Callable, Optional

import tensorflow as tf

from layers import _checks
from layers import formulations
from layers import initializers
from layers import variables


class Dense(tf.Module):
  """y = activation(x @ kernel + bias) on inputs of shape [N, in_features]."""

  def __init__(self, in_features: int, out_features: int, *,
               activation: Optional[Callable[[tf.Tensor], tf.Tensor]] = None,
               use_bias: bool = True,
               kernel_init: Optional[initializers.Initializer] = None,
               bias_init: Optional[initializers.Initializer] = None,
               name: Optional[str] = None):
    """Creates the kernel and the bias.

    Args:
      in_features: Input width; fixes the kernel shape.
      out_features: Output width.
      activation: Applied after the bias; None for a linear layer.
      use_bias: Whether to add a bias.
      kernel_init: Defaults to He normal before an activation, LeCun normal
        for a linear (logit) layer.
      bias_init: Defaults to zeros.
      name: Module name; prefixes every variable name.

    Raises:
      ValueError: If a size is not a positive integer.
    """
    super().__init__(name=name)
    self.in_features = _checks.positive_int("in_features", in_features)
    self.out_features = _checks.positive_int("out_features", out_features)
    self._activation = activation
    if kernel_init is None:
      kernel_init = (initializers.he_normal() if activation
                     else initializers.lecun_normal())
    bias_init = bias_init or initializers.zeros()
    with self.name_scope:
      self.kernel = variables.weight(
          kernel_init([in_features, out_features], tf.float32), name="kernel")
      self.bias = (variables.weight(bias_init([out_features], tf.float32),
                                    name="bias") if use_bias else None)

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    """Applies the layer to `x` of shape [N, in_features]."""
    _checks.channels(self.name, self.in_features, x.shape[-1])
    return formulations.bias_activation(
        tf.matmul(x, tf.cast(self.kernel, x.dtype)), self.bias,
        self._activation)
