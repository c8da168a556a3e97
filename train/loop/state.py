"""The loop's checkpointed counters: the step, the RNG seed, the bad steps."""

import tensorflow as tf

from layers import variables as variables_lib


class RunState(tf.Module):
  """Counters saved with the model so a resumed run continues exactly.

  `global_step` is advanced by the compiled training loop in cross-replica
  context (ONLY_FIRST_REPLICA, as Orbit's global step); the data cursor is
  derived from it (core/data/pipeline.py). The dropout RNG is stateless, seeded
  from (`seed`, global step), so the seed and the step are the whole RNG
  state. The bad-step counters are updated inside the step, identically on
  every replica (they follow from all-reduced values).

  Checkpoints written before 2026-11-27 also hold `epoch` and
  `step_in_epoch`, which nothing read; they restore into this state and are
  ignored (tests/train/loop/state_test.py).
  """

  def __init__(self, seed: int, name: str = "train_state"):
    super().__init__(name=name)
    first = tf.VariableAggregation.ONLY_FIRST_REPLICA
    with self.name_scope:
      self.global_step = tf.Variable(
          tf.constant(0, tf.int64), name="global_step", trainable=False,
          aggregation=first)
      self.seed = tf.Variable(tf.constant(seed, tf.int64), name="seed",
                              trainable=False, aggregation=first)
      self.skipped_steps = variables_lib.weight(
          tf.constant(0, tf.int64), name="skipped_steps", trainable=False)
      self.consecutive_bad = variables_lib.weight(
          tf.constant(0, tf.int64), name="consecutive_bad", trainable=False)
      self.last_bad_step = variables_lib.weight(
          tf.constant(-1, tf.int64), name="last_bad_step", trainable=False)
