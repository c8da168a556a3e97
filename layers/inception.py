"""The Inception block: four parallel branches concatenated on channels."""

from typing import NamedTuple, Optional

import tensorflow as tf

from layers import _checks
from layers import conv
from layers import pooling


class InceptionSpec(NamedTuple):
  """Filter counts of one block: one row of Table 1 in Szegedy et al. 2014."""
  conv1x1: int
  conv3x3_reduce: int
  conv3x3: int
  conv5x5_reduce: int
  conv5x5: int
  pool_proj: int

  @property
  def out_channels(self) -> int:
    return self.conv1x1 + self.conv3x3 + self.conv5x5 + self.pool_proj


class Inception(tf.Module):
  """1x1 | 1x1->3x3 | 1x1->5x5 | 3x3 max pool->1x1, each followed by ReLU.

  The branches run as the paper draws them. Fusing the three 1x1
  convolutions that read the block's input into one wider product (with the
  kernels concatenated every step) was measured and dropped: equal at
  224x224, 8 % slower at 28x28, where the per-step concatenation and split
  of the kernels cost more than the bigger product saves (BUILD.md).
  """

  def __init__(self, in_channels: int, spec: InceptionSpec, *,
               name: Optional[str] = None):
    """Creates the six convolutions of the block.

    Args:
      in_channels: Channels of the block's input.
      spec: The block's filter counts.
      name: Module name, e.g. "inception_4a".

    Raises:
      ValueError: If `in_channels` or a filter count is not a positive integer.
    """
    super().__init__(name=name)
    self.in_channels = _checks.positive_int("in_channels", in_channels)
    for field, value in spec._asdict().items():
      _checks.positive_int(f"spec.{field}", value)
    self.spec = spec
    self.out_channels = spec.out_channels
    relu = tf.nn.relu
    with self.name_scope:
      self.branch1x1 = conv.Conv2D(in_channels, spec.conv1x1, 1,
                                   activation=relu, name="branch1x1")
      self.branch3x3_reduce = conv.Conv2D(in_channels, spec.conv3x3_reduce, 1,
                                          activation=relu,
                                          name="branch3x3_reduce")
      self.branch3x3 = conv.Conv2D(spec.conv3x3_reduce, spec.conv3x3, 3,
                                   activation=relu, name="branch3x3")
      self.branch5x5_reduce = conv.Conv2D(in_channels, spec.conv5x5_reduce, 1,
                                          activation=relu,
                                          name="branch5x5_reduce")
      self.branch5x5 = conv.Conv2D(spec.conv5x5_reduce, spec.conv5x5, 5,
                                   activation=relu, name="branch5x5")
      self.pool = pooling.MaxPool2D(3, 1, name="pool")
      self.branch_pool = conv.Conv2D(in_channels, spec.pool_proj, 1,
                                     activation=relu, name="branch_pool")

  def __call__(self, x: tf.Tensor, *, reference: bool = False) -> tf.Tensor:
    """Maps [N, H, W, in_channels] to [N, H, W, out_channels].

    `reference` runs textbook convolutions (layers/formulations.py).
    """
    _checks.channels(self.name, self.in_channels, x.shape[-1])
    ref = reference
    return tf.concat([
        self.branch1x1(x, reference=ref),
        self.branch3x3(self.branch3x3_reduce(x, reference=ref), reference=ref),
        self.branch5x5(self.branch5x5_reduce(x, reference=ref), reference=ref),
        self.branch_pool(self.pool(x), reference=ref),
    ], axis=-1)
