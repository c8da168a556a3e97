"""Fault tolerance of the real command: SIGKILL at any step, SIGTERM,
divergence, determinism. Runs on 2 logical CPU devices with --deterministic
and with augmentation on.

Every kill is followed by a restart of the same command; the final variables
must be bitwise equal to an uninterrupted run's. Checkpoints are written every
4 steps and the loop runs 1 step per call, so kills land at arbitrary steps.
"""

import glob
import os
import random
import signal

import numpy as np
import tensorflow as tf

from core import checkpointing
from tests import events
from tests import helpers

STEPS = 24  # 10 steps per epoch: the run crosses two epoch boundaries


def flags(model_dir, *extra):
  # Augmentation on: its draws are keyed on (seed, step, index), so a
  # resumed run must draw exactly what the uninterrupted one drew. The
  # accuracy recipe on too: the moving average and the best validated
  # weights (validation at 10 and 20) are in the checkpoint and must resume
  # bitwise like the rest.
  return helpers.small_run_flags(
      model_dir, f"--train_steps={STEPS}", "--deterministic",
      "--steps_per_loop=1", "--checkpoint_every=4", "--eval_every=10",
      "--augment=crop,flip,erase", "--ema_decay=0.9",
      "--label_smoothing=0.1", "--weight_decay=0.01", "--clip_norm=5",
      "--export=best", *extra)


# Batch normalisation's moving statistics must resume bitwise too (groups
# of 4: two per replica's slice of 8). Only the SIGTERM test runs it: each
# run of the command traces a larger graph with it, and the SIGKILL test
# starts five.
NORM = ("--norm=batch", "--norm_group_size=4")


def final_variables(model_dir):
  """Every saved tensor of the newest checkpoint except the save counter."""
  prefix = checkpointing.complete_checkpoints(model_dir)[0][1]
  reader = tf.train.load_checkpoint(prefix)
  return {k: reader.get_tensor(k)
          for k in reader.get_variable_to_shape_map()
          if "save_counter" not in k and "OBJECT_GRAPH" not in k}


def run_until(model_dir, stop_after_step, sig, *extra):
  """Starts the command and sends `sig` once step `stop_after_step` is
  reported (the next step is then in flight). Returns the finished process
  and its output."""
  proc = helpers.popen(flags(model_dir, *extra))
  lines = []
  for line in proc.stdout:
    lines.append(line)
    if line.startswith(f"step {stop_after_step}/"):
      proc.send_signal(sig)
      break
  out, err = proc.communicate(timeout=900)
  return proc, "".join(lines) + out, err


_REFERENCE = {}


def reference(*extra):
  """The uninterrupted run with `extra` flags (computed once for each)."""
  if extra not in _REFERENCE:
    d = os.path.join(tf.compat.v1.test.get_temp_dir(),
                     "uninterrupted" + "".join(extra).replace("-", "_"))
    done = helpers.cli(flags(d, *extra))
    assert done.returncode == 0, done.stderr[-3000:]
    _REFERENCE[extra] = final_variables(d)
  return _REFERENCE[extra]


