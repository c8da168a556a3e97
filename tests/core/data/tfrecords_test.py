"""TFRecord shards: description from dataset.json or one scan, bad shards
named, and the converter's output read back."""

import json
import os

import numpy as np
import tensorflow as tf

from core.data import datasets
from core.data import tfrecords
from core.data import types
from core.runtime.errors import DataError
from tests import helpers


def write_shards(root, labels, *, split="train", shards=2, text=True,
                 encoded=None):
  os.makedirs(root, exist_ok=True)
  writers = [tf.io.TFRecordWriter(os.path.join(
      root, f"{split}-{i:05d}-of-{shards:05d}")) for i in range(shards)]
  for i, label in enumerate(labels):
    data = encoded if encoded is not None else tf.io.encode_png(np.full(
        [8 + i % 3, 9, 3], 10 * (label + 1), np.uint8)).numpy()
    writers[i % shards].write(tfrecords.example(
        data, label, f"c{label}" if text else None))
  for w in writers:
    w.close()


class TFRecordsTest(tf.test.TestCase):

  def root(self):
    return os.path.join(self.get_temp_dir(), self.id().split(".")[-1])

  def test_shards_are_counted_and_not_cut(self):
    # Streamed, not indexed: a split, not one that can be cut (RunConfig
    # refuses --train_examples for shards).
    split = tfrecords.RecordSplit(("d/train-0", "d/train-1"), 10)
    self.assertEqual(split.num_shards, 2)
    self.assertIsInstance(split, types.AnySplit)
    self.assertNotIsInstance(split, types.IndexedSplit)

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

  def test_a_label_past_the_class_limit_is_named(self):
    # range(label) class names would fill memory (review #26).
    for label in (10 ** 12, tfrecords.MAX_CLASSES):
      root = os.path.join(self.root(), str(label))
      write_shards(root, [0, label, 1], shards=1, encoded=b"any")
      with self.assertRaisesRegex(
          DataError, rf"^{root}/train-00000-of-00001: record 1 has label "
          rf"{label}; labels must be below 1000000 \(at most 1000000 "
          r"classes\)\.$"):
        datasets.load("tfrecord", data_dir=root)

  def test_metadata_names_that_tensorflow_cannot_take_are_refused(self):
    # JSON can escape a lone surrogate, which no tf.constant takes.
    root = self.root()
    write_shards(root, [0, 1])
    open(os.path.join(root, "dataset.json"), "w").write(
        '{"counts": {"train": 2}, "class_names": ["caf\\udce9", "b"]}')
    with self.assertRaisesRegex(DataError, r"dataset.json: unreadable \("
                                ".*surrogates not allowed.*fix or delete it"):
      datasets.load("tfrecord", data_dir=root)

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
