"""TFRecord streams: exact resume, rows per replica, evaluation once, and
bad records named or skipped."""

import os

import numpy as np
import tensorflow as tf

from core.data import datasets
from core.runtime import distribution
from core.data import pipeline
from core.data import shard_stream
from core.data import tfrecords
from core.runtime.errors import DataError
from tests.core.data.tfrecords_test import write_shards


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
    records = shard_stream.train_batches(self.data.train, batch, 3,
                                            start_step, 23 // 4, ctx)
    return shard_stream.replica_batches(records, batch, self.reading, 3,
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
    records = shard_stream.eval_batches(self.data.train, batch,
                                           tf.distribute.InputContext())
    rows = list(shard_stream.replica_batches(
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
    records = shard_stream.eval_batches(data.train, batch,
                                           tf.distribute.InputContext())
    rows = shard_stream.replica_batches(records, batch, reading, 2, 0,
                                           training=False)
    with self.assertRaisesRegex(
        tf.errors.InvalidArgumentError,
        r"train-00000-of-00001 record 2: label outside \[0, 2\) after "
        r"--label_offset=0"):
      list(rows)
    skipping = pipeline.Reading(image_size=8, channels=3,
                                skip_bad_images=True)
    (out,) = list(shard_stream.replica_batches(
        shard_stream.eval_batches(data.train, batch,
                                     tf.distribute.InputContext()),
        batch, skipping, 2, 0, training=False))
    self.assertAllEqual(out["weight"], [1, 1, 0, 1])


class DamagedShardTest(tf.test.TestCase):
  """A CRC mismatch, a shard cut short and a record that is not an Example:
  named by shard and record, or skipped and counted; the scan (no
  dataset.json) says the same before training starts."""

  def setUp(self):
    super().setUp()
    self.root = os.path.join(self.get_temp_dir(), "damaged")
    write_shards(self.root, [0, 1, 0, 1], shards=1)
    self.shard = tfrecords.shards(self.root, "train")[0]
    with open(self.shard, "rb") as f:
      self.bytes = f.read()
    self.starts = [0]
    for _ in range(4):  # 8 bytes length, 4 its CRC, data, 4 the data's CRC
      length = int.from_bytes(self.bytes[self.starts[-1]:][:8], "little")
      self.starts.append(self.starts[-1] + 16 + length)

  def rewrite(self, data: bytes):
    with open(self.shard, "wb") as f:
      f.write(data)

  def rows(self, skip: bool, metadata: bool = True):
    if metadata:
      tfrecords.write_metadata(self.root, {"train": 4}, ["a", "b"])
    data = datasets.load("tfrecord", data_dir=self.root, skip_bad=skip)
    batch = distribution.BatchSplit(4, 1)
    reading = pipeline.Reading(image_size=8, channels=3,
                               skip_bad_images=skip)
    return list(shard_stream.replica_batches(
        shard_stream.eval_batches(data.train, batch,
                                  tf.distribute.InputContext()),
        batch, reading, 2, 0, training=False))

  def corrupt(self, record: int):
    """Flips a byte inside `record`'s data: its CRC no longer matches."""
    data = bytearray(self.bytes)
    data[self.starts[record] + 20] ^= 0xFF
    self.rewrite(bytes(data))

  def assert_named_or_skipped(self, named: str, weight, bad):
    """Without --skip_bad_images the stream stops naming `named`; with it,
    the eval batch has these weights and bad counts."""
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "train-00000-of-00001 " + named):
      self.rows(skip=False)
    (out,) = self.rows(skip=True)
    self.assertAllEqual(out["weight"], weight)
    self.assertAllEqual(out["bad"], bad)

  def test_a_crc_mismatch_is_named_or_skipped(self):
    self.corrupt(2)
    # Records 0, 1, then the damage in place of the rest (one bad), padding.
    self.assert_named_or_skipped("record 2: is damaged", [1, 1, 0, 0],
                                 [0, 0, 1, 0])

  def test_a_shard_cut_short_is_named_or_skipped(self):
    self.rewrite(self.bytes[:self.starts[3] + 10])
    self.assert_named_or_skipped("record 3: is damaged", [1, 1, 1, 0],
                                 [0, 0, 0, 1])

  def test_a_record_that_is_not_an_example_is_named_or_skipped(self):
    records = list(tf.data.TFRecordDataset(self.shard).as_numpy_iterator())
    records[1] = b"\xff\xff\xff not a protocol buffer"
    with tf.io.TFRecordWriter(self.shard) as writer:
      for record in records:
        writer.write(record)
    self.assert_named_or_skipped(
        "record 1: is not a tf.train.Example holding an image", [1, 0, 1, 1],
        [0, 1, 0, 0])

  def test_the_scan_names_the_record_or_counts_it(self):
    self.corrupt(2)
    with self.assertRaisesRegex(
        DataError, r"train-00000-of-00001: record 2 is damaged .*"
        "--skip_bad_images"):
      datasets.load("tfrecord", data_dir=self.root)
    data = datasets.load("tfrecord", data_dir=self.root, skip_bad=True)
    self.assertEqual(data.train.num_examples, 3)  # 2 records, 1 skipped
    self.assertEqual(data.info.class_names, ("c0", "c1"))
