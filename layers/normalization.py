"""Batch normalisation (Ioffe & Szegedy 2015, the paper of Inception v2) over
fixed groups of examples, so training does not depend on the replica count.

Statistics are taken over groups of `group_size` consecutive examples of a
replica's slice (a "ghost batch", Hoffer et al. 2017), never across
replicas. With a global batch of 64 and groups of 32, two replicas and one
replica therefore normalise exactly the same sets of images, and no
collective runs inside the forward or backward pass: the usual
per-device batch normalisation of multi-GPU training, made independent of
the device count. The moving statistics that inference uses are updated by
the training step, after its single all-reduce and only when the step is
applied (train/loop/step.py), so every replica keeps the same values and a
skipped step moves nothing.

Each group is normalised by one fused kernel (FusedBatchNormV3 forward and
its gradient: oneDNN's or Eigen's on CPU, cuDNN's on GPU) over the group's
counted examples whenever the batch's size is known when the step is
traced (the training step states it, whatever the data's source): at
make train's shape 2.5x faster per layer than the same
arithmetic in separate ops, which were half of the step's kernel time.
With weights the counted rows are partitioned out and stitched back (15 %
of make train's step); the step passes no weights for data in memory,
whose training rows all count. A batch of unknown size, and XLA, take the
weighted formula in separate ops. Both give a group the same values to
rounding; the fused kernel sees the same rows of a group whatever the
replica count, but its blocking follows the intra-op threads, so runs on
other thread counts agree to rounding, not bitwise.
"""

from typing import List, Optional, Tuple

import tensorflow as tf

from layers import _checks
from layers import variables

MOMENTUM = 0.99
EPSILON = 1e-3


def _affine(x: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor,
            gamma: tf.Tensor, beta: tf.Tensor) -> tf.Tensor:
  """x * scale + shift in `x`'s dtype, the scale and shift of the float32
  statistics computed in float32 (broadcast against `x`)."""
  scale = gamma * tf.math.rsqrt(variance + EPSILON)
  shift = beta - mean * scale
  return x * tf.cast(scale, x.dtype) + tf.cast(shift, x.dtype)


