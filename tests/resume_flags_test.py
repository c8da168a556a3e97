"""A resume under other flags than the run's: allowed (training longer is a
use), and said in one line, so a mistyped flag does not silently make a
different run than one command would have."""

import json
import os

import tensorflow as tf

from tests import helpers


class ResumeFlagsTest(tf.test.TestCase):

  def test_the_changed_flags_are_named_in_one_line(self):
    model_dir = os.path.join(self.get_temp_dir(), "run")
    flags = helpers.small_run_flags(model_dir, "--export=none",
                                    "--checkpoint_every=2")
    first = helpers.cli(flags + ["--train_steps=2"])
    self.assertEqual(first.returncode, 0, first.stderr[-3000:])
    longer = helpers.cli(flags + ["--train_steps=4", "--learning_rate=0.01"])
    self.assertEqual(longer.returncode, 0, longer.stderr[-3000:])
    notes = [l for l in longer.stdout.splitlines() if l.startswith("note:")]
    self.assertEqual(notes, [
        "note: resuming with other flags than the run's before "
        "(learning_rate: None there, 0.01 now; train_steps: 2 there, 4 now): "
        "it continues with the new values"])
    self.assertIn("resuming at step 2/4", longer.stdout)
    # The manifest now holds the new flags: the next resume compares to them.
    with open(os.path.join(model_dir, "manifest.json")) as f:
      recorded = json.load(f)["flags"]
    self.assertEqual((recorded["train_steps"], recorded["learning_rate"]),
                     (4, 0.01))


if __name__ == "__main__":
  tf.test.main()
