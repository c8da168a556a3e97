"""The one helper that creates every variable, and so the distribution policy.

Policy (see core/runtime/distribution.py for the whole convention): weights and
optimizer slots are ON_WRITE (mirrored) with aggregation NONE. Gradients are
all-reduced once, explicitly, before the optimizer runs, so every replica
computes the same update from the same values and applies it to its own copy.
NONE makes that a local assign; MEAN or SUM would add a second, redundant
cross-replica reduction of every update. tests/distribution_test.py checks that
replicas stay bitwise identical under this policy.
"""

from typing import Optional

import tensorflow as tf


def weight(initial_value: tf.Tensor, *, name: str, trainable: bool = True,
           dtype: Optional[tf.DType] = None) -> tf.Variable:
  """Creates a named, mirrored-friendly variable.

  Call it inside the module's `name_scope` (and inside `strategy.scope()` when
  training distributed) so the variable's name reads like
  `inception_4a/branch3x3/kernel`.

  Args:
    initial_value: The starting value; fixes the shape.
    name: The variable's own name within its module's scope.
    trainable: Whether gradients are taken with respect to it.
    dtype: Defaults to the dtype of `initial_value`.

  Returns:
    The new `tf.Variable`.
  """
  return tf.Variable(
      initial_value,
      name=name,
      trainable=trainable,
      dtype=dtype,
      synchronization=tf.VariableSynchronization.ON_WRITE,
      aggregation=tf.VariableAggregation.NONE)
