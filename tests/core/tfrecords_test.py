"""TFRecord shards: description from dataset.json or one scan, bad shards
named, and the converter's output read back."""

import json
import os

import numpy as np
import tensorflow as tf

from core import datasets
from core import distribution
from core import pipeline
from core import tfrecords
from core.errors import DataError
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


class RecordPipelineTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = os.path.join(tf.compat.v1.test.get_temp_dir(), "shards")
    write_shards(cls.root, [i % 3 for i in range(23)], shards=3)
    cls.data = datasets.load("tfrecord", data_dir=cls.root)
    cls.reading = pipeline.Reading(image_size=8, channels=3,
                                   augment=("crop", "flip"), seed=3)

  def stream(self, start_step, batch=distribution.BatchSplit(4, 1)):
    ctx = tf.distribute.InputContext()
    records = pipeline.record_train_batches(self.data.train, batch, 3,
                                            start_step, 23 // 4, ctx)
    return pipeline.record_replica_batches(records, batch, self.reading, 3,
                                           0, training=True)

  def test_resume_reads_exactly_the_uninterrupted_batches(self):
    full = list(self.stream(0).take(9))
    for start in (3, 5, 7):  # inside epoch 0, at epoch 1's start, inside 1
      resumed = list(self.stream(start).take(2))
      for a, b in zip(resumed, full[start:start + 2]):
        self.assertAllEqual(a["images"], b["images"])
        self.assertAllEqual(a["labels"], b["labels"])

  def test_each_epoch_reads_distinct_records(self):
    epoch = list(self.stream(0).take(5))
    positions = np.concatenate([b["index"] for b in epoch])
    self.assertLen(set(positions.tolist()), 20)

  def test_two_replicas_take_the_rows_one_takes(self):
    one = list(self.stream(0).take(2))
    two = list(self.stream(0, distribution.BatchSplit(4, 2)).take(4))
    self.assertAllEqual(one[0]["images"], tf.concat(
        [two[0]["images"], two[1]["images"]], 0))

  def test_evaluation_counts_every_record_once(self):
    batch = distribution.BatchSplit(8, 1)
    records = pipeline.record_eval_batches(self.data.train, batch,
                                           tf.distribute.InputContext())
    rows = list(pipeline.record_replica_batches(
        records, batch, self.reading, 3, 0, training=False))
    weights = np.concatenate([r["weight"] for r in rows])
    self.assertEqual(weights.sum(), 23)
    self.assertLen(weights, 24)


class RecordLabelTest(tf.test.TestCase):

  def test_label_beyond_the_classes_is_named(self):
    root = os.path.join(self.get_temp_dir(), "labels")
    write_shards(root, [0, 1, 5, 1], shards=1)
    tfrecords.write_metadata(root, {"train": 4}, ["a", "b"])
    data = datasets.load("tfrecord", data_dir=root)
    batch = distribution.BatchSplit(4, 1)
    reading = pipeline.Reading(image_size=8, channels=3)
    records = pipeline.record_eval_batches(data.train, batch,
                                           tf.distribute.InputContext())
    rows = pipeline.record_replica_batches(records, batch, reading, 2, 0,
                                           training=False)
    with self.assertRaisesRegex(
        tf.errors.InvalidArgumentError,
        r"train-00000-of-00001 record 2 \(label outside \[0, 2\) after "
        r"--label_offset=0\)"):
      list(rows)
    skipping = pipeline.Reading(image_size=8, channels=3,
                                skip_bad_images=True)
    (out,) = list(pipeline.record_replica_batches(
        pipeline.record_eval_batches(data.train, batch,
                                     tf.distribute.InputContext()),
        batch, skipping, 2, 0, training=False))
    self.assertAllEqual(out["weight"], [1, 1, 0, 1])
