import os
import re

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from core.data import augment
from core.data import batches
from core.data import datasets
from core.runtime import distribution
from core.data import folders
from core.data import images as images_lib
from core.data import pipeline
from core.runtime.errors import DataError
from tests import helpers
from train.loop import feed


def ids(dataset, n):
  return [b.numpy() for b in dataset.take(n)]


def stream(n, batch, seed, epoch=0, step=0):
  return pipeline.train_indices(n, batch, seed, pipeline.Cursor(epoch, step))


class PipelineTest(tf.test.TestCase, parameterized.TestCase):

  def test_each_epoch_is_a_permutation(self):
    batches = ids(stream(100, 10, seed=3), 20)
    for epoch in (batches[:10], batches[10:]):
      self.assertCountEqual(np.concatenate(epoch), range(100))
    self.assertNotAllEqual(np.concatenate(batches[:10]),
                           np.concatenate(batches[10:]))

  def test_remainder_dropped(self):
    self.assertEqual(pipeline.steps_per_epoch(105, 10), 10)
    epoch = np.concatenate(ids(stream(105, 10, seed=1), 10))
    self.assertLen(set(epoch), 100)

  def test_seed_changes_order(self):
    self.assertNotAllEqual(ids(stream(50, 10, 1), 1)[0],
                           ids(stream(50, 10, 2), 1)[0])

  @parameterized.parameters(0, 1, 7, 9, 10, 11, 19, 23)
  def test_resume_at_any_step_continues_the_same_stream(self, k):
    # verify_multiple_breaks in the style of tf.data's checkpoint tests:
    # cursor (epoch, step) rebuilt from a break at global step k.
    full = ids(stream(100, 10, seed=5), 30)
    resumed = ids(stream(100, 10, 5, *divmod(k, 10)), 30 - k)
    self.assertAllEqual(np.stack(full[k:]), np.stack(resumed))

  def test_every_example_once_per_epoch_across_breaks(self):
    seen, step = [], 0
    for stop in (3, 10, 14, 20):  # breaks mid-epoch and on the boundary
      seen += ids(stream(100, 10, 9, *divmod(step, 10)), stop - step)
      step = stop
    for epoch in range(2):
      self.assertCountEqual(np.concatenate(seen[epoch * 10:epoch * 10 + 10]),
                            range(100))

  def test_eval_covers_every_example_once(self):
    batches = ids(pipeline.eval_indices(25, 10), 5)
    self.assertLen(batches, pipeline.eval_steps(25, 10))
    flat = np.concatenate(batches)
    self.assertAllEqual(flat[:25], range(25))
    self.assertAllEqual(flat[25:], [-1] * 5)

  def test_replica_batches_gather_images_and_weights(self):
    split = datasets.synthetic(30)
    ds = pipeline.memory_batches(pipeline.eval_indices(30, 8), split,
                                 distribution.BatchSplit(8, 1))
    last = list(ds)[-1]
    self.assertAllEqual(last["index"], [24, 25, 26, 27, 28, 29, -1, -1])
    self.assertAllEqual(last["weight"], [1] * 6 + [0] * 2)
    self.assertAllEqual(last["images"][0], split.images[24])
    self.assertEqual(last["images"].dtype, tf.uint8)

  def test_distributed_replicas_get_contiguous_rows(self):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    split = datasets.synthetic(64)
    dist = batches.distributed(strategy, split,
                               distribution.split_batch(8, strategy),
                               pipeline.Reading(seed=2), training=True,
                               steps_per_epoch=8)
    expected = ids(stream(64, 8, seed=2), 3)
    for batch, want in zip(dist, expected):
      parts = strategy.experimental_local_results(batch["index"])
      self.assertAllEqual(parts[0], want[:4])
      self.assertAllEqual(parts[1], want[4:])
      if np.array_equal(want, expected[-1]):
        break

  def test_input_context_must_count_the_split_replicas(self):
    ctx = tf.distribute.InputContext(num_replicas_in_sync=4)
    with self.assertRaisesRegex(ValueError, r"`input_context` must count the "
                                r"batch split's replicas \(2\); received 4"):
      pipeline.memory_batches(stream(64, 8, 0), datasets.synthetic(64),
                              distribution.BatchSplit(8, 2),
                              input_context=ctx)

  def test_each_input_pipeline_takes_its_own_replicas_rows(self):
    # Two hosts, one replica each: host 1 reads rows 4..7 of every batch.
    split = datasets.synthetic(64)
    ctx = tf.distribute.InputContext(num_input_pipelines=2,
                                     input_pipeline_id=1,
                                     num_replicas_in_sync=2)
    ds = pipeline.memory_batches(stream(64, 8, seed=2), split,
                                 distribution.BatchSplit(8, 2),
                                 input_context=ctx)
    first = next(iter(ds))
    self.assertAllEqual(first["index"], ids(stream(64, 8, seed=2), 1)[0][4:])


