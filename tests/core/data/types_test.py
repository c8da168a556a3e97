"""The data types: every kind of split offers what the engine asks of a
split (types.AnySplit), an in-memory split cuts to its first rows, and
which names are data sets and which are streamed."""

from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from core.data import folders
from core.data import tfrecords
from core.data import types


def rows(n):
  return types.Split(np.arange(n * 4, dtype=np.uint8).reshape([n, 2, 2, 1]),
                     np.arange(n, dtype=np.int32))


class AnySplitTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ("memory", rows(3)),
      ("files", folders.FileSplit(np.array(["a.png", "b.png", "c.png"],
                                           dtype=object),
                                  np.zeros([3], np.int32))),
      ("records", tfrecords.RecordSplit(("d/train-00000-of-00001",), 3)))
  def test_every_kind_of_split_is_one(self, split):
    self.assertIsInstance(split, types.AnySplit)
    self.assertEqual(split.num_examples, 3)

  def test_a_split_without_take_cannot_be_cut(self):

    class Uncut(NamedTuple):
      labels: np.ndarray

      @property
      def num_examples(self) -> int:
        return len(self.labels)

      @property
      def num_shards(self) -> Optional[int]:
        return None

    self.assertIsInstance(Uncut(np.zeros([3])), types.AnySplit)
    self.assertNotIsInstance(Uncut(np.zeros([3])), types.IndexedSplit)
    self.assertIsInstance(rows(3), types.IndexedSplit)

  def test_memory_take_keeps_the_first_rows(self):
    split = rows(5)
    first = split.take(3)
    self.assertIsInstance(first, types.Split)
    self.assertAllEqual(first.images, split.images[:3])
    self.assertAllEqual(first.labels, [0, 1, 2])
    self.assertEqual(split.take(9).num_examples, 5)

  def test_memory_is_not_sharded(self):
    self.assertIsNone(rows(5).num_shards)


class NamesTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(
      ("fashion_mnist", True, False), ("folder", True, True),
      ("tfrecord", True, True), ("tfds:mnist", True, True),
      ("tfds:imagenet2012/subset:5.1.0", True, True), ("tfds:", False, True),
      ("cifar", False, False), ("mnist:tfds", False, False))
  def test_names_and_what_is_streamed(self, name, known, streamed):
    self.assertEqual(types.is_known(name), known)
    self.assertEqual(types.is_streamed(name), streamed)


if __name__ == "__main__":
  tf.test.main()