class FaultToleranceTest(tf.test.TestCase):

  def assert_bitwise_equal(self, got, want):
    self.assertEqual(sorted(got), sorted(want))
    # The recipe's state is among what is compared.
    self.assertTrue(any(k.startswith("ema/") for k in want), sorted(want))
    self.assertTrue(any(k.startswith("best/") for k in want), sorted(want))
    for key in want:
      np.testing.assert_array_equal(got[key], want[key], err_msg=key)

  def test_sigkill_at_random_steps_resumes_exactly(self):
    want = reference()
    # 4: right after a checkpoint; 9: the last step of epoch 0 (10 steps per
    # epoch, counting from 0 the kill lands in step 10); plus random steps.
    rng = random.Random(2026)
    kills = sorted({4, 9} | set(rng.sample(range(1, STEPS - 1), 2)))
    model_dir = os.path.join(self.get_temp_dir(), "killed")
    for step in kills:
      proc, _, _ = run_until(model_dir, step, signal.SIGKILL)
      self.assertEqual(proc.returncode, -signal.SIGKILL)
    done = helpers.cli(flags(model_dir))
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    self.assertIn("resuming at step", done.stdout)
    self.assert_bitwise_equal(final_variables(model_dir), want)

  def test_sigterm_inside_a_long_chunk_stops_at_the_next_step(self):
    # One compiled call runs 30 steps; the signal lands just after the first
    # call reported. Waiting for the call to end would stop at 60; the stop
    # flag ends it at the next step boundary.
    model_dir = os.path.join(self.get_temp_dir(), "long-chunk")
    args = helpers.small_run_flags(
        model_dir, "--train_steps=90", "--steps_per_loop=30",
        "--checkpoint_every=1000", "--eval_every=1000")
    proc = helpers.popen(args)
    for line in proc.stdout:
      if line.startswith("step 30/90"):
        proc.send_signal(signal.SIGTERM)
        break
    _, err = proc.communicate(timeout=900)
    self.assertEqual(proc.returncode, 75, err[-3000:])
    step = int(err.split("at step ")[1].split(":")[0])
    self.assertBetween(step, 30, 36)
    self.assertEqual(checkpointing.complete_checkpoints(model_dir)[0][0],
                     step)
    done = helpers.cli(args)
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    self.assertIn(f"resuming at step {step}/90", done.stdout)

  def test_sigterm_checkpoints_flushes_and_resumes_exactly(self):
    want = reference(*NORM)
    self.assertTrue(any("moving_mean" in k for k in want), sorted(want))
    model_dir = os.path.join(self.get_temp_dir(), "preempted")
    proc, out, err = run_until(model_dir, 6, signal.SIGTERM, *NORM)
    self.assertEqual(proc.returncode, 75, err)
    line = err.strip().splitlines()[-1]
    self.assertRegex(line, r"^error: preempted by SIGTERM at step (\d+): "
                     "checkpoint saved in .*; run the same command to resume")
    step = int(line.split("at step ")[1].split(":")[0])
    # The signal came after step 6 was reported: either while step 7 ran
    # (finished, then saved) or before the loop's check (saved at 6).
    self.assertIn(step, (6, 7))
    self.assertEqual(checkpointing.complete_checkpoints(model_dir)[0][0],
                     step)
    logged = [s for s, _ in events.read(os.path.join(model_dir, "train"))[
        "loss/total"]]
    self.assertEqual(logged[-1], step)  # TensorBoard flushed up to the step
    done = helpers.cli(flags(model_dir, *NORM))
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    self.assertIn(f"resuming at step {step}/", done.stdout)
    self.assert_bitwise_equal(final_variables(model_dir), want)

  def test_same_seed_same_bits_other_seed_other_bits(self):
    want = reference()
    other = os.path.join(self.get_temp_dir(), "seed1")
    done = helpers.cli(flags(other, "--seed=1", "--train_steps=4"))
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    got = final_variables(other)
    key = next(k for k in want if "classifier/kernel" in k)
    self.assertFalse(np.array_equal(got[key], want[key]))

  def test_divergence_stops_with_finite_checkpoints(self):
    model_dir = os.path.join(self.get_temp_dir(), "diverged")
    done = helpers.cli(flags(model_dir, "--learning_rate=1e12",
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
    model_dir = os.path.join(self.get_temp_dir(), "corrupt")
    first = helpers.cli(flags(model_dir, "--train_steps=8"))
    self.assertEqual(first.returncode, 0, first.stderr[-3000:])
    with open(os.path.join(model_dir, "ckpt-8.index"), "wb") as f:
      f.write(b"\0" * 7)
    done = helpers.cli(flags(model_dir, "--train_steps=8"))
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    warnings = [l for l in done.stdout.splitlines() if "ckpt-8" in l]
    self.assertLen(warnings, 1)
    self.assertRegex(warnings[0], "^warning: checkpoint .*ckpt-8 is unusable")
    self.assertIn("resuming at step 4/8", done.stdout)
