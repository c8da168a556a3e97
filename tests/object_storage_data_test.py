"""Data on a file system that is not POSIX, as a user's bucket is: an image
folder and TFRecord shards on TensorFlow's in-memory `ram://` file system,
written in this process (ram:// lives in one process), trained on through
the library's entry point (`train.fit`) with the run's folder there too.
Each trains to step 4, then resumes to 8 bitwise equal to an uninterrupted
run on the same data on local disk, and `train.evaluate` reproduces its test
accuracy from the bucket. (tests/object_storage_test.py has the run's own
folder on ram://: leases, exports, nothing on local disk.)"""

import os
import tempfile

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

import train
from core.data import tfrecords
from core.runtime import files
from tests import helpers
from train import evaluate

# 24 training images in batches of 4 (6 steps an epoch: the resumed run
# crosses an epoch's end), 4 of the folder's held out for validation.
FLAGS = dict(image_size=16, global_batch_size=4, validation_size=4,
             strategy="mirrored", num_cpu_devices=2, steps_per_loop=2,
             checkpoint_every=2, eval_every=4, augment=("crop", "flip"),
             export="none", blocks=helpers.SMALL_BLOCKS)


def _write_shards(written, root: str, shards: int = 2) -> None:
  """The folder's files as shards `root/<split>-*` (records dealt out in
  turn), with the class names in dataset.json."""
  tf.io.gfile.makedirs(root)
  for split, items in written.items():
    writers = [tf.io.TFRecordWriter(f"{root}/{split}-{i:05d}-of-{shards:05d}")
               for i in range(shards)]
    for i, (path, label) in enumerate(items):
      writers[i % shards].write(tfrecords.example(files.read_bytes(path),
                                                  label))
    for writer in writers:
      writer.close()
  tfrecords.write_metadata(root, {s: len(v) for s, v in written.items()},
                           ["cat", "dog", "eel"])


def _copy_tree(source: str, target: str) -> None:
  for folder, _, names in tf.io.gfile.walk(source):
    for name in names:
      path = os.path.join(folder, name)
      copy = f"{target}/{os.path.relpath(path, source)}"
      tf.io.gfile.makedirs(os.path.dirname(copy))
      tf.io.gfile.copy(path, copy)


class ObjectStorageDataTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    local = tempfile.mkdtemp(prefix="storage-data-")
    cls.bucket = f"ram://data-{os.getpid()}"
    written = helpers.write_image_folder(os.path.join(local, "folder"),
                                         per_class=8,
                                         splits=("train", "test"))
    _write_shards(written, os.path.join(local, "tfrecord"))
    cls.local = local
    for source in ("folder", "tfrecord"):
      _copy_tree(os.path.join(local, source), f"{cls.bucket}/{source}")

  @parameterized.parameters("folder", "tfrecord")
  def test_trains_resumes_exactly_and_evaluates(self, source):
    model_dir = f"{self.bucket}/run-{source}"
    lines = []
    for steps in (4, 8):
      result = train.fit(model_dir=model_dir, dataset=source,
                         data_dir=f"{self.bucket}/{source}",
                         train_steps=steps, report=lines.append, **FLAGS)
    self.assertIn("resuming at step 4/8", "\n".join(lines))
    self.assertEqual(result.global_step, 8)
    reference_dir = tempfile.mkdtemp(prefix=f"storage-{source}-")
    train.fit(model_dir=reference_dir, dataset=source,
              data_dir=os.path.join(self.local, source), train_steps=8,
              report=lambda line: None, **FLAGS)
    resumed = helpers.checkpoint_variables(f"{model_dir}/ckpt-8")
    reference = helpers.checkpoint_variables(
        os.path.join(reference_dir, "ckpt-8"))
    self.assertEqual(sorted(resumed), sorted(reference))
    for name, value in reference.items():
      np.testing.assert_array_equal(resumed[name], value, err_msg=name)
    report = evaluate.evaluate_checkpoint(model_dir)
    self.assertEqual((report.examples, report.step), (24, 8))
    self.assertEqual(report.accuracy, result.test_accuracy)


if __name__ == "__main__":
  tf.test.main()