class StreamedPipelineTest(tf.test.TestCase, parameterized.TestCase):
  """Image folders through the pipeline: decoded, resized, augmented by key,
  bad files named or skipped."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = os.path.join(tf.compat.v1.test.get_temp_dir(), "folder")
    helpers.write_image_folder(cls.root, per_class=8)
    cls.data = datasets.load("folder", data_dir=cls.root, validation_size=0)

  def rows(self, split, indices, reading, training=False, replicas=1,
           step=0, read=pipeline.file_batches):
    batch = distribution.BatchSplit(len(indices), replicas)
    batches = pipeline.numbered(tf.data.Dataset.from_tensors(
        tf.constant(indices, tf.int64)), step)
    return list(read(batches, split, batch, reading=reading,
                     training=training))

  def test_files_are_decoded_and_resized(self):
    reading = pipeline.Reading(image_size=24, channels=3)
    (out,) = self.rows(self.data.train, [0, 9, 23], reading)
    self.assertEqual(out["images"].shape, [3, 24, 24, 3])
    self.assertAllEqual(out["labels"], self.data.train.labels[[0, 9, 23]])
    self.assertAllEqual(out["weight"], [1, 1, 1])
    want = images_lib.resize(images_lib.decode(tf.io.read_file(
        self.data.train.paths[9]), 3), 24)
    self.assertAllEqual(out["images"][1], want)

  def test_augmentation_does_not_depend_on_the_replica_count(self):
    reading = pipeline.Reading(image_size=24, channels=3,
                               augment=("crop", "flip", "erase"), seed=5)
    (one,) = self.rows(self.data.train, [3, 4, 5, 6], reading, True, 1, 7)
    halves = self.rows(self.data.train, [3, 4, 5, 6], reading, True, 2, 7)
    self.assertAllEqual(one["images"],
                        tf.concat([h["images"] for h in halves], 0))
    (later,) = self.rows(self.data.train, [3, 4, 5, 6], reading, True, 1, 8)
    self.assertNotAllEqual(one["images"], later["images"])

  @parameterized.parameters("randaugment", "trivialaugment", "colour")
  def test_policies_batch_files_by_key_whatever_the_replicas(self, policy):
    reading = pipeline.Reading(image_size=24, channels=3,
                               augment=("crop", policy, "flip"), seed=5)
    (one,) = self.rows(self.data.train, [3, 4, 5, 6], reading, True, 1, 7)
    self.assertEqual(one["images"].shape, [4, 24, 24, 3])
    self.assertEqual(one["images"].dtype, tf.uint8)
    halves = self.rows(self.data.train, [3, 4, 5, 6], reading, True, 2, 7)
    self.assertAllEqual(one["images"],
                        tf.concat([h["images"] for h in halves], 0))
    plain = pipeline.Reading(image_size=24, channels=3,
                             augment=("crop", "flip"), seed=5)
    (without,) = self.rows(self.data.train, [3, 4, 5, 6], plain, True, 1, 7)
    self.assertNotAllEqual(one["images"], without["images"])

  def test_in_memory_rows_take_the_policies_reading_names(self):
    split = datasets.synthetic(16)
    ops = ("crop", "randaugment", "colour", "flip")
    reading = pipeline.Reading(augment=ops, seed=4, randaugment_ops=3,
                               randaugment_magnitude=20)
    (row,) = self.rows(split, [7, 2, 11], reading, True, 1, 9,
                       pipeline.memory_batches)
    for i, index in enumerate([7, 2, 11]):
      want = augment.augment(tf.constant(split.images[index]),
                             augment.example_seed(4, 9, index), ops,
                             randaugment_ops=3, randaugment_magnitude=20)
      self.assertAllEqual(row["images"][i], want)

  def test_in_memory_augmentation_is_keyed_too(self):
    split = datasets.synthetic(16)
    reading = pipeline.Reading(augment=("crop", "flip"), seed=1)
    memory = pipeline.memory_batches
    (a,) = self.rows(split, [1, 2, 3, 4], reading, True, 1, 3, memory)
    b = self.rows(split, [1, 2, 3, 4], reading, True, 2, 3, memory)[0]
    self.assertEqual(a["images"].shape, [4, 28, 28, 1])
    self.assertAllEqual(a["images"][:2], b["images"])
    (plain,) = self.rows(split, [1, 2, 3, 4], reading, False, read=memory)
    self.assertAllEqual(plain["images"], split.images[1:5])

  def test_in_memory_rows_draw_what_each_example_draws(self):
    # The whole row is augmented in one loop: each image exactly as
    # augment.augment draws it for (seed, step, index).
    split = datasets.synthetic(16)
    ops = ("crop", "flip", "erase")
    for padding in (0, 2):
      reading = pipeline.Reading(augment=ops, seed=4, crop_padding=padding)
      (row,) = self.rows(split, [7, 2, 11], reading, True, 1, 9,
                         pipeline.memory_batches)
      for i, index in enumerate([7, 2, 11]):
        want = augment.augment(tf.constant(split.images[index]),
                               augment.example_seed(4, 9, index), ops,
                               padding=padding)
        self.assertAllEqual(row["images"][i], want)

  def test_resumed_stream_reads_the_same_augmented_batches(self):
    reading = pipeline.Reading(image_size=16, channels=3, augment=("crop",
                                                                   "flip"))
    batch = distribution.BatchSplit(6, 1)
    n = self.data.train.num_examples

    def stream(step):
      cursor = pipeline.Cursor(*divmod(step, n // 6))
      return pipeline.file_batches(
          pipeline.numbered(pipeline.train_indices(n, 6, 0, cursor), step),
          self.data.train, batch, reading=reading, training=True)

    full = [b["images"] for b in stream(0).take(7)]
    resumed = [b["images"] for b in stream(5).take(2)]
    self.assertAllEqual(resumed[0], full[5])
    self.assertAllEqual(resumed[1], full[6])

  def bad_split(self):
    bad = os.path.join(self.get_temp_dir(), "broken.jpg")
    with open(self.data.train.paths[1], "rb") as f:
      open(bad, "wb").write(f.read()[:40])  # truncated mid-header
    paths = self.data.train.paths.copy()
    paths[1] = bad
    return folders.FileSplit(paths, self.data.train.labels), bad

  def test_bad_file_is_named(self):
    split, bad = self.bad_split()
    reading = pipeline.Reading(image_size=16, channels=3)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                f"{bad}: {pipeline.BAD_IMAGE}"):
      self.rows(split, [0, 1, 2], reading)

  def test_an_image_above_max_image_pixels_is_named_or_skipped(self):
    # The fixture's images are 24x20 or so; a bound below that flags all.
    reading = pipeline.Reading(image_size=16, channels=3,
                               max_image_pixels=100)
    with self.assertRaisesRegex(
        tf.errors.InvalidArgumentError,
        f"{self.data.train.paths[0]}: declares \\d+x\\d+ pixels, more than "
        "--max_image_pixels=100"):
      self.rows(self.data.train, [0, 1], reading)
    skipping = pipeline.Reading(image_size=16, channels=3,
                                max_image_pixels=100, skip_bad_images=True)
    (out,) = self.rows(self.data.train, [0, 1], skipping)
    self.assertAllEqual(out["weight"], [0, 0])
    self.assertAllEqual(out["bad"], [1, 1])

  def test_file_names_that_are_not_utf8_are_read_and_named(self):
    folder = os.fsencode(self.get_temp_dir())
    good = os.path.join(folder, b"caf\xe9.jpg")
    bad = os.path.join(folder, b"bro\xffken.jpg")
    with open(self.data.train.paths[1], "rb") as f:
      data = f.read()
    open(good, "wb").write(data)
    open(bad, "wb").write(data[:40])
    paths = self.data.train.paths.copy()
    paths[0], paths[2] = os.fsdecode(good), os.fsdecode(bad)
    split = folders.FileSplit(paths, self.data.train.labels)
    reading = pipeline.Reading(image_size=16, channels=3)
    (out,) = self.rows(split, [0, 1], reading)
    self.assertAllEqual(out["images"][0], out["images"][1])  # same bytes
    with self.assertRaisesRegex(
        DataError, re.escape(f"{self.get_temp_dir()}/bro\\xffken.jpg: "
                             f"{pipeline.BAD_IMAGE}; fix or remove it")):
      with feed.naming_bad_images():
        self.rows(split, [2], reading)

  def test_bad_file_skipped_and_counted(self):
    split, _ = self.bad_split()
    reading = pipeline.Reading(image_size=16, channels=3,
                               skip_bad_images=True)
    (out,) = self.rows(split, [0, 1, 2], reading)
    self.assertAllEqual(out["weight"], [1, 0, 1])
    self.assertAllEqual(out["bad"], [0, 1, 0])
