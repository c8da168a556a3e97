import os
import subprocess

import tensorflow as tf

from core.runtime import checkpointing
from core.runtime import errors


class CheckpointingTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = os.path.join(self.get_temp_dir(), self.id().split(".")[-1])
    self.lines = []

  def make(self, value=0.0):
    v = tf.Variable(value, name="v")
    return v, checkpointing.Checkpointer(self.dir, max_to_keep=3,
                                         report=self.lines.append, guard=[v],
                                         w=v)

  def save_steps(self, steps=(10, 20, 30)):
    v, ckpt = self.make()
    for s in steps:
      v.assign(float(s))
      ckpt.save(s)

  def test_restores_newest(self):
    self.save_steps()
    v, ckpt = self.make()
    self.assertEqual(ckpt.restore_latest(), 30)
    self.assertEqual(float(v), 30.0)
    self.assertEmpty(self.lines)

  def test_a_variable_a_later_version_added_gets_its_default(self):
    # An older version saved module m with `a` only; this one also has `b`.
    old = tf.Module()
    old.a = tf.Variable(3.0, name="a")
    checkpointing.Checkpointer(self.dir, m=old).save(5)
    new = tf.Module()
    new.a, new.b = tf.Variable(0.0, name="a"), tf.Variable(-1.0, name="b")
    filled = []
    ckpt = checkpointing.Checkpointer(
        self.dir, report=self.lines.append,
        added={"m/b/.ATTRIBUTES/VARIABLE_VALUE": (
            new.b, lambda: filled.append(1))}, m=new)
    self.assertEqual(ckpt.restore_latest(), 5)
    self.assertEqual((float(new.a), filled), (3.0, [1]))
    self.assertEmpty(self.lines)
    # A variable nobody declared added still refuses the checkpoint.
    other = tf.Module()
    other.a, other.c = tf.Variable(0.0, name="a"), tf.Variable(0.0, name="c")
    with self.assertRaisesRegex(checkpointing.UnusableRun,
                                "none restores into this model"):
      checkpointing.Checkpointer(
          self.dir, report=self.lines.append,
          added={"m/b/.ATTRIBUTES/VARIABLE_VALUE": (new.b, lambda: None)},
          m=other).restore_latest()

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

  def test_half_written_checkpoint_removed_and_skipped(self):
    self.save_steps()
    # A crash mid-save: shards in ckpt-40_temp, no ckpt-40.index.
    temp = os.path.join(self.dir, "ckpt-40_temp")
    os.makedirs(temp)
    with open(os.path.join(temp, "part-00000-of-00001.data"), "wb") as f:
      f.write(b"\0" * 1000)
    os.remove(os.path.join(self.dir, "ckpt-30.index"))
    v, ckpt = self.make()
    self.assertEqual(ckpt.restore_latest(), 20)
    self.assertEqual(self.lines[0], f"removed half-written checkpoint {temp}")
    self.assertFalse(os.path.exists(temp))

  def test_state_file_garbled_still_finds_checkpoints(self):
    self.save_steps()
    with open(os.path.join(self.dir, "checkpoint"), "w") as f:
      f.write("")
    _, ckpt = self.make()
    self.assertEqual(ckpt.restore_latest(), 30)

  def test_refuses_non_finite_weights(self):
    v, ckpt = self.make(float("nan"))
    self.assertIsNone(ckpt.save(5))
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
    self.assertNotIn("ckpt-100.data-00000-of-00001", os.listdir(self.dir))
    # TF's own reader finds the newest through the state file.
    self.assertEqual(tf.train.latest_checkpoint(self.dir),
                     os.path.join(self.dir, "ckpt-400"))

  def test_a_pattern_folder_sweeps_its_own_checkpoints_only(self):
    # TF's CheckpointManager globbed its prefixes: `exp[1]` swept `exp1`'s
    # checkpoints and kept all of its own.
    root = self.get_temp_dir()
    neighbour, self.dir = (os.path.join(root, "exp1"),
                           os.path.join(root, "exp[1]"))
    v = tf.Variable(0.0, name="v")
    first = checkpointing.Checkpointer(neighbour, max_to_keep=3, w=v)
    for step in (4, 6, 8):
      first.save(step)
    before = sorted(os.listdir(neighbour))
    self.save_steps(range(2, 16, 2))
    self.assertEqual(sorted(os.listdir(neighbour)), before)
    self.assertEqual([n for n, _ in checkpointing.complete_checkpoints(
        self.dir)], [14, 12, 10])
    self.assertLen(os.listdir(self.dir), 7)  # 3 x (index, data), state

  def test_data_files_left_by_a_cut_sweep_are_removed(self):
    self.save_steps()
    os.remove(os.path.join(self.dir, "ckpt-10.index"))  # cut after this
    self.save_steps((40,))
    self.assertEqual(sorted(os.listdir(self.dir)), [
        "checkpoint", "ckpt-20.data-00000-of-00001", "ckpt-20.index",
        "ckpt-30.data-00000-of-00001", "ckpt-30.index",
        "ckpt-40.data-00000-of-00001", "ckpt-40.index"])


