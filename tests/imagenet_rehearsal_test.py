"""An ImageNet-shaped rehearsal: 1,000 classes in ImageNet's layout
(tools/imagenet_like.py: TF-slim's shard names, 1-based labels, class text,
JPEGs of varied sizes, four of them 3,000 to 4,000 pixels wide), trained at
224x224 on 2 replicas through the real commands: train.main validates,
tests where there is a test split, exports; train.evaluate and
train.predict work on the result and name the classes.

The suite's run takes the two-block network (tests/helpers.SMALL_NETWORK:
every kind of layer, all three 1,000-way heads) for two steps on the shards;
the folder tree is loaded and read through the pipeline in process. `make
rehearsal` runs the paper's network, and the dated note records its peak
memory at 10 and at 1,000 classes.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

from tests import helpers
from tools import imagenet_like

CLASSES = 1000


def command(module, *args):
  return subprocess.run([sys.executable, "-m", module, *args],
                        cwd=helpers.ROOT,
                        env=helpers._env(),  # pylint: disable=protected-access
                        capture_output=True, text=True, timeout=900)


def run_flags(model_dir, *extra):
  return [f"--model_dir={model_dir}", "--image_size=224",
          "--strategy=mirrored", "--num_cpu_devices=2",
          "--global_batch_size=16", "--train_steps=2", "--steps_per_loop=2",
          "--augment=crop,flip", helpers.SMALL_NETWORK, *extra]


class ImageNetRehearsalTest(unittest.TestCase):

  @classmethod
  def setUpClass(cls):
    cls.root = tempfile.mkdtemp()
    counts = imagenet_like.write(
        cls.root, classes=CLASSES, train_per_class=1, validation_images=32,
        test_images=32, large_every=250)
    assert counts == {"train": 1000, "validation": 32, "test": 32}, counts
    # The folder tree without a test split, as ImageNet ships it.
    shutil.rmtree(os.path.join(cls.root, "folder", "test"))

  def test_the_layout_is_tf_slims(self):
    shards = sorted(os.listdir(os.path.join(self.root, "shards")))
    self.assertEqual(shards[:2], ["test-00000-of-00002",
                                  "test-00001-of-00002"])
    self.assertIn("train-00007-of-00008", shards)
    self.assertIn("validation-00001-of-00002", shards)
    folder = os.path.join(self.root, "folder", "train")
    self.assertEqual(len(os.listdir(folder)), CLASSES)
    self.assertEqual(os.listdir(os.path.join(folder, "n00000001")),
                     ["n00000001_0.JPEG"])

  def test_shards_train_validate_test_export_evaluate_predict(self):
    model_dir = os.path.join(self.root, "shards-run")
    done = helpers.cli(run_flags(
        model_dir, "--dataset=tfrecord", "--label_offset=1",
        f"--data_dir={os.path.join(self.root, 'shards')}"))
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    self.assertRegex(done.stdout, r"eval at step 2: loss \d+\.\d+ accuracy "
                     r"\d\.\d{4} \(32 images\)")
    final = done.stdout.strip().splitlines()[-1]
    self.assertRegex(final, r"^test accuracy \d\.\d{4} \(loss \d+\.\d{4}, "
                     r"32 images, step 2\)")
    with open(os.path.join(model_dir, "manifest.json")) as f:
      manifest = json.load(f)
    self.assertEqual(manifest["data"]["num_classes"], CLASSES)
    export = os.path.join(model_dir, "export", "2")
    with open(os.path.join(export, "assets.extra", "metadata.json")) as f:
      names = json.load(f)["class_names"]
    self.assertEqual(len(names), CLASSES)
    self.assertEqual(names[:2], ["synthetic class 1", "synthetic class 2"])

    evaluated = command("train.evaluate", f"--model_dir={model_dir}")
    self.assertEqual(evaluated.returncode, 0, evaluated.stderr[-3000:])
    accuracy, loss = re.search(r"accuracy (\S+) \(loss (\S+),",
                               final).groups()
    self.assertIn(f"checkpoint 2 of {model_dir} on test (32 images): loss "
                  f"{loss} accuracy {accuracy}", evaluated.stdout)
    self.assertIn(f"per-class accuracy, the 20 worst of {CLASSES} classes",
                  evaluated.stdout)

    # A photo of 3,000+ pixels a side and a small one, through serving_bytes.
    folder = os.path.join(self.root, "folder", "train")
    large = max((os.path.join(folder, d, f) for d in os.listdir(folder)
                 for f in os.listdir(os.path.join(folder, d))),
                key=os.path.getsize)
    small = os.path.join(folder, "n00000001", "n00000001_0.JPEG")
    predicted = command("train.predict", f"--saved_model={export}",
                        "--output=json", "--top_k=3", large, small)
    self.assertEqual(predicted.returncode, 0, predicted.stderr[-3000:])
    rows = [json.loads(line) for line in predicted.stdout.splitlines()]
    self.assertEqual([r["file"] for r in rows], [large, small])
    for row in rows:
      self.assertEqual(len(row["classes"]), 3)
      for entry in row["classes"]:
        self.assertEqual(entry["name"], names[entry["index"]])

  def test_a_folder_tree_without_a_test_split(self):
    # The same images as a folder tree, as ImageNet ships it (no test
    # split): its facts, and a batch through the 224x224 training pipeline
    # on 2 replicas (the command's path is the shards run's above, and
    # tests/e2e_folder_test.py runs folders through the command).
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from core.data import batches, datasets, pipeline  # pylint: disable=g-import-not-at-top
    from core.runtime import distribution  # pylint: disable=g-import-not-at-top
    data = datasets.load("folder",
                         data_dir=os.path.join(self.root, "folder"))
    self.assertEqual(data.info.num_classes, CLASSES)
    self.assertEqual(data.info.class_names[0], "n00000001")  # synsets
    self.assertEqual((data.train.num_examples, data.validation.num_examples,
                      data.test.num_examples), (1000, 32, 0))
    self.assertEqual(data.info.image_shape, (None, None, 3))
    batch = distribution.BatchSplit(16, 2)
    reading = pipeline.Reading(image_size=224, channels=3,
                               augment=("crop", "flip"))
    first, second = list(batches.replica_batches(
        data.train, batch, reading, training=True, steps_per_epoch=62,
        num_classes=CLASSES).take(2))
    for rows in (first, second):
      self.assertEqual(rows["images"].shape, [8, 224, 224, 3])
      self.assertEqual(rows["images"].dtype, tf.uint8)
      self.assertEqual(float(tf.reduce_sum(rows["weight"])), 8.0)


if __name__ == "__main__":
  unittest.main()
