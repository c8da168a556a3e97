"""A run whose folders are on a file system that is not POSIX, as a user's
bucket is: TensorFlow's in-memory `ram://` file system, in this process,
which has no locks, no atomic rename of a folder and appends to a file
opened for writing again, and which only `tf.io.gfile` reaches. The run
trains to step 4, then again to 8: it resumes exactly (bitwise equal to an
uninterrupted local run), publishes integer versions that
`tf.saved_model.load` reads back, holds a lease instead of a lock, and
writes nothing on local disk. (A GCS emulator cannot stand in here: TF's
GCS client has its hosts written into it, www.googleapis.com and
storage.googleapis.com over TLS; BUILD.md "Storage".)"""

import json
import os
import tempfile
import unittest

import numpy as np
import tensorflow as tf

import train
from core.runtime import files
from tests import helpers
from train.assembly import run_lock

FLAGS = dict(dataset="synthetic", image_size=28, global_batch_size=16,
             validation_size=64, train_examples=160, strategy="mirrored",
             num_cpu_devices=2, steps_per_loop=2, checkpoint_every=2,
             eval_every=4, blocks=helpers.SMALL_BLOCKS)


def _local_entries():
  """What could appear on local disk: the project's folder and the working
  folder (names), and in the temporary folder, which other tests and
  TensorFlow's autograph share, what a run would write (a folder named
  after the scheme, a checkpoint's temporary)."""
  entries = {folder: set(os.listdir(folder))
             for folder in {helpers.ROOT, os.getcwd()}}
  entries["tmp"] = {n for n in os.listdir(tempfile.gettempdir())
                    if n.startswith(("ram:", "gs:", "nofs:", "ckpt-"))}
  return entries


class ObjectStorageTest(unittest.TestCase):

  @classmethod
  def setUpClass(cls):
    cls.before = _local_entries()
    bucket = f"ram://bucket-{os.getpid()}"
    cls.model_dir, cls.export_dir = f"{bucket}/run", f"{bucket}/export"
    cls.lines = []
    cls.first = train.fit(model_dir=cls.model_dir, export_dir=cls.export_dir,
                          train_steps=4, report=cls.lines.append, **FLAGS)
    cls.after_first = _local_entries()
    cls.resumed_lines = []
    cls.second = train.fit(model_dir=cls.model_dir,
                           export_dir=cls.export_dir, train_steps=8,
                           report=cls.resumed_lines.append, **FLAGS)
    cls.after = _local_entries()
    cls.reference_dir = tempfile.mkdtemp(prefix="reference-")
    cls.reference = train.fit(model_dir=cls.reference_dir, train_steps=8,
                              report=lambda line: None, **FLAGS)

  def test_the_second_call_resumes_exactly(self):
    self.assertTrue(any(line.startswith("starting at step 0/4")
                        for line in self.lines), self.lines)
    self.assertTrue(any(line.startswith("resuming at step 4/8")
                        for line in self.resumed_lines), self.resumed_lines)
    self.assertEqual(self.second.global_step, 8)
    resumed = helpers.checkpoint_variables(f"{self.model_dir}/ckpt-8")
    reference = helpers.checkpoint_variables(
        os.path.join(self.reference_dir, "ckpt-8"))
    self.assertEqual(sorted(resumed), sorted(reference))
    for name, value in reference.items():
      np.testing.assert_array_equal(resumed[name], value, err_msg=name)

  def test_versions_are_published_whole_and_load(self):
    self.assertEqual(files.listdir(self.export_dir), ["4", "8"])
    self.assertEqual(self.second.export_path, f"{self.export_dir}/8")
    for version in ("4", "8"):
      folder = f"{self.export_dir}/{version}"
      self.assertTrue(files.exists(f"{folder}/saved_model.pb"))
      meta = json.loads(files.read_text(
          f"{folder}/assets.extra/metadata.json"))
      self.assertIn("weights_sha256", meta)
    serve = tf.saved_model.load(
        f"{self.export_dir}/8").signatures["serving_default"]
    local = tf.saved_model.load(
        self.reference.export_path).signatures["serving_default"]
    images = tf.constant(np.random.RandomState(0).randint(
        0, 256, [3, 28, 28, 1]).astype(np.uint8))
    np.testing.assert_array_equal(serve(images=images)["logits"],
                                  local(images=images)["logits"])

  def test_the_run_leaves_its_folder_as_a_local_run_does(self):
    names = files.listdir(self.model_dir)
    self.assertIn("manifest.json", names)
    self.assertIn("checkpoint", names)
    self.assertIn("train", names)  # TensorBoard's event files
    self.assertNotIn(run_lock.LEASE_NAME, names)  # released at the end
    self.assertFalse([n for n in files.listdir(self.export_dir)
                      if n.startswith(".tmp-")])
    manifest = json.loads(files.read_text(f"{self.model_dir}/manifest.json"))
    self.assertEqual(manifest["flags"]["model_dir"], self.model_dir)

  def test_nothing_appears_on_local_disk(self):
    self.assertEqual(self.after_first, self.before)
    self.assertEqual(self.after, self.before)


class SchemesTest(unittest.TestCase):

  def test_an_unknown_scheme_is_one_line_before_anything_is_written(self):
    before = _local_entries()
    result = helpers.cli(["--dataset=synthetic", "--model_dir=nofs://b/run"])
    self.assertEqual(result.returncode, 2)
    self.assertRegex(result.stderr, helpers.ONE_LINE)
    self.assertRegex(result.stderr, r"`model_dir` 'nofs://b/run': TensorFlow "
                     r"has no file system for nofs:// here \(it knows .*gs://"
                     r".*\); import the TensorFlow plugin")
    self.assertEqual(_local_entries(), before)

  def test_a_bucket_out_of_reach_is_one_line_and_writes_nothing_locally(self):
    # No network here: TF's GCS client fails to resolve its host at once.
    before = _local_entries()
    result = helpers.cli(["--dataset=synthetic",
                          "--model_dir=gs://no-such-bucket-here/run"])
    self.assertEqual(result.returncode, 2)
    self.assertRegex(result.stderr, helpers.ONE_LINE)
    self.assertIn("`model_dir` 'gs://no-such-bucket-here/run' cannot be "
                  "written", result.stderr)
    self.assertEqual(_local_entries(), before)
    self.assertFalse(os.path.exists(os.path.join(helpers.ROOT, "gs:")))


if __name__ == "__main__":
  unittest.main()
