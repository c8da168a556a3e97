"""The plateau schedule and early stopping through the real command: a run
interrupted by SIGTERM around a validation that lowers the rate, and
resumed, ends at the step, with the rate, the variables (the validations'
record among them) and the export of the uninterrupted run."""

import json
import os
import signal

import numpy as np
import tensorflow as tf

from tests import faults
from tests import helpers

STEPS = 60
# On the synthetic set with this seed the validation accuracy rises at 4
# and 12 (a stall at 8 in between resets), then stalls: the rate drops at
# 20 and 28 and training stops at 32, before the last step.
PLATEAU = ("--lr_schedule=plateau", "--learning_rate=3e-4",
           "--plateau_patience=2", "--early_stopping=5")
DROPS_AND_STOP = ("learning rate x", "early stopping")


def flags(model_dir):
  return helpers.small_run_flags(
      model_dir, f"--train_steps={STEPS}", "--deterministic",
      "--steps_per_loop=2", "--checkpoint_every=4", "--eval_every=4",
      "--export=best", *PLATEAU)


def decisions(out):
  return [line for line in out.splitlines()
          if line.startswith(DROPS_AND_STOP)]


def last_rate(out):
  return [line for line in out.splitlines()
          if line.startswith("step ")][-1].split(" lr ")[1].split()[0]


def export_metadata(model_dir, step):
  with open(os.path.join(model_dir, "export", str(step), "assets.extra",
                         "metadata.json")) as f:
    return json.load(f)


class PlateauEarlyStopTest(tf.test.TestCase):

  def test_a_resumed_run_decides_as_an_uninterrupted_one(self):
    straight_dir = os.path.join(self.get_temp_dir(), "uninterrupted")
    straight = helpers.cli(flags(straight_dir))
    self.assertEqual(straight.returncode, 0, straight.stderr[-3000:])
    self.assertEqual(decisions(straight.stdout), [
        "learning rate x0.1 at step 20 (now 0.1 of the schedule's): 2 "
        "validations without an accuracy above 0.1406 (step 12)",
        "learning rate x0.1 at step 28 (now 0.01 of the schedule's): 4 "
        "validations without an accuracy above 0.1406 (step 12)",
        "early stopping at step 32: 5 validations without an accuracy "
        "above 0.1406 (step 12)"])
    self.assertEqual(last_rate(straight.stdout), "3.00e-06")
    want = faults.final_variables(straight_dir)
    # Two drops, each a float32 product.
    self.assertEqual(want["plateau/rate_scale/.ATTRIBUTES/VARIABLE_VALUE"],
                     np.float32(0.1) * np.float32(0.1))

    # SIGTERM once step 20's line is out: during its validation (counted
    # again after the resume), after it, or a step or two later.
    model_dir = os.path.join(self.get_temp_dir(), "interrupted")
    proc = helpers.popen(flags(model_dir))
    before = []
    for line in proc.stdout:
      before.append(line)
      if line.startswith("step 20/"):
        proc.send_signal(signal.SIGTERM)
        break
    out, err = proc.communicate(timeout=900)
    self.assertEqual(proc.returncode, 75, err[-3000:])
    resumed = helpers.cli(flags(model_dir))
    self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])

    self.assertEqual(decisions("".join(before) + out + resumed.stdout),
                     decisions(straight.stdout))
    self.assertEqual(last_rate(resumed.stdout), "3.00e-06")
    got = faults.final_variables(model_dir)
    self.assertEqual(sorted(got), sorted(want))
    for key in want:
      np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    # Both exported the weights of step 12 as version 32, the stop.
    for run in (straight_dir, model_dir):
      meta = export_metadata(run, 32)
      self.assertEqual((meta["global_step"], meta["weights_step"]), (32, 12))


if __name__ == "__main__":
  tf.test.main()
