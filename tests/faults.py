"""What the fault tests share: the small real run they interrupt, its final
variables, and an uninterrupted reference run of the same command.

Runs on 2 logical CPU devices with --deterministic and with augmentation on.
Checkpoints are written every 4 steps and the loop runs 1 step per call, so
kills land at arbitrary steps. The tests are split over two files
(fault_test.py, fault_sigterm_test.py) so `make test`'s two processes run
them side by side.
"""

import os

import numpy as np
import tensorflow as tf

from core.runtime import checkpointing
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
# Batch normalisation: its moving statistics (stem, both blocks, the aux
# heads) through a SIGTERM and a resume.
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
  """The uninterrupted run's final variables with `extra` flags."""
  return final_variables(reference_dir(*extra))


def reference_dir(*extra):
  """The model_dir of the uninterrupted run with `extra` flags (run once
  for each in a test process; read it, or copy it to change it)."""
  if extra not in _REFERENCE:
    d = os.path.join(tf.compat.v1.test.get_temp_dir(),
                     "uninterrupted" + "".join(extra).replace("-", "_"))
    done = helpers.cli(flags(d, *extra))
    assert done.returncode == 0, done.stderr[-3000:]
    _REFERENCE[extra] = d
  return _REFERENCE[extra]


def assert_bitwise_equal(test: tf.test.TestCase, got: dict, want: dict):
  """`got` and `want` (final_variables) hold the same tensors, bit for bit,
  the recipe's state among them."""
  test.assertEqual(sorted(got), sorted(want))
  test.assertTrue(any(k.startswith("ema/") for k in want), sorted(want))
  test.assertTrue(any(k.startswith("best/") for k in want), sorted(want))
  for key in want:
    np.testing.assert_array_equal(got[key], want[key], err_msg=key)
