import hashlib
import os

import numpy as np
import tensorflow as tf

from core.data import datasets
from core.data import idx
from core.runtime.errors import DataError


def write_set(folder, n_train=12, n_test=5, compress=True, labels_off=0,
              shape=(28, 28), test_shape=None):
  os.makedirs(folder, exist_ok=True)
  rng = np.random.RandomState(0)
  for split, n in (("train", n_train), ("t10k", n_test)):
    side = shape if split == "train" else (test_shape or shape)
    idx.write(os.path.join(folder, f"{split}-images-idx3-ubyte" +
                           (".gz" if compress else "")),
              rng.randint(0, 256, [n, *side]).astype(np.uint8),
              compress=compress)
    idx.write(os.path.join(folder, f"{split}-labels-idx1-ubyte" +
                           (".gz" if compress else "")),
              rng.randint(0, 10, [n + labels_off]).astype(np.uint8),
              compress=compress)


class DatasetsTest(tf.test.TestCase):

  def test_reads_a_folder_and_holds_out_validation(self):
    folder = os.path.join(self.get_temp_dir(), "d")
    write_set(folder)
    splits = datasets.load("mnist", data_dir=folder, validation_size=2)
    self.assertEqual(splits.train.images.shape, (10, 28, 28, 1))
    self.assertEqual(splits.validation.images.shape, (2, 28, 28, 1))
    self.assertEqual(splits.test.labels.dtype, np.int32)
    raw = idx.read(os.path.join(folder, "train-labels-idx1-ubyte.gz"))
    self.assertAllEqual(splits.validation.labels, raw[-2:])

  def test_facts_come_with_the_splits(self):
    folder = os.path.join(self.get_temp_dir(), "facts")
    write_set(folder)
    info = datasets.load("fashion_mnist", data_dir=folder,
                         validation_size=2).info
    self.assertEqual((info.name, info.image_shape, info.num_classes,
                      info.channels), ("fashion_mnist", (28, 28, 1), 10, 1))
    self.assertEqual(info.class_names[0], "T-shirt/top")
    self.assertEqual(info.as_dict()["image_shape"], [28, 28, 1])
    self.assertEqual(datasets.load("mnist", data_dir=folder,
                                   validation_size=0).info
                     .class_names[:3], ("0", "1", "2"))

  def test_idx_images_of_another_size_and_channels(self):
    folder = os.path.join(self.get_temp_dir(), "colour")
    write_set(folder, shape=(32, 32, 3))
    splits = datasets.load("mnist", data_dir=folder, validation_size=2)
    self.assertEqual(splits.info.image_shape, (32, 32, 3))
    self.assertEqual(splits.train.images.shape, (10, 32, 32, 3))

  def test_train_and_test_of_different_sizes(self):
    folder = os.path.join(self.get_temp_dir(), "mixed")
    write_set(folder, test_shape=(32, 32))
    with self.assertRaisesRegex(DataError, r"training images are \[28, 28, "
                                r"1\] but test images are \[32, 32, 1\]"):
      datasets.load("mnist", data_dir=folder)

  def test_raw_files_work_too(self):
    folder = os.path.join(self.get_temp_dir(), "raw")
    write_set(folder, compress=False)
    self.assertLen(datasets.load("fashion_mnist", data_dir=folder,
                                 validation_size=0).train.labels, 12)

  def test_count_mismatch(self):
    folder = os.path.join(self.get_temp_dir(), "bad")
    write_set(folder, labels_off=1)
    with self.assertRaisesRegex(DataError, r"holds 12 images but .* holds 13 "
                                "labels"):
      datasets.load("mnist", data_dir=folder)

  def test_missing_folder(self):
    with self.assertRaisesRegex(DataError, "is not a readable directory"):
      datasets.load("mnist", data_dir="/nonexistent/x")

  def test_folder_without_files(self):
    with self.assertRaisesRegex(DataError, "missing IDX files"):
      datasets.load("mnist", data_dir=self.get_temp_dir())

  def test_unknown_name(self):
    with self.assertRaisesRegex(
        ValueError, r"`dataset` must be one of mnist, .*, tfrecord, or "
        r"tfds:NAME; received dataset='cifar'\."):
      datasets.load("cifar")

  def test_validation_size_checked(self):
    with self.assertRaisesRegex(DataError, r"`validation_size` must be in "
                                r"\[0, 10\) for synthetic, which has 10 "
                                r"training images; received "
                                r"validation_size=10"):
      datasets.load("synthetic", synthetic_size=10, validation_size=10)

  def test_synthetic_is_deterministic(self):
    a, b = datasets.synthetic(50), datasets.synthetic(50)
    self.assertAllEqual(a.images, b.images)
    self.assertEqual(a.images.dtype, np.uint8)

  def test_download_verifies_checksums(self):
    # A local "mirror" over file:// — no network needed.
    mirror = os.path.join(self.get_temp_dir(), "mirror")
    write_set(mirror)
    sums = {}
    for name in os.listdir(mirror):
      sums[name] = hashlib.sha256(open(os.path.join(mirror, name),
                                       "rb").read()).hexdigest()
    target = os.path.join(self.get_temp_dir(), "cache")
    datasets.download_mnist(target, mirrors=("file://" + mirror + "/",),
                            checksums=sums)
    self.assertCountEqual(os.listdir(target), sums)
    bad = dict(sums, **{"t10k-labels-idx1-ubyte.gz": "0" * 64})
    target2 = os.path.join(self.get_temp_dir(), "cache2")
    with self.assertRaisesRegex(DataError, "checksum mismatch.*pass "
                                "--data_dir"):
      datasets.download_mnist(target2, mirrors=("file://" + mirror + "/",),
                              checksums=bad)
    self.assertNotIn("t10k-labels-idx1-ubyte.gz", os.listdir(target2))

  def test_download_without_network_says_how(self):
    with self.assertRaisesRegex(DataError, "could not be downloaded"):
      datasets.download_mnist(os.path.join(self.get_temp_dir(), "c3"),
                              mirrors=("file:///nonexistent/",),
                              checksums={"x.gz": "0" * 64})


class FashionMnistTest(tf.test.TestCase):
  """Needs Debian's dataset-fashion-mnist (installed by `make test`)."""

  def setUp(self):
    super().setUp()
    if not os.path.isdir(datasets.FASHION_MNIST_DIRS[0]):
      self.skipTest("dataset-fashion-mnist is not installed")

  def test_full_set(self):
    splits = datasets.load("fashion_mnist")
    self.assertEqual(len(splits.train.labels), 58000)
    self.assertEqual(len(splits.validation.labels), 2000)
    self.assertEqual(len(splits.test.labels), 10000)
    self.assertAllEqual(np.bincount(splits.test.labels), [1000] * 10)
    self.assertEqual(splits.info.image_shape, (28, 28, 1))
    self.assertEqual(splits.info.class_names[-1], "Ankle boot")
