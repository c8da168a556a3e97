"""Image folders: classes, splits, carving, channels, and layout errors."""

import os

import numpy as np
import tensorflow as tf

from core.data import datasets
from core.data import folders
from core.data import images
from core.runtime.errors import DataError
from tests import helpers
from tests.core.data import image_bytes as made


class FoldersTest(tf.test.TestCase):

  def make(self, **kwargs):
    root = os.path.join(self.get_temp_dir(), self.id().split(".")[-1])
    written = helpers.write_image_folder(root, **kwargs)
    return root, written

  def test_classes_are_sorted_subfolders_and_label_the_files(self):
    root, written = self.make(classes=("zebra", "ant", "mole"),
                              splits=("train", "validation", "test"))
    data = datasets.load("folder", data_dir=root)
    self.assertEqual(data.info.class_names, ("ant", "mole", "zebra"))
    self.assertEqual(data.info.image_shape, (None, None, 3))
    got = dict(zip(data.test.paths, data.test.labels))
    order = ("zebra", "ant", "mole")
    for path, label in written["test"]:
      self.assertEqual(got[path], ("ant", "mole", "zebra").index(
          order[label]), path)
    self.assertEqual((data.train.num_examples, data.validation.num_examples,
                      data.test.num_examples), (18, 18, 18))

  def test_validation_carved_from_train_when_absent(self):
    root, _ = self.make(per_class=10)
    data = datasets.load("folder", data_dir=root, validation_size=7)
    self.assertEqual((data.train.num_examples, data.validation.num_examples,
                      data.test.num_examples), (23, 7, 0))
    self.assertEmpty(set(data.train.paths) & set(data.validation.paths))
    again = datasets.load("folder", data_dir=root, validation_size=7)
    self.assertAllEqual(again.validation.paths, data.validation.paths)

  def test_grey_images_make_a_one_channel_set(self):
    root, _ = self.make(channels=1)
    self.assertEqual(datasets.load("folder", data_dir=root,
                                   validation_size=3).info.channels, 1)

  def test_grey_folder_reads_its_gif_bmp_and_webp(self):
    # Grey PNGs make a one-channel set, in which TF refuses to decode a GIF
    # or a BMP (review #14): they are read in colour and made grey.
    root, _ = self.make(channels=1)
    colour = np.full([24, 24, 3], [40, 90, 160], np.uint8)
    for name, data in (("zz.bmp", made.bmp(colour)),
                       ("zz.gif", made.gif((24, 24))),
                       ("zz.webp", made.WEBP_ALPHA)):
      open(os.path.join(root, "train", "cat", name), "wb").write(data)
    data = datasets.load("folder", data_dir=root, validation_size=0)
    self.assertEqual(data.info.channels, 1)
    for path in data.train.paths:
      (out,) = list(images.read_or_flagged(
          lambda p: (tf.io.read_file(p), {}), tf.constant(path), 1, 8))
      self.assertTrue(bool(out["ok"]), path)
      self.assertEqual(out["image"].shape, (8, 8, 1))
    self.assertEqual(sorted(os.path.basename(p) for p in data.train.paths
                            if p.endswith(("bmp", "gif", "webp"))),
                     ["zz.bmp", "zz.gif", "zz.webp"])

  def test_a_class_folder_named_in_bytes_that_are_not_utf8(self):
    # Class names go into summaries and the export's tf.constant, which
    # take UTF-8 only (review #11): refused at load, in one line.
    root, _ = self.make()
    os.rename(os.path.join(root, "train", "dog"),
              os.path.join(root, "train", os.fsdecode(b"caf\xe9")))
    with self.assertRaises(DataError) as raised:
      datasets.load("folder", data_dir=root, validation_size=3)
    message = str(raised.exception)
    self.assertEqual(message, os.path.join(root, "train", "caf\\xe9")
                     + ": the class folder's name is not UTF-8; rename it.")
    message.encode("utf-8")  # printable as it is

  def test_pipes_and_devices_are_not_listed_as_images(self):
    # Reading one would block for ever (review #12); the listing itself
    # does not open them, so this test cannot hang on code that takes them.
    root, _ = self.make()
    cat = os.path.join(root, "train", "cat")
    pipe = os.path.join(self.get_temp_dir(), "pipe")
    os.mkfifo(pipe)
    for name, make in (("fifo.png", lambda p: os.mkfifo(p)),
                       ("to-fifo.png", lambda p: os.symlink(pipe, p)),
                       ("to-zero.jpg", lambda p: os.symlink("/dev/zero", p))):
      path = os.path.join(cat, name)
      make(path)
      with self.assertRaisesRegex(DataError, f"^{path}: not a regular file "
                                  r"\(a named pipe, a device, or a link to "
                                  r"one\); remove it from the data folder\.$"):
        folders.read_split(root, "train", ("cat", "dog", "eel"))
      os.remove(path)
    os.symlink(os.path.join(cat, "000.png"), os.path.join(cat, "link.png"))
    listed = folders.read_split(root, "train", ("cat", "dog", "eel")).paths
    self.assertIn(os.path.join(cat, "link.png"), listed)  # to a file: taken

  def test_layout_errors(self):
    root, _ = self.make()
    cases = []
    empty = os.path.join(root, "train", "fox")
    os.makedirs(empty)
    cases.append((root, rf"{empty}: empty class folder"))
    single = os.path.join(self.get_temp_dir(), "single")
    helpers.write_image_folder(single, classes=("only",))
    cases.append((single, r"found 1 class folder\(s\); training a "
                  r"classifier needs at least 2"))
    cases.append((self.get_temp_dir() + "/nothing-here",
                  "`data_dir` .* is not a readable directory|no `train` "
                  "folder"))
    for data_dir, pattern in cases:
      with self.assertRaisesRegex(DataError, pattern):
        datasets.load("folder", data_dir=data_dir, validation_size=3)

  def test_validation_class_unknown_to_train(self):
    root, _ = self.make(splits=("train", "validation"))
    os.rename(os.path.join(root, "validation", "eel"),
              os.path.join(root, "validation", "owl"))
    with self.assertRaisesRegex(DataError, "class 'owl' is not among the "
                                "train folder's classes"):
      datasets.load("folder", data_dir=root)

  def test_needs_a_data_dir(self):
    with self.assertRaisesRegex(DataError, "--dataset=folder needs "
                                "--data_dir"):
      datasets.load("folder")

  def test_only_image_files_are_listed(self):
    root, _ = self.make()
    open(os.path.join(root, "train", "cat", "notes.txt"), "w").write("x")
    data = datasets.load("folder", data_dir=root, validation_size=0)
    self.assertFalse(any(p.endswith(".txt") for p in data.train.paths))

  def test_carve_is_a_partition(self):
    split = folders.FileSplit(np.array([f"f{i}" for i in range(20)],
                                       dtype=object), np.arange(20) % 3)
    train, held = folders.carve(split, 5)
    self.assertEqual(sorted(list(train.paths) + list(held.paths)),
                     sorted(split.paths))
    self.assertLen(held.paths, 5)

  def test_take_keeps_the_first_files_and_no_shards(self):
    split = folders.FileSplit(np.array([f"f{i}" for i in range(5)],
                                       dtype=object), np.arange(5) % 2)
    first = split.take(2)
    self.assertIsInstance(first, folders.FileSplit)
    self.assertEqual(list(first.paths), ["f0", "f1"])
    self.assertAllEqual(first.labels, [0, 1])
    self.assertIsNone(split.num_shards)
