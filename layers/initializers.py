"""Weight initializers: small callables `(shape, dtype) -> Tensor`.

Defaults live here with their reasons. GoogLeNet has no batch normalisation,
so the 22 ReLU layers only train from scratch if each keeps the variance of
its input: He et al. 2015 (arXiv:1502.01852) show that needs a weight variance
of 2 / fan_in. Draws use TF's global seed (`tf.random.set_seed`), so building
the same model after the same seed gives the same weights.
"""

import math
from typing import Callable, Sequence

import tensorflow as tf

Initializer = Callable[[Sequence[int], tf.DType], tf.Tensor]

# Standard deviation of a unit normal truncated to [-2, 2]; dividing by it
# makes the truncated draw have the intended standard deviation.
_TRUNCATED_STDDEV = 0.87962566103423978


def _fan_in(shape: Sequence[int]) -> int:
  # Dense kernels are [in, out]; conv kernels are [h, w, in, out].
  return int(math.prod(shape[:-1])) if len(shape) > 1 else int(shape[0])


def he_normal() -> Initializer:
  """Truncated normal with variance 2 / fan_in: the default before a ReLU."""
  def init(shape: Sequence[int], dtype: tf.DType) -> tf.Tensor:
    stddev = math.sqrt(2.0 / _fan_in(shape)) / _TRUNCATED_STDDEV
    return tf.random.truncated_normal(shape, stddev=stddev, dtype=dtype)
  return init


def lecun_normal() -> Initializer:
  """Truncated normal with variance 1 / fan_in: the default for logit layers,
  which have no ReLU after them."""
  def init(shape: Sequence[int], dtype: tf.DType) -> tf.Tensor:
    stddev = math.sqrt(1.0 / _fan_in(shape)) / _TRUNCATED_STDDEV
    return tf.random.truncated_normal(shape, stddev=stddev, dtype=dtype)
  return init


def zeros() -> Initializer:
  """All zeros: the default for biases."""
  def init(shape: Sequence[int], dtype: tf.DType) -> tf.Tensor:
    return tf.zeros(shape, dtype=dtype)
  return init


def constant(value: float) -> Initializer:
  """Every element equal to `value`."""
  def init(shape: Sequence[int], dtype: tf.DType) -> tf.Tensor:
    return tf.fill(shape, tf.cast(value, dtype))
  return init
