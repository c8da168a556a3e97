"""The Inception block: four parallel branches concatenated on channels."""

from typing import NamedTuple, Optional

import tensorflow as tf

from layers import _checks
from layers import conv
from layers import formulations
from layers import normalization
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

  The branches run as the paper draws them, except that on bfloat16 maps
  of 7x7 or more (formulations.large_bfloat16) without batch normalisation
  the three 1x1 convolutions that read the block's input run as one
  (conv.side_by_side): 6 % faster a training step at 224x224 on AMX
  (docs/experiments/2026-12-amx-profile.md). In float32 the fusion was equal
  at 224x224 and 8 % slower at 28x28 (BUILD.md), and it would change the
  rounding, so float32 keeps the branches apart.
  """

  def __init__(self, in_channels: int, spec: InceptionSpec, *,
               batch_norm: bool = False, wide_kernel: int = 5,
               name: Optional[str] = None):
    """Creates the six convolutions of the block.

    Args:
      in_channels: Channels of the block's input.
      spec: The block's filter counts.
      batch_norm: Batch-normalise every convolution (conv.Conv2D).
      wide_kernel: Kernel side of the "5x5" branch: 5 in the paper, 3 in
        the published ImageNet GoogLeNets (torchvision's and TF-slim's);
        the branch keeps its name either way, as theirs do.
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
    with self.name_scope:
      def relu_conv(cin, cout, size, name):
        return conv.Conv2D(cin, cout, size, activation=tf.nn.relu,
                           batch_norm=batch_norm, name=name)
      self.branch1x1 = relu_conv(in_channels, spec.conv1x1, 1, "branch1x1")
      self.branch3x3_reduce = relu_conv(in_channels, spec.conv3x3_reduce, 1,
                                        "branch3x3_reduce")
      self.branch3x3 = relu_conv(spec.conv3x3_reduce, spec.conv3x3, 3,
                                 "branch3x3")
      self.branch5x5_reduce = relu_conv(in_channels, spec.conv5x5_reduce, 1,
                                        "branch5x5_reduce")
      self.branch5x5 = relu_conv(spec.conv5x5_reduce, spec.conv5x5,
                                 _checks.positive_int("wide_kernel",
                                                      wide_kernel),
                                 "branch5x5")
      self.pool = pooling.MaxPool2D(3, 1, name="pool")
      self.branch_pool = relu_conv(in_channels, spec.pool_proj, 1,
                                   "branch_pool")

  def __call__(self, x: tf.Tensor, *,
               stats: Optional[normalization.BatchStatistics] = None,
               reference: bool = False) -> tf.Tensor:
    """Maps [N, H, W, in_channels] to [N, H, W, out_channels].

    `stats`: the training pass's batch statistics (conv.Conv2D); `reference`
    runs textbook convolutions (layers/formulations.py).
    """
    _checks.channels(self.name, self.in_channels, x.shape[-1])
    kw = {"stats": stats, "reference": reference}
    if (formulations.large_bfloat16(x) and not reference
        and self.branch1x1.norm is None):
      b1, r3, r5 = conv.side_by_side(
          [self.branch1x1, self.branch3x3_reduce, self.branch5x5_reduce], x)
      b3, b5 = self.branch3x3(r3, **kw), self.branch5x5(r5, **kw)
    else:  # In the order the batch statistics are listed (googlenet.py).
      b1 = self.branch1x1(x, **kw)
      b3 = self.branch3x3(self.branch3x3_reduce(x, **kw), **kw)
      b5 = self.branch5x5(self.branch5x5_reduce(x, **kw), **kw)
    return tf.concat([b1, b3, b5, self.branch_pool(self.pool(x), **kw)],
                     axis=-1)
