import os

import tensorflow as tf

from core import checkpointing


class CheckpointingTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = os.path.join(self.get_temp_dir(), self.id().split(".")[-1])
    self.lines = []

  def make(self, value=0.0):
    v = tf.Variable(value, name="v")
    return v, checkpointing.Checkpointer(self.dir, max_to_keep=3,
                                         report=self.lines.append, w=v)

  def save_steps(self, steps=(10, 20, 30)):
    v, ckpt = self.make()
    for s in steps:
      v.assign(float(s))
      ckpt.save(s, [v])

  def test_restores_newest(self):
    self.save_steps()
    v, ckpt = self.make()
    self.assertEqual(ckpt.restore_latest(), 30)
    self.assertEqual(float(v), 30.0)
    self.assertEmpty(self.lines)

  def test_nothing_to_restore(self):
    _, ckpt = self.make()
    self.assertIsNone(ckpt.restore_latest())

  def test_truncated_newest_falls_back(self):
    self.save_steps()
    data = os.path.join(self.dir, "ckpt-30.data-00000-of-00001")
    with open(data, "r+b") as f:
      f.truncate(2)
    v, ckpt = self.make()
    self.assertEqual(ckpt.restore_latest(), 20)
    self.assertEqual(float(v), 20.0)
    self.assertLen(self.lines, 1)
    self.assertRegex(self.lines[0], r"checkpoint .*ckpt-30 is unusable .*"
                     "trying the previous one")

  def test_corrupt_index_falls_back(self):
    self.save_steps()
    with open(os.path.join(self.dir, "ckpt-30.index"), "wb") as f:
      f.write(b"garbage" * 10)
    v, ckpt = self.make()
    self.assertEqual(ckpt.restore_latest(), 20)

  def test_half_written_checkpoint_reported_and_skipped(self):
    self.save_steps()
    # A crash mid-save: shards in ckpt-40_temp, no ckpt-40.index.
    os.makedirs(os.path.join(self.dir, "ckpt-40_temp"))
    os.remove(os.path.join(self.dir, "ckpt-30.index"))
    v, ckpt = self.make()
    self.assertEqual(ckpt.restore_latest(), 20)
    self.assertRegex(self.lines[0], "ignoring half-written checkpoint")

  def test_state_file_garbled_still_finds_checkpoints(self):
    self.save_steps()
    with open(os.path.join(self.dir, "checkpoint"), "w") as f:
      f.write("")
    _, ckpt = self.make()
    self.assertEqual(ckpt.restore_latest(), 30)

  def test_refuses_non_finite_weights(self):
    v, ckpt = self.make(float("nan"))
    self.assertIsNone(ckpt.save(5, [v]))
    self.assertEmpty(checkpointing.complete_checkpoints(self.dir))
    self.assertRegex(self.lines[0], "not saving step 5: weights are not "
                     "finite")

  def test_keeps_at_least_two(self):
    with self.assertRaisesRegex(ValueError, "`max_to_keep` must be an integer"
                                " >= 2"):
      checkpointing.Checkpointer(self.dir, max_to_keep=1,
                                 w=tf.Variable(0.0))

  def test_numbered_by_step_and_rotated(self):
    self.save_steps((100, 200, 300, 400))
    self.assertEqual([n for n, _ in checkpointing.complete_checkpoints(
        self.dir)], [400, 300, 200])
