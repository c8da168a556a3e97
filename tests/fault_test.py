"""Fault tolerance of the real command: SIGKILL at any step, divergence, a
corrupt checkpoint, determinism (tests/faults.py has the run; SIGTERM is in
fault_sigterm_test.py).

Every kill is followed by a restart of the same command; the final variables
must be bitwise equal to an uninterrupted run's.
"""

import glob
import os
import shutil
import signal

import numpy as np
import tensorflow as tf

from core.runtime import checkpointing
from tests import events
from tests import faults
from tests import helpers


class FaultToleranceTest(tf.test.TestCase):

  def test_sigkill_at_random_steps_resumes_exactly(self):
    want = faults.reference()
    # 4: right after a checkpoint; 9: the last step of epoch 0 (10 steps per
    # epoch, counting from 0 the kill lands in step 10); 14: within epoch 1,
    # after the first validation, with the best weights in the checkpoint
    # and a checkpoint (12) in between. (Two more random steps cost two
    # more runs and covered nothing these do not.)
    kills = [4, 9, 14]
    model_dir = os.path.join(self.get_temp_dir(), "killed")
    for step in kills:
      proc, _, _ = faults.run_until(model_dir, step, signal.SIGKILL)
      self.assertEqual(proc.returncode, -signal.SIGKILL, f"kills {kills}")
    done = helpers.cli(faults.flags(model_dir))
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    self.assertIn("resuming at step", done.stdout)
    faults.assert_bitwise_equal(self, faults.final_variables(model_dir),
                                want)

  def test_divergence_stops_with_finite_checkpoints(self):
    model_dir = os.path.join(self.get_temp_dir(), "diverged")
    done = helpers.cli(faults.flags(model_dir, "--learning_rate=1e12",
                                    "--max_bad_steps=3", "--checkpoint_every=1"))
    self.assertEqual(done.returncode, 3, done.stderr)
    self.assertRegex(done.stderr.strip().splitlines()[-1],
                     r"^error: training diverged: 3 consecutive steps up to "
                     r"step \d+ had a non-finite loss or gradient")
    saved = glob.glob(os.path.join(model_dir, "ckpt-*.index"))
    self.assertNotEmpty(saved)
    for _, prefix in checkpointing.complete_checkpoints(model_dir):
      reader = tf.train.load_checkpoint(prefix)
      for key in reader.get_variable_to_shape_map():
        value = reader.get_tensor(key)
        if np.issubdtype(np.asarray(value).dtype, np.floating):
          self.assertTrue(np.all(np.isfinite(value)), f"{prefix} {key}")
    skipped = events.read(os.path.join(model_dir, "train"))["skipped_steps"]
    self.assertGreaterEqual(skipped[-1][1], 3)

  def test_corrupt_newest_checkpoint_falls_back_in_one_line(self):
    # A copy of the uninterrupted run (checkpoints 16, 20, 24) whose newest
    # checkpoint is then damaged: the same command falls back to 20.
    model_dir = os.path.join(self.get_temp_dir(), "corrupt")
    shutil.copytree(faults.reference_dir(), model_dir)
    with open(os.path.join(model_dir, "ckpt-24.index"), "wb") as f:
      f.write(b"\0" * 7)
    done = helpers.cli(faults.flags(model_dir))
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    warnings = [l for l in done.stdout.splitlines() if "ckpt-24" in l]
    self.assertLen(warnings, 1)
    self.assertRegex(warnings[0], "^warning: checkpoint .*ckpt-24 is "
                     "unusable")
    self.assertIn(f"resuming at step 20/{faults.STEPS}", done.stdout)
