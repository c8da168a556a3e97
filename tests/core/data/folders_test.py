"""Image folders: classes, splits, carving, channels, and layout errors."""

import os

import numpy as np
import tensorflow as tf

from core.data import datasets
from core.data import folders
from core.runtime.errors import DataError
from tests import helpers


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