class NoSpaceTest(tf.test.TestCase):
  """A save that finds the disk full: one clear error, nothing half-written
  left behind, the checkpoints before it intact."""

  def make(self, directory, size=1):
    self.lines = []
    v = tf.Variable(tf.zeros([size]), name="v")
    return v, checkpointing.Checkpointer(directory, max_to_keep=3,
                                         report=self.lines.append, guard=[v],
                                         w=v)

  def test_injected_full_disk(self):
    directory = os.path.join(self.get_temp_dir(), "injected")
    v, ckpt = self.make(directory, size=250_000)
    ckpt.save(10)
    real_write = ckpt.checkpoint.write

    def full_disk(prefix):
      os.makedirs(prefix + "_temp")
      raise tf.errors.ResourceExhaustedError(
          None, None, f"{directory}/ckpt-20_temp/part-00000; No space left "
          "on device [Op:SaveV2]")

    ckpt.checkpoint.write = full_disk
    v.assign(tf.ones_like(v))
    with self.assertRaisesRegex(
        errors.NoSpaceError, rf"^no space left in {directory} for checkpoint "
        r"20: it needs about 1 MB and \d+ MB are free; the checkpoints "
        r"written before are intact: free space and run the same command to "
        r"resume\.$"):
      ckpt.save(20)
    self.assertFalse(os.path.exists(os.path.join(directory, "ckpt-20_temp")))
    ckpt.checkpoint.write = real_write
    _, fresh = self.make(directory, size=250_000)
    self.assertEqual(fresh.restore_latest(), 10)

  def test_other_write_errors_are_not_disguised(self):
    v, ckpt = self.make(os.path.join(self.get_temp_dir(), "other"))

    def broken(prefix):
      raise tf.errors.PermissionDeniedError(None, None, "read-only")

    ckpt.checkpoint.write = broken
    with self.assertRaises(tf.errors.PermissionDeniedError):
      ckpt.save(1)

  def test_real_full_tmpfs(self):
    mount = os.path.join(self.get_temp_dir(), "tmpfs")
    os.makedirs(mount)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs",
                           mount], capture_output=True, text=True)
    if done.returncode:
      self.skipTest(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    self.addCleanup(subprocess.run, ["umount", "-l", mount])
    directory = os.path.join(mount, "run")
    v, ckpt = self.make(directory, size=300_000)  # 1.2 MB a checkpoint
    ckpt.save(1)
    ckpt.save(2)
    with self.assertRaisesRegex(errors.NoSpaceError,
                                "no space left in .* for checkpoint 3"):
      ckpt.save(3)
    self.assertEqual(sorted(os.listdir(directory)), [
        "checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index",
        "ckpt-2.data-00000-of-00001", "ckpt-2.index"])
    os.remove(os.path.join(directory, "ckpt-1.data-00000-of-00001"))
    os.remove(os.path.join(directory, "ckpt-1.index"))
    self.assertIsNotNone(ckpt.save(3))  # room again: the run goes on
    v2, fresh = self.make(directory, size=300_000)
    self.assertEqual(fresh.restore_latest(), 3)
