"""TensorFlow Datasets sets by name: small sets built here by TFDS builders
(no download), described from their prepared files, streamed with their
own feature names, dealt out to workers a file each, and every refusal in
one line."""

import os
import sys
from unittest import mock

import numpy as np
import tensorflow as tf
import tensorflow_datasets

from core.data import batches
from core.data import datasets
from core.data import pipeline
from core.data import tfds as tfds_lib
from core.runtime import distribution
from core.runtime.errors import DataError, InputError

SHAPES = ("circle", "square", "triangle")
SIDE = 12
# The splits of the tiny set and their sizes.
SIZES = {"train": 24, "validation": 6, "test": 9}


def shape_image(label: int, number: int, channels: int = 3) -> np.ndarray:
  """A learnable image: the class's grey level plus noise fixed by
  (label, number)."""
  rng = np.random.RandomState(1000 * label + number)
  base = np.full([SIDE, SIDE, channels], 40 + 80 * label, np.float64)
  return np.clip(base + rng.randn(SIDE, SIDE, channels) * 20, 0,
                 255).astype(np.uint8)


def _examples(split: str, channels: int = 3):
  """(key, {image, label}) of `split`: labels in turn, images numbered
  across splits."""
  offset = {"train": 0, "validation": 100, "test": 200}[split]
  for i in range(SIZES[split]):
    yield i, {"image": shape_image(i % 3, offset + i, channels),
              "label": i % 3}


class TinyTfdsShapes(tensorflow_datasets.core.GeneratorBasedBuilder):
  """Three classes of colour images, with train, validation and test."""
  VERSION = tensorflow_datasets.core.Version("1.0.0")
  CHANNELS = 3
  SPLITS = tuple(SIZES)
  LABEL = "label"  # the label's feature
  SUPERVISED = ("image", "label")

  def label_feature(self):
    return tensorflow_datasets.features.ClassLabel(names=SHAPES)

  def label_value(self, label: int):
    return label

  def _info(self):
    return tensorflow_datasets.core.DatasetInfo(
        builder=self, supervised_keys=self.SUPERVISED,
        features=tensorflow_datasets.features.FeaturesDict({
            "image": tensorflow_datasets.features.Image(
                shape=(SIDE, SIDE, self.CHANNELS)),
            self.LABEL: self.label_feature()}))

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing is downloaded
    return {split: self._generate_examples(split) for split in self.SPLITS}

  def _generate_examples(self, split):
    for key, example in _examples(split, self.CHANNELS):
      yield key, {"image": example["image"],
                  self.LABEL: self.label_value(example["label"])}


class TinyTfdsGrey(TinyTfdsShapes):
  """Grey images, a train split only, and no supervised keys."""
  CHANNELS = 1
  SPLITS = ("train",)
  SUPERVISED = None


class TinyTfdsCaptions(TinyTfdsShapes):
  """Images with a caption where a class label would be."""
  SPLITS = ("train",)
  LABEL = "caption"
  SUPERVISED = ("image", "caption")

  def label_feature(self):
    return tensorflow_datasets.features.Text()

  def label_value(self, label: int):
    return f"a {SHAPES[label]}"


class TinyTfdsOneClass(TinyTfdsShapes):
  """A "classifier" of one class."""
  SPLITS = ("train",)

  def label_feature(self):
    return tensorflow_datasets.features.ClassLabel(names=("only",))

  def label_value(self, label: int):
    return 0


def prepare(builder_class, data_dir: str) -> str:
  """Writes `builder_class`'s set into `data_dir` as TFRecord files, each
  split in two, never downloading; returns the name to load."""
  builder = builder_class(data_dir=data_dir)
  builder.download_and_prepare(
      file_format="tfrecord", download_config=tensorflow_datasets.download.DownloadConfig(
          try_download_gcs=False, num_shards=2))
  return builder.name


class TfdsTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.dir = os.path.join(tf.compat.v1.test.get_temp_dir(), "tfds")
    cls.name = prepare(TinyTfdsShapes, cls.dir)
    cls.data = datasets.load(f"tfds:{cls.name}", data_dir=cls.dir)

  def test_facts_come_from_the_features(self):
    self.assertEqual(self.data.info.name, "tfds:tiny_tfds_shapes")
    self.assertEqual(self.data.info.class_names, SHAPES)
    # Read at --image_size, as shards are.
    self.assertEqual(self.data.info.image_shape, (None, None, 3))

  def test_each_split_is_its_prepared_files(self):
    for split, size in SIZES.items():
      records = getattr(self.data, split)
      self.assertEqual(records.num_examples, size)
      self.assertEqual(records.features, ("image", "label"))
      self.assertEqual(records.sizes, tuple(os.path.getsize(f)
                                            for f in records.files))
      self.assertTrue(all(os.path.basename(f).startswith(
          f"tiny_tfds_shapes-{split}.tfrecord-") for f in records.files))
    self.assertEqual(self.data.train.num_shards, 2)

  def test_evaluation_reads_every_image_and_label_as_stored(self):
    batch = distribution.BatchSplit(4, 1)
    rows = list(batches.replica_batches(
        self.data.test, batch, pipeline.Reading(image_size=SIDE, channels=3),
        training=False, num_classes=3))
    weight = np.concatenate([r["weight"] for r in rows])
    self.assertEqual(weight.tolist(), [1.0] * 9 + [0.0] * 3)
    labels = np.concatenate([r["labels"] for r in rows])[:9]
    images = np.concatenate([r["images"] for r in rows])[:9]
    stored = {(int(e["label"]), e["image"].tobytes())
              for _, e in _examples("test")}
    self.assertEqual({(int(l), i.tobytes()) for l, i in zip(labels, images)},
                     stored)

  def test_two_workers_read_one_file_each(self):
    # Each of two input pipelines feeds one replica from its own file: one
    # epoch of each is that file's 12 records, and the two are the set.
    batch = distribution.BatchSplit(2, 2)
    reading = pipeline.Reading(image_size=SIDE, channels=3, seed=5)
    seen = []
    for worker in range(2):
      ctx = tf.distribute.InputContext(2, worker, 2)
      epoch = batches.replica_batches(
          self.data.train, batch, reading, training=True, steps_per_epoch=12,
          num_classes=3, input_context=ctx).take(12)
      seen.append({(int(l), i.tobytes()) for b in epoch
                   for l, i in zip(b["labels"], b["images"].numpy())})
    self.assertLen(seen[0], 12)
    self.assertLen(seen[1], 12)
    self.assertEqual(seen[0] | seen[1], {(int(e["label"]), e["image"].tobytes())
                                         for _, e in _examples("train")})

  def test_without_validation_or_supervised_keys(self):
    name = prepare(TinyTfdsGrey, self.dir)
    data = datasets.load(f"tfds:{name}", data_dir=self.dir)
    self.assertEqual(data.info.image_shape, (None, None, 1))
    self.assertEqual((data.train.num_examples, data.validation.num_examples,
                      data.test.num_examples), (24, 0, 0))

  def test_a_set_not_prepared_is_refused_without_a_download(self):
    with self.assertRaisesRegex(
        DataError, r"^tfds:mnist: not prepared in .*/empty \(no "
        r".*/empty/mnist/[\d.]+\); prepare it there first \(`tfds build "
        r"mnist --data_dir=DIR`\); the engine never downloads a set\.$"):
      datasets.load("tfds:mnist", data_dir=os.path.join(self.dir, "empty"))
    self.assertFalse(os.path.exists(os.path.join(self.dir, "empty")))

  def test_an_unknown_set_in_one_line(self):
    with self.assertRaisesRegex(
        DataError, r"^tfds:no_such_set: no prepared set of that name in "
        r".*tfds \(Dataset no_such_set not found\.\); prepare it there "
        r"first [^\n]*$"):
      datasets.load("tfds:no_such_set", data_dir=self.dir)

  def test_a_version_not_prepared_in_one_line(self):
    # TFDS asserts on it (an AssertionError, not its ValueError).
    with self.assertRaisesRegex(
        DataError, rf"^tfds:{self.name}:9\.9\.9: no prepared set of that "
        r"name in [^\n]*; prepare it there first [^\n]*$"):
      datasets.load(f"tfds:{self.name}:9.9.9", data_dir=self.dir)

  def test_class_counts_out_of_bounds_in_one_line(self):
    name = prepare(TinyTfdsOneClass, self.dir)
    with self.assertRaisesRegex(
        DataError, r"^tfds:tiny_tfds_one_class: its label 'label' has 1 "
        r"class\(es\); the engine trains a classifier of 2 to 1,000,000\.$"):
      datasets.load(f"tfds:{name}", data_dir=self.dir)

  def test_a_set_stored_otherwise_or_of_other_images_in_one_line(self):
    info = mock.MagicMock()
    info.file_format.value = "array_record"
    with mock.patch.object(tfds_lib, "_builder", return_value=mock.MagicMock(
        info=info)), self.assertRaisesRegex(
            DataError, r"^tfds:x is stored as array_record files; the engine "
            r"reads TFRecord files: prepare it with `tfds build "
            r"--file_format=tfrecord`\.$"):
      tfds_lib.load("x", None)
    floats = mock.MagicMock(supervised_keys=("image", "label"))
    floats.features = {"image": tensorflow_datasets.features.Image(
        shape=(4, 4, 1), dtype=np.uint16),
                       "label": tensorflow_datasets.features.ClassLabel(
                           num_classes=2)}
    with self.assertRaisesRegex(DataError, r"^tfds:y: its images 'image' are "
                                r"uint16 of shape \(4, 4, 1\); the engine "
                                r"reads uint8 images of 1 or 3 channels\.$"):
      tfds_lib._features("y", floats)  # pylint: disable=protected-access

  def test_a_set_without_a_class_label_is_refused(self):
    name = prepare(TinyTfdsCaptions, self.dir)
    with self.assertRaisesRegex(
        DataError, r"tfds:tiny_tfds_captions: the engine reads an Image "
        r"feature and a ClassLabel .* its supervised keys are \('image', "
        r"'caption'\) and its features \{'image': 'Image', 'caption': "
        r"'Text'\}\.$"):
      datasets.load(f"tfds:{name}", data_dir=self.dir)

  def test_a_missing_file_is_named(self):
    name = prepare(TinyTfdsGrey, os.path.join(self.dir, "cut"))
    first = datasets.load(f"tfds:{name}", data_dir=os.path.join(
        self.dir, "cut")).train.files[0]
    os.remove(first)
    with self.assertRaisesRegex(
        DataError, r"tfds:tiny_tfds_grey/1.0.0: a file of its train split "
        r"cannot be read \(.*\); prepare the set again\."):
      datasets.load(f"tfds:{name}", data_dir=os.path.join(self.dir, "cut"))

  def test_without_tensorflow_datasets_the_extra_is_named(self):
    with mock.patch.dict(sys.modules, {"tensorflow_datasets": None}):
      with self.assertRaisesRegex(
          InputError, r"^--dataset=tfds:tiny_tfds_shapes needs TensorFlow "
          r"Datasets: install the engine's tfds extra \(pip install -e "
          r"'\.\[tfds\]' in its checkout\) or pip install "
          r"tensorflow-datasets\.$"):
        datasets.load(f"tfds:{self.name}", data_dir=self.dir)


if __name__ == "__main__":
  tf.test.main()
