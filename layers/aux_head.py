"""GoogLeNet's auxiliary classifier, attached to inception 4a and 4d."""

from typing import Optional

import tensorflow as tf

from layers import _checks
from layers import conv
from layers import dense
from layers import dropout
from layers import normalization
from layers import pooling

# Section 5 of the paper: 5x5/3 average pool, 1x1 conv with 128 filters,
# fully connected 1024, dropout 0.7, linear to the classes.
_POOL_WINDOW, _POOL_STRIDE = 5, 3
_CONV_FILTERS = 128
_FC_UNITS = 1024
_ADAPTIVE_SIDE = 4  # torchvision's adaptive_avg_pool2d(x, (4, 4))


class AuxHead(tf.Module):
  """Auxiliary classifier over an [N, S, S, C] feature map.

  Deviation from the paper, for small inputs: when the map is smaller than the
  5x5 window (S < 5, e.g. 2x2 for 28x28 images) the pool covers the whole map
  instead; the flattened width follows from `in_size` either way.
  """

  def __init__(self, in_channels: int, in_size: int, num_classes: int, *,
               dropout_rate: float = 0.7, batch_norm: bool = False,
               adaptive_pool: bool = False, name: Optional[str] = None):
    """Creates the convolution and the two dense layers.

    Args:
      in_channels: Channels of the feature map read.
      in_size: Side of the (square) feature map read.
      num_classes: Width of the logits.
      dropout_rate: Dropout before the last layer (0.7 in the paper).
      batch_norm: Batch-normalise the convolution (conv.Conv2D).
      adaptive_pool: Pool to 4x4 whatever the map's side, as torchvision's
        GoogLeNet does (pooling.AdaptiveAvgPool2D: windows of 4 starting at
        0, 3, 7 and 10 on a 14x14 map, where the paper's 5x5/3 pool has
        windows of 5 starting at 0, 3, 6 and 9).
      name: Module name: "aux1" or "aux2" in GoogLeNet.

    Raises:
      ValueError: If a size is not a positive integer or the rate is not in
        [0, 1).
    """
    super().__init__(name=name)
    _checks.positive_int("in_size", in_size)
    window = min(_POOL_WINDOW, in_size)
    stride = _POOL_STRIDE if in_size >= _POOL_WINDOW else 1
    with self.name_scope:
      self.pool = (pooling.AdaptiveAvgPool2D(_ADAPTIVE_SIDE, name="pool")
                   if adaptive_pool else
                   pooling.AvgPool2D(window, stride, padding="VALID",
                                     name="pool"))
      self.conv = conv.Conv2D(in_channels, _CONV_FILTERS, 1,
                              activation=tf.nn.relu, batch_norm=batch_norm,
                              name="conv")
      pooled = self.pool.out_size(in_size)
      self.fc = dense.Dense(pooled * pooled * _CONV_FILTERS, _FC_UNITS,
                            activation=tf.nn.relu, name="fc")
      self.dropout = dropout.Dropout(dropout_rate, name="dropout")
      self.classifier = dense.Dense(_FC_UNITS, num_classes, name="classifier")

  def __call__(self, x: tf.Tensor, *, training: bool,
               noise: Optional[dropout.DropoutNoise] = None,
               stats: Optional[normalization.BatchStatistics] = None,
               reference: bool = False) -> tf.Tensor:
    """Returns logits [N, num_classes] for the feature map `x`; `stats`: the
    training pass's batch statistics (conv.Conv2D); `reference` runs the
    textbook convolution (layers/formulations.py)."""
    x = self.conv(self.pool(x), stats=stats, reference=reference)
    x = tf.reshape(x, [tf.shape(x)[0], self.fc.in_features])
    x = self.fc(x)
    x = self.dropout(x, training=training, noise=noise)
    return self.classifier(x)
