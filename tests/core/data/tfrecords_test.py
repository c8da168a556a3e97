"""TFRecord shards: description from dataset.json or one scan, bad shards
named, and the converter's output read back."""

import json
import os

import numpy as np
import tensorflow as tf

from core.data import datasets
from core.data import tfrecords
from core.runtime.errors import DataError
from tests import helpers


def write_shards(root, labels, *, split="train", shards=2, text=True,
                 encoded=None):
  os.makedirs(root, exist_ok=True)
  writers = [tf.io.TFRecordWriter(os.path.join(
      root, f"{split}-{i:05d}-of-{shards:05d}")) for i in range(shards)]
  for i, label in enumerate(labels):
    image = np.full([8 + i % 3, 9, 3], 10 * (label + 1), np.uint8)
    data = encoded if encoded is not None else tf.io.encode_png(
        image).numpy()
    writers[i % shards].write(tfrecords.example(
        data, label, f"c{label}" if text else None))
  for w in writers:
    w.close()


class TFRecordsTest(tf.test.TestCase):

  def root(self):
    return os.path.join(self.get_temp_dir(), self.id().split(".")[-1])

  def test_scan_counts_and_names_classes(self):
    root = self.root()
    write_shards(root, [1, 2, 3, 1, 2, 3, 3])
    write_shards(root, [1, 2], split="test", shards=1)
    data = datasets.load("tfrecord", data_dir=root, label_offset=1)
    self.assertEqual(data.info.class_names, ("c1", "c2", "c3"))
    self.assertEqual(data.info.image_shape, (None, None, 3))
    self.assertEqual((data.train.num_examples, data.validation.num_examples,
                      data.test.num_examples), (7, 0, 2))
    self.assertLen(data.train.files, 2)

  def test_metadata_spares_the_scan(self):
    root = self.root()
    write_shards(root, [0, 1, 0])
    tfrecords.write_metadata(root, {"train": 3}, ["zero", "one"])
    data = datasets.load("tfrecord", data_dir=root)
    self.assertEqual(data.info.class_names, ("zero", "one"))

  def test_label_below_the_offset_is_named(self):
    root = self.root()
    write_shards(root, [1, 0, 2], shards=1)
    with self.assertRaisesRegex(DataError, r"train-00000-of-00001: record 1 "
                                r"has label 0, below --label_offset 1"):
      datasets.load("tfrecord", data_dir=root, label_offset=1)

  def test_record_without_an_image_is_named(self):
    root = self.root()
    write_shards(root, [0, 1], shards=1, encoded=b"")
    with self.assertRaisesRegex(DataError, "record 0 has no image/encoded"):
      datasets.load("tfrecord", data_dir=root)

  def test_not_a_tfrecord_file(self):
    root = self.root()
    os.makedirs(root)
    open(os.path.join(root, "train-00000-of-00001"), "wb").write(
        b"\x00" * 50)
    with self.assertRaisesRegex(DataError, "train-00000-of-00001: not a "
                                "readable TFRecord file"):
      datasets.load("tfrecord", data_dir=root)

  def test_no_train_shards(self):
    os.makedirs(self.root())
    with self.assertRaisesRegex(DataError, "no train-\\* shards"):
      datasets.load("tfrecord", data_dir=self.root())

  def test_converter_writes_what_the_loader_reads(self):
    images = os.path.join(self.get_temp_dir(), "photos")
    helpers.write_image_folder(images, per_class=4, splits=("train",
                                                            "test"))
    out = os.path.join(self.get_temp_dir(), "converted")
    done = helpers.python("-m", "tools.convert", f"--source=folder:{images}",
                          "--to=tfrecord", f"--output={out}", "--shards=3")
    self.assertEqual(done.returncode, 0, done.stderr)
    meta = json.load(open(os.path.join(out, "dataset.json")))
    self.assertEqual(meta, {"counts": {"train": 12, "test": 12},
                            "class_names": ["cat", "dog", "eel"]})
    again = helpers.python("-m", "tools.convert", f"--source=folder:{images}",
                           f"--output={out}")
    self.assertEqual(again.returncode, 2)
    self.assertRegex(again.stderr.strip(), r"^error: `output` .* exists")
