"""A used model_dir is resumed or refused, never silently started over, its
name is a path, not a pattern, and a resume under other flags says so in one
line: the command, as a user runs it."""

import json
import os
import shutil

import tensorflow as tf

from tests import helpers


def folder_flags(model_dir: str, data_dir: str, *extra: str) -> list:
  return [f"--model_dir={model_dir}", "--dataset=folder",
          f"--data_dir={data_dir}", "--strategy=mirrored",
          "--num_cpu_devices=2", "--image_size=28", "--global_batch_size=4",
          "--validation_size=2", "--steps_per_loop=2",
          "--checkpoint_every=2", "--keep_checkpoints=2", "--export=none",
          helpers.SMALL_NETWORK, *extra]


def files(model_dir: str) -> list:
  return sorted(n for n in os.listdir(model_dir) if n.startswith("ckpt-"))


class ResumeRefusalTest(tf.test.TestCase):

  def test_a_class_folder_added_is_refused_then_started_over(self):
    """The review's case: 2 classes to step 6, a third class folder added,
    the same command to step 8. It trained over the old run from step 0."""
    root = self.get_temp_dir()
    # The run's folder name holds pattern characters: it is a path, not a
    # pattern. A neighbour that `lr[0.1] *b` would match is never touched.
    data, run = (os.path.join(root, "photos"),
                 os.path.join(root, "runs", "lr[0.1] *b"))
    neighbour = os.path.join(root, "runs", "lr0 xb")
    os.makedirs(neighbour)
    with open(os.path.join(neighbour, "ckpt-9_temp"), "w") as f:
      f.write("another run's")
    helpers.write_image_folder(data, classes=("cat", "dog"), per_class=4)
    first = helpers.cli(folder_flags(run, data, "--train_steps=6"))
    self.assertEqual(first.returncode, 0, first.stderr[-3000:])
    before = {n: os.path.getsize(os.path.join(run, n)) for n in files(run)}
    helpers.write_image_folder(data + "-3", classes=("cat", "dog", "eel"),
                               per_class=4)
    shutil.copytree(os.path.join(data + "-3", "train", "eel"),
                    os.path.join(data, "train", "eel"))

    refused = helpers.cli(folder_flags(run, data, "--train_steps=8"))
    self.assertEqual(refused.returncode, 2, refused.stderr[-3000:])
    self.assertRegex(refused.stderr, helpers.ONE_LINE)
    self.assertIn(f"`model_dir` {run} holds a run trained on other data "
                  "(num_classes: 2 there, 3 now; class_names: added 1 "
                  "('eel')); use another --model_dir, or --start_over",
                  refused.stderr)
    self.assertEqual({n: os.path.getsize(os.path.join(run, n))
                      for n in files(run)}, before)  # untouched

    again = helpers.cli(folder_flags(run, data, "--train_steps=8",
                                     "--start_over"))
    self.assertEqual(again.returncode, 0, again.stderr[-3000:])
    self.assertIn("starting at step 0/8", again.stdout)
    moved = [n for n in os.listdir(run) if n.startswith("replaced-")]
    self.assertLen(moved, 1)
    self.assertIn(f"--start_over moved it to {os.path.join(run, moved[0])}",
                  again.stdout)
    self.assertEqual(files(os.path.join(run, moved[0])), sorted(before))
    self.assertEqual(files(run)[-2:], ["ckpt-8.data-00000-of-00001",
                                       "ckpt-8.index"])
    # And a run that can resume still resumes, --start_over or not. Under
    # other flags (training longer is a use), said in one line, so a
    # mistyped flag does not silently make another run than one command
    # would have.
    longer = helpers.cli(folder_flags(run, data, "--train_steps=10",
                                      "--start_over", "--learning_rate=0.01"))
    self.assertEqual(longer.returncode, 0, longer.stderr[-3000:])
    self.assertIn("resuming at step 8/10", longer.stdout)
    notes = [l for l in longer.stdout.splitlines() if l.startswith("note:")]
    self.assertEqual(notes, [
        "note: resuming with other flags than the run's before "
        "(learning_rate: None there, 0.01 now; train_steps: 8 there, 10 now): "
        "it continues with the new values"])
    # The manifest now holds the new flags: the next resume compares to them.
    with open(os.path.join(run, "manifest.json")) as f:
      recorded = json.load(f)["flags"]
    self.assertEqual((recorded["train_steps"], recorded["learning_rate"]),
                     (10, 0.01))
    self.assertEqual(os.listdir(neighbour), ["ckpt-9_temp"])

  def test_checkpoints_that_do_not_restore_are_refused(self):
    """No manifest to compare (a copied-in folder): the restore itself
    fails, and the newest checkpoint and its reason are named."""
    root = self.get_temp_dir()
    run = os.path.join(root, "run")
    flags = helpers.small_run_flags(run, "--export=none",
                                    "--checkpoint_every=2")
    first = helpers.cli(flags + ["--train_steps=2"])
    self.assertEqual(first.returncode, 0, first.stderr[-3000:])
    os.remove(os.path.join(run, "manifest.json"))
    wider = helpers.cli(flags + ["--train_steps=4", "--image_size=32",
                                 "--blocks=3a,4a,4d"])
    self.assertEqual(wider.returncode, 2, wider.stderr[-3000:])
    self.assertRegex(wider.stderr, helpers.ONE_LINE)
    self.assertRegex(wider.stderr, r"holds 1 checkpoint\(s\) and none "
                     r"restores into this model: the newest, ckpt-2, fails "
                     r"with .*; use another --model_dir, or --start_over")


if __name__ == "__main__":
  tf.test.main()
