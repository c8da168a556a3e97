"""Metrics as sums: per-batch counts computed in the step, accumulated in
sync-on-read variables (one copy per replica, summed when read)."""

from typing import Dict, Iterable, Optional

import numpy as np
import tensorflow as tf


def top_k_correct(logits: tf.Tensor, labels: tf.Tensor,
                  k: int = 1) -> tf.Tensor:
  """Per-example 1.0 where the label is among the k largest logits."""
  return tf.cast(tf.math.in_top_k(tf.cast(labels, tf.int32),
                                  tf.cast(logits, tf.float32), k), tf.float32)


def confusion_matrix(labels: tf.Tensor, logits: tf.Tensor, num_classes: int,
                     weights: Optional[tf.Tensor] = None) -> tf.Tensor:
  """float32 [classes, classes]: rows are true labels, columns predictions."""
  predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
  return tf.math.confusion_matrix(tf.cast(labels, tf.int32), predictions,
                                  num_classes=num_classes, weights=weights,
                                  dtype=tf.float32)


class Sums(tf.Module):
  """Named running sums, safe to update in replica context.

  Each variable is SyncOnRead/SUM: replicas add to their own copy with no
  communication, and reading in cross-replica context sums the copies.
  """

  def __init__(self, shapes: Dict[str, Iterable[int]], *,
               name: Optional[str] = None):
    """Creates one zeroed float32 variable per name.

    Args:
      shapes: Name -> shape ([] for a scalar).
      name: Module name.
    """
    super().__init__(name=name)
    with self.name_scope:
      self.sums = {
          key: tf.Variable(tf.zeros(shape, tf.float32), name=key,
                           trainable=False,
                           synchronization=tf.VariableSynchronization.ON_READ,
                           aggregation=tf.VariableAggregation.SUM)
          for key, shape in shapes.items()}

  def add(self, values: Dict[str, tf.Tensor]) -> None:
    """Adds each value to its sum (call in replica context or unreplicated)."""
    for key, value in values.items():
      self.sums[key].assign_add(tf.cast(value, tf.float32))

  def reset(self) -> None:
    """Sets every sum to zero."""
    for v in self.sums.values():
      v.assign(tf.zeros_like(v))

  def read(self) -> Dict[str, np.ndarray]:
    """Returns the summed values as NumPy arrays (cross-replica context)."""
    return {key: v.numpy() for key, v in self.sums.items()}
