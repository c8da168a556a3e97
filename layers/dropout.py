"""Inverted dropout whose noise can be drawn for the whole global batch.

Under data parallelism each replica sees a slice of the global batch. If every
replica drew its own noise, N replicas would train differently from one, and
the noise would depend on the replica count. Instead the caller passes a
`DropoutNoise`: a stateless seed plus where this replica's rows sit in the
global batch. The layer draws the noise for all `total_rows` and keeps its own
rows, so the masks, and so the training run, are the same for any number of
replicas, and are a pure function of the seed (exact resume needs nothing
else). Dropout here only acts on [N, 1024] feature vectors, so drawing N times
the rows costs nothing measurable.
"""

from typing import NamedTuple, Optional, Union

import tensorflow as tf

from layers import _checks


class DropoutNoise(NamedTuple):
  """Where to draw dropout noise from.

  Attributes:
    seed: int32/int64 tensor of shape [2], a stateless RNG seed.
    row_offset: First row of this replica's slice in the global batch.
    total_rows: Rows in the global batch (a Python int or scalar tensor).
  """
  seed: tf.Tensor
  row_offset: Union[int, tf.Tensor] = 0
  total_rows: Optional[Union[int, tf.Tensor]] = None

  def fold_in(self, salt: int) -> "DropoutNoise":
    """Returns the same rows with an independent seed derived from `salt`."""
    seed = tf.random.experimental.stateless_fold_in(
        tf.cast(self.seed, tf.int64), salt)
    return self._replace(seed=seed)


class Dropout(tf.Module):
  """Zeroes each element with probability `rate` and scales the rest by
  1 / (1 - rate) while training; the identity otherwise."""

  def __init__(self, rate: float, *, name: Optional[str] = None):
    """Stores the rate.

    Args:
      rate: Probability of dropping an element, in [0, 1).
      name: Module name.

    Raises:
      ValueError: If `rate` is not in [0, 1).
    """
    super().__init__(name=name)
    self.rate = _checks.rate("rate", rate)

  def __call__(self, x: tf.Tensor, *, training: bool,
               noise: Optional[DropoutNoise] = None) -> tf.Tensor:
    """Applies dropout to `x` of shape [N, ...].

    Args:
      x: The input.
      training: Keyword-only Python bool; False returns `x` unchanged.
      noise: Stateless noise source. None draws from TF's stateful RNG, which
        is fine for experiments but not reproducible across replica counts.

    Returns:
      A tensor shaped like `x`.
    """
    if not isinstance(training, bool):
      raise TypeError(
          f"`training` must be a Python bool; received training={training!r}.")
    if not training or self.rate == 0.0:
      return x
    rows = tf.shape(x)[0]
    if noise is None:
      uniform = tf.random.uniform(tf.shape(x), dtype=tf.float32)
    else:
      total = rows if noise.total_rows is None else noise.total_rows
      shape = tf.concat([[total], tf.shape(x)[1:]], axis=0)
      uniform = tf.random.stateless_uniform(shape, seed=noise.seed)
      uniform = uniform[noise.row_offset:noise.row_offset + rows]
    keep = tf.cast(uniform >= self.rate, x.dtype)
    return x * keep * tf.cast(1.0 / (1.0 - self.rate), x.dtype)
