"""The loop's checkpointed counters: the step, the RNG seed, the bad steps;
and the validations' record the plateau schedule and early stopping read."""

from typing import Callable, Dict, Optional, Tuple

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


class Plateau(tf.Module):
  """Validations without improvement and what they decide: Keras's
  ReduceLROnPlateau and EarlyStopping, with their state in the checkpoint
  (checkpoint name `plateau`), so a resumed run decides as an uninterrupted
  one.

  A validation improves when its accuracy (the main head's) is strictly
  higher than the best so far; the first one always does. After every
  `patience` validations in a row without one, `rate_scale` (which the
  schedule multiplies its rate by: core/optim/schedules.Scaled) is
  multiplied by `factor`; after `stop_after`, training stops. Every worker
  of a run sees the same all-reduced accuracy, so all decide alike.

  Args:
    patience: Validations without improvement per drop of the rate (0: it
      never drops).
    factor: What a drop multiplies the rate by, in (0, 1).
    stop_after: Validations without improvement that end training (0:
      never).

  Raises:
    ValueError: If an argument is out of its range.
  """

  def __init__(self, *, patience: int = 0, factor: float = 0.1,
               stop_after: int = 0, name: str = "plateau"):
    for arg, value in (("patience", patience), ("stop_after", stop_after)):
      if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"`{arg}` must be a non-negative integer; received "
                         f"{arg}={value!r}.")
    if not 0 < factor < 1:
      raise ValueError(f"`factor` must be in (0, 1); received "
                       f"factor={factor!r}.")
    super().__init__(name=name)
    self.patience, self.factor, self.stop_after = patience, factor, stop_after
    with self.name_scope:
      self.best_accuracy = variables_lib.weight(
          tf.constant(-1.0, tf.float64), name="best_accuracy",
          trainable=False)
      self.best_step = variables_lib.weight(
          tf.constant(-1, tf.int64), name="best_step", trainable=False)
      # Validations since the best one.
      self.stalls = variables_lib.weight(
          tf.constant(0, tf.int64), name="stalls", trainable=False)
      self.rate_scale = variables_lib.weight(
          tf.constant(1.0, tf.float32), name="rate_scale", trainable=False)
      # The last step whose validation was counted: a validation a signal
      # interrupted is redone on resume (train/loop/controller.py), and a
      # redone one is not counted twice.
      self.validated = variables_lib.weight(
          tf.constant(-1, tf.int64), name="validated", trainable=False)

  def record(self, accuracy: float, step: int) -> bool:
    """Counts the validation of `step` (once); returns whether it lowered
    the rate."""
    if step <= int(self.validated.numpy()):
      return False
    self.validated.assign(step)
    if accuracy > float(self.best_accuracy.numpy()):
      self.best_accuracy.assign(accuracy)
      self.best_step.assign(step)
      self.stalls.assign(0)
      return False
    self.stalls.assign_add(1)
    if not self.patience or int(self.stalls.numpy()) % self.patience:
      return False
    self.rate_scale.assign(self.rate_scale * self.factor)
    return True

  def best_validation(self) -> Optional[Tuple[float, int]]:
    """(accuracy, step) of the best validation recorded, before a resume
    too; None before the first."""
    if int(self.best_step.numpy()) < 0:
      return None
    return float(self.best_accuracy.numpy()), int(self.best_step.numpy())

  @property
  def stopped(self) -> bool:
    """Whether early stopping has ended training."""
    return bool(self.stop_after) and int(
        self.stalls.numpy()) >= self.stop_after

  def validation_missed(self, step: int) -> bool:
    """Whether the validation of `step` was never counted (a signal
    interrupted it before the checkpoint)."""
    return int(self.validated.numpy()) < step

  def added_checkpoint_keys(self, global_step: tf.Variable) -> Dict[
      str, Tuple[tf.Variable, Callable[[], None]]]:
    """Its variables, which checkpoints of runs without it lack, with what
    to do then (core/runtime/checkpointing.Checkpointer's `added`): a run
    resumed with the plateau schedule or early stopping turned on keeps
    the fresh values (no best yet, the schedule's own rate) and counts
    from the validations after its step."""
    def default(name):
      if name == "validated":
        return lambda: self.validated.assign(global_step)
      return lambda: None

    return {f"plateau/{name}/.ATTRIBUTES/VARIABLE_VALUE": (
        getattr(self, name), default(name)) for name in (
            "best_accuracy", "best_step", "stalls", "rate_scale",
            "validated")}
