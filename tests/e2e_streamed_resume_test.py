"""Exact resume for the streamed sources: a run resumed from its checkpoint
at step 4 ends with variables bitwise equal to the uninterrupted run's, for
an image folder and for TFRecord shards, with augmentation on."""

import json
import os
import re
import shutil

import tensorflow as tf
from absl.testing import parameterized

from core.runtime import checkpointing
from tests import events
from tests import faults
from tests import helpers
from train.startup import kernels


class StreamedResumeTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    tmp = tf.compat.v1.test.get_temp_dir()
    cls.sources = {"folder": os.path.join(tmp, "resume-photos"),
                   "tfrecord": os.path.join(tmp, "resume-shards")}
    helpers.write_image_folder(cls.sources["folder"], per_class=8)
    done = helpers.python("-m", "tools.convert",
                          f"--source=folder:{cls.sources['folder']}",
                          "--to=tfrecord",
                          f"--output={cls.sources['tfrecord']}",
                          "--shards=3")
    assert done.returncode == 0, done.stderr

  def flags(self, source, model_dir, steps):
    return [f"--model_dir={model_dir}", f"--dataset={source}",
            f"--data_dir={self.sources[source]}", "--strategy=mirrored",
            "--num_cpu_devices=2", "--image_size=16", "--global_batch_size=4",
            "--validation_size=4", "--steps_per_loop=2",
            "--checkpoint_every=2", "--deterministic", "--eval_every=4",
            "--augment=crop,flip,erase", f"--train_steps={steps}",
            # No SavedModel: what is compared is the checkpoint (and it
            # saves three exports' time per source).
            "--export=none", helpers.SMALL_NETWORK]

  @parameterized.parameters("folder", "tfrecord")
  def test_stopped_and_resumed_equals_uninterrupted(self, source):
    whole = os.path.join(self.get_temp_dir(), f"{source}-whole")
    parts = os.path.join(self.get_temp_dir(), f"{source}-parts")
    # 20 training files in batches of 4: step 4 lies inside the first
    # epoch's second half, and the run crosses an epoch boundary at 5.
    done = helpers.cli(self.flags(source, whole, 8))
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    if os.environ.get(kernels.VARIABLE) is None:  # the engine chose
      manifest = json.load(open(os.path.join(whole, "manifest.json")))
      self.assertEqual(manifest["cpu_kernels"], "Eigen")  # --deterministic
    self.assertFalse(os.path.exists(os.path.join(whole, "export")))
    # Validation (and its misclassified grid, read from shards or files)
    # ran and moves no training state: the resumed run ends bitwise equal.
    # (The shards were converted from the folder's train split only: they
    # have no validation split.)
    validated = events.read(os.path.join(whole, "eval")).get(
        "accuracy/main", [])
    self.assertEqual([step for step, _ in validated],
                     [4, 8] if source == "folder" else [])
    # The run as a preemption after step 4 leaves it (its checkpoints at 6
    # and 8 gone), resumed by the same command: the stream goes on from
    # the 4th batch. (That a process stopped at a step leaves the same
    # checkpoint as one that goes on is the fault tests' subject,
    # tests/fault_test.py; this one's is the streamed readers' position.)
    shutil.copytree(whole, parts)
    for name in os.listdir(parts):
      if re.match(r"ckpt-[68]\.", name):
        os.remove(os.path.join(parts, name))
    self.assertEqual(checkpointing.complete_checkpoints(parts)[0][0], 4)
    done = helpers.cli(self.flags(source, parts, 8))
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    self.assertIn("resuming at step 4/8", done.stdout)
    self.assertRegex(done.stdout, r"\nrun ended at step 8 after ")
    a, b = (faults.final_variables(d) for d in (whole, parts))
    self.assertEqual(sorted(a), sorted(b))
    for key in a:
      self.assertAllEqual(a[key], b[key], msg=key)
