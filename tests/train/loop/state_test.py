"""The checkpointed counters, and checkpoints of the earlier layout; the
validations' record of the plateau schedule and early stopping."""

import os

import tensorflow as tf

from core.optim import schedules
from core.runtime import checkpointing
from train.loop.state import Plateau, RunState


class OldRunState(tf.Module):
  """RunState as checkpoints before 2026-11-27 hold it: with `epoch` and
  `step_in_epoch`, which nothing read."""

  def __init__(self, name="train_state"):
    super().__init__(name=name)
    with self.name_scope:
      for key, value in (("global_step", 120), ("epoch", 3),
                         ("step_in_epoch", 6), ("seed", 7),
                         ("skipped_steps", 2), ("consecutive_bad", 1),
                         ("last_bad_step", 119)):
        setattr(self, key, tf.Variable(tf.constant(value, tf.int64),
                                       name=key))


class RunStateTest(tf.test.TestCase):

  def test_counters(self):
    state = RunState(seed=5)
    self.assertEqual({v.name for v in state.variables}, {
        "train_state/global_step:0", "train_state/seed:0",
        "train_state/skipped_steps:0", "train_state/consecutive_bad:0",
        "train_state/last_bad_step:0"})
    self.assertEqual(int(state.seed.numpy()), 5)
    self.assertEqual(int(state.last_bad_step.numpy()), -1)

  def test_old_checkpoints_restore(self):
    directory = os.path.join(self.get_temp_dir(), "old")
    old = checkpointing.Checkpointer(directory, state=OldRunState())
    old.save(120)
    lines = []
    state = RunState(seed=0)
    restored = checkpointing.Checkpointer(directory, report=lines.append,
                                          state=state).restore_latest()
    self.assertEqual(restored, 120)
    self.assertEmpty(lines)
    self.assertEqual([int(v.numpy()) for v in (
        state.global_step, state.seed, state.skipped_steps,
        state.consecutive_bad, state.last_bad_step)], [120, 7, 2, 1, 119])


def record(plateau, accuracies, first_step=4, every=4):
  """Counts one validation per accuracy; returns the steps that dropped
  the rate."""
  return [step for step, accuracy in zip(
      range(first_step, first_step + every * len(accuracies), every),
      accuracies) if plateau.record(accuracy, step)]


class PlateauTest(tf.test.TestCase):

  def test_variables(self):
    plateau = Plateau()
    self.assertEqual({v.name: v.dtype for v in plateau.variables}, {
        "plateau/best_accuracy:0": tf.float64, "plateau/best_step:0":
        tf.int64, "plateau/stalls:0": tf.int64, "plateau/rate_scale:0":
        tf.float32, "plateau/validated:0": tf.int64})
    self.assertEqual(float(plateau.rate_scale.numpy()), 1.0)
    self.assertFalse(plateau.stopped)

  def test_a_drop_after_each_patience_of_validations_without_a_new_best(self):
    plateau = Plateau(patience=2, factor=0.5)
    # Best 0.6 at step 8; 0.6 again is a tie, not an improvement.
    self.assertEqual(record(plateau, [0.5, 0.6, 0.6, 0.55, 0.4, 0.6]),
                     [16, 24])
    self.assertEqual(float(plateau.rate_scale.numpy()), 0.25)
    self.assertEqual([int(plateau.stalls.numpy()),
                      int(plateau.best_step.numpy())], [4, 8])
    # An improvement resets the count, not the rate.
    self.assertEqual(record(plateau, [0.7, 0.1], first_step=28), [])
    self.assertEqual(float(plateau.rate_scale.numpy()), 0.25)
    self.assertEqual(int(plateau.stalls.numpy()), 1)

  def test_early_stopping_after_n_validations_without_a_new_best(self):
    plateau = Plateau(stop_after=3)
    record(plateau, [0.5, 0.5, 0.4])
    self.assertFalse(plateau.stopped)
    self.assertEqual(record(plateau, [0.5], first_step=16), [])  # no drops
    self.assertTrue(plateau.stopped)
    self.assertEqual(float(plateau.rate_scale.numpy()), 1.0)

  def test_a_step_counts_once(self):
    plateau = Plateau(patience=1)
    record(plateau, [0.5, 0.4])
    self.assertFalse(plateau.validation_missed(8))
    self.assertTrue(plateau.validation_missed(12))
    self.assertFalse(plateau.record(0.1, 8))  # redone: already counted
    self.assertEqual(int(plateau.stalls.numpy()), 1)
    self.assertAllClose(plateau.rate_scale.numpy(), 0.1)

  def test_errors(self):
    for arg in ("patience", "stop_after"):
      with self.assertRaisesRegex(ValueError, f"`{arg}` must be a "
                                  "non-negative integer; received "
                                  f"{arg}=-1."):
        Plateau(**{arg: -1})
    with self.assertRaisesRegex(ValueError, r"`factor` must be in \(0, 1\); "
                                "received factor=1."):
      Plateau(factor=1)

  def test_checkpoint_round_trip(self):
    directory = os.path.join(self.get_temp_dir(), "plateau")
    saved = Plateau(patience=1, stop_after=2)
    record(saved, [0.5, 0.25, 0.25])
    checkpointing.Checkpointer(directory, plateau=saved).save(12)
    restored = Plateau(patience=1, stop_after=2)
    checkpointing.Checkpointer(directory, plateau=restored).restore_latest()
    self.assertEqual([v.numpy() for v in restored.variables],
                     [v.numpy() for v in saved.variables])
    self.assertTrue(restored.stopped)
    self.assertAllClose(restored.rate_scale.numpy(), 0.01)

  def test_a_run_without_it_resumes_with_it(self):
    # A run written before the option (or with it off) has no `plateau`.
    directory = os.path.join(self.get_temp_dir(), "without")
    state = RunState(seed=0)
    state.global_step.assign(40)
    checkpointing.Checkpointer(directory, state=state).save(40)
    state, plateau, lines = RunState(seed=0), Plateau(patience=1), []
    restored = checkpointing.Checkpointer(
        directory, report=lines.append, state=state, plateau=plateau,
        added=plateau.added_checkpoint_keys(state.global_step)
    ).restore_latest()
    self.assertEqual((restored, lines), (40, []))
    # Nothing to redo at 40; the record starts from the next validation.
    self.assertFalse(plateau.validation_missed(40))
    self.assertEqual([float(plateau.best_accuracy.numpy()),
                      float(plateau.rate_scale.numpy())], [-1.0, 1.0])

  def test_a_run_with_it_resumes_without_it(self):
    directory = os.path.join(self.get_temp_dir(), "with")
    state, plateau = RunState(seed=0), Plateau(patience=1)
    state.global_step.assign(12)
    record(plateau, [0.5, 0.25])
    checkpointing.Checkpointer(directory, state=state,
                               plateau=plateau).save(12)
    state, lines = RunState(seed=0), []
    self.assertEqual(checkpointing.Checkpointer(
        directory, report=lines.append, state=state).restore_latest(), 12)
    self.assertEqual(lines, [])

  def test_replicas_read_the_lowered_rate(self):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
      plateau = Plateau(patience=1)
    rate = schedules.Scaled(schedules.Constant(0.5), plateau.rate_scale)
    record(plateau, [0.5, 0.5])  # the controller's, between chunks
    per_replica = strategy.experimental_local_results(
        strategy.run(tf.function(lambda: rate(tf.constant(0)))))
    self.assertAllClose([float(r) for r in per_replica], [0.05, 0.05])

