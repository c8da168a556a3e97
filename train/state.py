"""The loop's checkpointed counters: step, data cursor, RNG seed, bad steps."""

import tensorflow as tf

from layers import variables as variables_lib


class TrainState(tf.Module):
  """Counters saved with the model so a resumed run continues exactly.

  `global_step`, `epoch` and `step_in_epoch` are assigned by the loop in
  cross-replica context (ONLY_FIRST_REPLICA, as Orbit's global step). The
  dropout RNG is stateless, seeded from (`seed`, global step), so the seed and
  the step are the whole RNG state. The bad-step counters are updated inside
  the step, identically on every replica (they follow from all-reduced values).
  """

  def __init__(self, seed: int, name: str = "train_state"):
    super().__init__(name=name)
    first = tf.VariableAggregation.ONLY_FIRST_REPLICA

    def counter(value, name):
      return tf.Variable(tf.constant(value, tf.int64), name=name,
                         trainable=False, aggregation=first)

    with self.name_scope:
      self.global_step = counter(0, "global_step")
      self.epoch = counter(0, "epoch")
      self.step_in_epoch = counter(0, "step_in_epoch")
      self.seed = counter(seed, "seed")
      self.skipped_steps = variables_lib.weight(
          tf.constant(0, tf.int64), name="skipped_steps", trainable=False)
      self.consecutive_bad = variables_lib.weight(
          tf.constant(0, tf.int64), name="consecutive_bad", trainable=False)
      self.last_bad_step = variables_lib.weight(
          tf.constant(-1, tf.int64), name="last_bad_step", trainable=False)
