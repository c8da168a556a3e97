"""Preemption of the real command: SIGTERM checkpoints, flushes TensorBoard
and exits 75, and the same command resumes bitwise, batch normalisation's
moving statistics included; a SIGTERM during the last validation is
validated again after the resume, so --export=best exports the
uninterrupted run's weights (tests/faults.py has the run)."""

import os
import signal

import tensorflow as tf

from core.runtime import checkpointing
from tests import events
from tests import faults
from tests import helpers


class SigtermTest(tf.test.TestCase):

  def test_sigterm_checkpoints_flushes_and_resumes_exactly(self):
    want = faults.reference(*faults.NORM)
    self.assertTrue(any("moving_mean" in k for k in want), sorted(want))
    model_dir = os.path.join(self.get_temp_dir(), "preempted")
    proc, _, err = faults.run_until(model_dir, 6, signal.SIGTERM,
                                    *faults.NORM)
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
    # The resumed run is stopped again during its last validation (it
    # starts right after the last step's line): the checkpoint at the last
    # step is written without that validation, which --export=best needs.
    proc, out, err = faults.run_until(model_dir, faults.STEPS,
                                      signal.SIGTERM, *faults.NORM)
    self.assertEqual(proc.returncode, 75, err[-3000:])
    self.assertIn(f"resuming at step {step}/", out)
    self.assertRegex(err.strip().splitlines()[-1],
                     r"^error: preempted by SIGTERM before the final test "
                     f"and export at step {faults.STEPS}")
    self.assertNotIn(f"eval at step {faults.STEPS}:", out)
    done = helpers.cli(faults.flags(model_dir, *faults.NORM))
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    self.assertIn(f"validating step {faults.STEPS} first: a signal "
                  "interrupted its validation", done.stdout)
    self.assertIn(f"eval at step {faults.STEPS}:", done.stdout)
    faults.assert_bitwise_equal(self, faults.final_variables(model_dir), want)
    # The exported weights are the uninterrupted run's, bit for bit.
    reference = faults.reference_dir(*faults.NORM)
    exported, wanted = (tf.train.load_checkpoint(os.path.join(
        d, "export", str(faults.STEPS), "variables", "variables"))
                        for d in (model_dir, reference))
    keys = sorted(wanted.get_variable_to_shape_map())
    self.assertEqual(sorted(exported.get_variable_to_shape_map()), keys)
    for key in keys:
      if "OBJECT_GRAPH" not in key:
        self.assertAllEqual(exported.get_tensor(key), wanted.get_tensor(key),
                            msg=key)

  def test_sigterm_inside_a_long_chunk_stops_at_the_next_step(self):
    # One compiled call runs 30 steps; the signal lands just after the first
    # call reported. Waiting for the call to end would stop at 60; the stop
    # flag ends it at the next step boundary.
    model_dir = os.path.join(self.get_temp_dir(), "long-chunk")
    args = helpers.small_run_flags(
        model_dir, "--train_steps=90", "--steps_per_loop=30",
        "--checkpoint_every=1000", "--eval_every=1000", "--export=none")
    proc = helpers.popen(args)
    for line in proc.stdout:
      if line.startswith("step 30/90"):
        proc.send_signal(signal.SIGTERM)
        break
    _, err = proc.communicate(timeout=900)
    self.assertEqual(proc.returncode, 75, err[-3000:])
    step = int(err.split("at step ")[1].split(":")[0])
    self.assertBetween(step, 30, 36)
    # The newest checkpoint is that step's. (That the same command resumes
    # from it, bitwise, is the test above's subject.)
    self.assertEqual(checkpointing.complete_checkpoints(model_dir)[0][0],
                     step)