class BatchStatistics:
  """One training forward pass's normalisation context.

  Holds what the groups need (their size and each example's weight) and
  collects every layer's statistics in call order, summed over this
  replica's groups with each group's weight (its examples' weights added):
  `sums()` is what the step all-reduces with the gradients; divided by the
  reduced `total_weight()` they are the global batch's weighted mean of the
  group statistics, what the moving statistics move towards.
  """

  def __init__(self, group_size: Optional[int] = None,
               weight: Optional[tf.Tensor] = None, fused: bool = True):
    """Args:
      group_size: Examples per group; None: the whole slice is one group.
      weight: [N] per-example weights, 1 or 0: an example of weight 0
        (padding, an undecodable image) does not count in its group's
        statistics.
      fused: Whether a batch of known size may take the fused kernel;
        False under XLA (`--jit_compile`), whose lowering of it computes
        the variance as E[x^2] - E[x]^2 (cancellation: a negative variance
        for maps whose mean is hundreds of times their spread).
    """
    if group_size is not None:
      _checks.positive_int("group_size", group_size)
    self.group_size, self.weight, self.fused = group_size, weight, fused
    self._total: Optional[tf.Tensor] = None
    self._sums: List[tf.Tensor] = []
    self.layers: List[tf.Module] = []  # who recorded, in call order

  def normalise(self, x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor,
                layer: tf.Module) -> tf.Tensor:
    """gamma * (x - mean) / sqrt(var + eps) + beta with each group's own
    statistics, which are recorded (summed over the groups, weighted) for
    the moving statistics; the result has `x`'s dtype and shape."""
    n, size = x.shape[0], self.group_size
    if size is not None and n is not None and n % size:
      raise ValueError(
          f"batch normalisation groups of {size} examples need a batch that "
          f"is a multiple of {size}; received a batch of {n} (choose "
          "--norm_group_size to divide the per-replica batch).")
    if n is None or not self.fused:
      y, mean_sum, var_sum = self._weighted(x, gamma, beta)
    else:
      y, mean_sum, var_sum = self._fused(x, gamma, beta)
    if self._total is None:
      self._total = (tf.cast(tf.shape(x)[0], tf.float32) if self.weight is None
                     else tf.reduce_sum(tf.cast(self.weight, tf.float32)))
    self.layers.append(layer)
    self._sums += [mean_sum, var_sum]
    return y

  def _fused(self, x, gamma, beta):
    """`normalise` by one fused kernel per group (the groups cut apart when
    there are several) over the group's counted examples: with weights,
    they are partitioned out and the results stitched back beside the
    weight-0 rows'."""
    n, height, width = x.shape[0], x.shape[1], x.shape[2]
    size = self.group_size or n
    xs = tf.split(x, n // size) if n > size else [x]
    ws = ([None] * len(xs) if self.weight is None else
          tf.split(self.weight, n // size) if n > size else [self.weight])
    outs, means, variances = [], [], []
    for group, weight in zip(xs, ws):
      rows = group
      if weight is not None:
        counted = tf.cast(weight > 0, tf.int32)
        index = tf.dynamic_partition(tf.range(size), counted, 2)
        skipped, rows = tf.dynamic_partition(group, counted, 2)
      y, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
          x=rows, scale=gamma, offset=beta, mean=tf.zeros([0]),
          variance=tf.zeros([0]), epsilon=EPSILON, data_format="NHWC",
          is_training=True)
      # The group's weight, and its pixels per channel; the kernel reports
      # the unbiased variance, it normalised by the biased one, which the
      # moving statistics follow. An empty group's NaNs count nowhere.
      count = tf.cast(tf.shape(rows)[0], tf.float32)
      pixels = count * float(height * width)
      variance *= (pixels - 1) / tf.maximum(pixels, 1.0)
      if weight is not None:
        # The stitch forgets the batch size; the next layers need it to
        # take the fused kernel too (one replica's groups and two
        # replicas' then take the same formula in every layer).
        y = tf.ensure_shape(tf.dynamic_stitch(index, [self._skipped(
            skipped, mean, variance, gamma, beta), y]), group.shape)
      outs.append(y)
      means.append(tf.where(count > 0, mean * count, 0.0))
      variances.append(tf.where(count > 0, variance * count, 0.0))
    y = outs[0] if len(outs) == 1 else tf.concat(outs, axis=0)
    return (y, tf.reduce_sum(tf.stack(means), axis=0),
            tf.reduce_sum(tf.stack(variances), axis=0))

  @staticmethod
  def _skipped(rows, mean, variance, gamma, beta):
    """Weight-0 rows normalised by their group's statistics, as the
    weighted formula does (they count nowhere, so no gradient flows back
    to the statistics through them; an empty group's are 0)."""
    mean, variance = (tf.stop_gradient(tf.where(tf.math.is_finite(v), v, 0.0))
                      for v in (mean, variance))
    return _affine(rows, mean, variance, gamma, beta)

  def _weighted(self, x, gamma, beta):
    """`normalise` in separate ops, an example counting by its weight."""
    c, size = x.shape[-1], self.group_size
    # [groups, size, H, W, C]; one group of the whole slice without a size.
    shape = [1, -1] if size is None else [-1, size]
    grouped = tf.reshape(x, [*shape, *x.shape[1:]])
    xf = tf.cast(grouped, tf.float32)
    w = (tf.ones_like(xf[:, :, :1, :1, :1]) if self.weight is None else
         tf.reshape(tf.cast(self.weight, tf.float32), [*shape, 1, 1, 1]))
    group_weight = tf.reduce_sum(w, axis=1, keepdims=True)  # [G, 1, 1, 1, 1]
    # A group of weight 0 is all padding: any finite statistics will do.
    count = tf.maximum(group_weight * float(x.shape[1] * x.shape[2]), 1.0)
    mean = tf.reduce_sum(xf * w, axis=[1, 2, 3], keepdims=True) / count
    var = tf.reduce_sum(tf.square(xf - mean) * w, axis=[1, 2, 3],
                        keepdims=True) / count
    y = _affine(grouped, mean, var, gamma, beta)  # per group [G, 1, 1, 1, C]
    return (tf.reshape(y, tf.shape(x)),
            tf.reshape(tf.reduce_sum(mean * group_weight, axis=0), [c]),
            tf.reshape(tf.reduce_sum(var * group_weight, axis=0), [c]))

  def record_frozen(self, layer: tf.Module) -> None:
    """Keeps `layer`'s place in `sums()` for a frozen layer: zeros, which
    GoogLeNet.update_statistics passes over."""
    self.layers.append(layer)
    self._sums += [tf.zeros([layer.channels])] * 2

  def sums(self) -> List[tf.Tensor]:
    """[weighted mean sum, weighted variance sum] per layer, in call
    order."""
    return list(self._sums)

  def total_weight(self) -> tf.Tensor:
    """The weights of this replica's examples, added (what `sums` are
    weighted by); 0 before any layer ran."""
    return tf.constant(0.0) if self._total is None else self._total


class BatchNorm(tf.Module):
  """y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel.

  Training (a BatchStatistics given): each group of examples is normalised
  by its own statistics. Inference (None): by the moving statistics. A
  `frozen` layer (the frozen part of a fine-tuned network) normalises by its
  moving statistics in training too, and they do not move.
  """

  def __init__(self, channels: int, *, name: Optional[str] = None):
    super().__init__(name=name)
    self.channels = _checks.positive_int("channels", channels)
    with self.name_scope:
      self.gamma = variables.weight(tf.ones([channels]), name="gamma")
      self.beta = variables.weight(tf.zeros([channels]), name="beta")
      self.moving_mean = variables.weight(
          tf.zeros([channels]), name="moving_mean", trainable=False)
      self.moving_variance = variables.weight(
          tf.ones([channels]), name="moving_variance", trainable=False)
    # Python state, set before the first trace (train/assembly/finetune.py).
    self.frozen = False

  @property
  def statistics(self) -> Tuple[tf.Variable, tf.Variable]:
    return self.moving_mean, self.moving_variance

  def __call__(self, x: tf.Tensor,
               stats: Optional[BatchStatistics] = None) -> tf.Tensor:
    """Normalises NHWC `x`; the result has `x`'s dtype and shape."""
    if stats is not None and self.frozen:
      stats.record_frozen(self)
      stats = None
    if stats is None:
      return _affine(x, self.moving_mean, self.moving_variance, self.gamma,
                     self.beta)
    return stats.normalise(x, self.gamma, self.beta, self)

  def update(self, mean: tf.Tensor, variance: tf.Tensor,
             num_updates: tf.Tensor) -> None:
    """moving <- moving - (1 - d) (moving - batch value) at the
    `num_updates`-th update, d = min(MOMENTUM, (1 + n) / (10 + n)) as the
    weights' moving average does (core/optim/averaging.py): an early evaluation
    is not dominated by the initial statistics. In place on this replica's
    copy; every replica applies the same values."""
    n = tf.cast(num_updates, tf.float32)
    rate = 1.0 - tf.minimum(MOMENTUM, (1.0 + n) / (10.0 + n))
    for moving, value in zip(self.statistics, (mean, variance)):
      tf.raw_ops.ResourceApplyGradientDescent(
          var=moving.handle, alpha=rate,
          delta=moving.read_value() - value, use_locking=False)
