"""The modern recipe through a preemption: mixup and CutMix, RandAugment and
the colour distortion, gradient accumulation, layer-wise decay, class
weights and the plateau schedule all on, SIGTERM mid-run, and the same
command resumes to the uninterrupted run's variables bit for bit (issue 49:
"a resume is bitwise equal to an uninterrupted run"). tests/faults.py has
the run; its own file so `make test`'s processes run it beside the others.

An accumulated step is one compiled step (a while loop over the
micro-batches): a signal is honoured between steps, so no preemption can
land mid-accumulation, and nothing of a half-accumulated step needs saving.
"""

import os
import signal

import tensorflow as tf

from core.runtime import checkpointing
from tests import faults
from tests import helpers

# Groups of 2 divide each replica's micro-batch (16 over 2 replicas in 2
# micro-batches: 4 rows).
MODERN = ("--norm=batch", "--norm_group_size=2", "--accumulate_steps=2",
          "--mixup_alpha=0.4", "--cutmix_alpha=1.0",
          "--augment=crop,flip,erase,randaugment,colour",
          "--layer_decay=0.8", "--class_weight=balanced",
          "--lr_schedule=plateau", "--plateau_patience=1")


class RecipeResumeTest(tf.test.TestCase):

  def test_sigterm_mid_run_resumes_exactly_with_the_modern_recipe(self):
    want = faults.reference(*MODERN)
    self.assertIn("plateau/rate_scale/.ATTRIBUTES/VARIABLE_VALUE",
                  "\n".join(sorted(want)))
    model_dir = os.path.join(self.get_temp_dir(), "modern")
    proc, _, err = faults.run_until(model_dir, 13, signal.SIGTERM, *MODERN)
    self.assertEqual(proc.returncode, 75, err[-3000:])
    step = checkpointing.complete_checkpoints(model_dir)[0][0]
    self.assertIn(step, (13, 14))  # after the first validation (10)
    done = helpers.cli(faults.flags(model_dir, *MODERN))
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    self.assertIn(f"resuming at step {step}/", done.stdout)
    faults.assert_bitwise_equal(self, faults.final_variables(model_dir),
                                want)


if __name__ == "__main__":
  tf.test.main()
