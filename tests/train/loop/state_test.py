"""The checkpointed counters, and checkpoints of the earlier layout."""

import os

import tensorflow as tf

from core.runtime import checkpointing
from train.loop.state import RunState


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
