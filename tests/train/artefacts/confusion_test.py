"""The confusion summaries at any class count: exact numbers, bounded
drawings, and what TensorBoard itself shows at 1,000 classes."""

import os
import tempfile
import time
import tracemalloc

import numpy as np
import tensorflow as tf

from tests.tensorboard_server import tensorboard
from train.artefacts import report
from train.artefacts import confusion
from train.loop.summaries import Summaries


def imagenet_like(classes: int, seed: int = 0) -> np.ndarray:
  """Counts of a 50-per-class validation, mostly right, with a planted
  worst pair: class 7 taken for class 3 forty times."""
  rng = np.random.default_rng(seed)
  counts = np.zeros([classes, classes], np.int64)
  for t in range(classes):
    wrong = rng.integers(0, classes, size=rng.integers(0, 6))
    np.add.at(counts[t], wrong, 1)
    counts[t, t] += 50 - len(wrong)
  counts[7] = 0
  counts[7, 3], counts[7, 7] = 40, 10
  return counts


class ConfusionTest(tf.test.TestCase):

  def test_pairs_are_the_largest_off_diagonal_counts(self):
    counts = np.array([[5, 2, 0], [9, 1, 1], [0, 2, 7]])
    self.assertEqual(confusion.confused_pairs(counts, 2), [(1, 0, 9),
                                                           (0, 1, 2)])
    self.assertEqual(confusion.confused_pairs(np.eye(4, dtype=int) * 3), [])

  def test_per_class_accuracy_and_classes_without_examples(self):
    counts = np.array([[3, 1], [0, 0]])
    accuracy = confusion.per_class_accuracy(counts)
    self.assertEqual(accuracy[0], 0.75)
    self.assertTrue(np.isnan(accuracy[1]))
    table = confusion.accuracy_table(counts, ["a", "b"])
    self.assertEqual(table.splitlines()[2:], ["a | 0.750 | 4", "b | - | 0"])

  def test_small_counts_are_drawn_whole(self):
    counts = np.array([[4, 0], [1, 3]])
    image = confusion.heat_map(counts)
    self.assertEqual(image.shape, (48, 48, 3))
    self.assertEqual(tuple(image[0, 0]), (0, 102, 204))      # 4/4: dark
    self.assertEqual(tuple(image[0, 24]), (255, 255, 255))   # 0/4: white
    self.assertEqual(tuple(image[24, 0]), (191, 217, 242))   # 1/4
    table = confusion.count_table(counts, ["cat", "dog"])
    self.assertEqual(table.splitlines()[-1], "dog | 1 | 3")

  def test_a_thousand_classes_are_drawn_bounded(self):
    counts = imagenet_like(1000)
    names = [f"n{i:08d}" for i in range(1000)]
    pairs = confusion.confused_pairs(counts)
    self.assertEqual(pairs[0], (7, 3, 40))
    classes = confusion.shown_classes(counts)
    self.assertLessEqual(len(classes), 2 * confusion.PAIRS)
    self.assertTrue({3, 7} <= set(classes.tolist()))
    image = confusion.heat_map(counts, classes)
    self.assertLessEqual(max(image.shape), confusion.MAP_PIXELS)
    table = confusion.count_table(counts, names)
    self.assertIn("n00000007 | n00000003 | 40 | 0.800", table)
    self.assertLess(len(table), 4000)
    worst = confusion.accuracy_table(counts, names).splitlines()
    self.assertEqual(worst[0], "the 20 worst of 1000 classes")
    self.assertEqual(worst[4], "n00000007 | 0.200 | 50")

  def test_the_report_is_bounded_and_the_json_whole(self):
    counts = imagenet_like(1000)
    names = [f"c{i}" for i in range(1000)]
    r = report.Report("run", 8, "validation", int(counts.sum()), 1.0, 0.9,
                      0.95, names, counts.tolist())
    text = report.render(r)
    self.assertLess(len(text.splitlines()), 60)
    self.assertIn("  c7 -> c3: 40", text)
    self.assertEqual(len(r.as_dict()["confusion"]), 1000)
    self.assertEqual(r.per_class["c7"], 0.2)
    small = report.render(report.Report("run", 8, "validation", 8, 1.0, 0.5,
                                        1.0, ["a", "b"], [[3, 1], [3, 1]]))
    self.assertIn("confusion matrix (rows: true class", small)

  def test_summaries_memory_and_time_at_a_thousand_classes(self):
    """It took ~33 GB at 1,000 classes; now a few MB (NumPy's allocations,
    traced) whatever the count. Time is printed, not asserted."""
    for classes in (10, 1000):
      counts = imagenet_like(classes)
      names = [f"n{i:08d}" for i in range(classes)]
      writer = Summaries(tempfile.mkdtemp())
      writer.confusion("eval", counts, names, 0)   # warm TF's writer
      tracemalloc.start()
      start = time.perf_counter()
      writer.confusion("eval", counts, names, 1)
      seconds = time.perf_counter() - start
      _, peak = tracemalloc.get_traced_memory()
      tracemalloc.stop()
      writer.close()
      print(f"{classes} classes: {peak / 2**20:.1f} MiB traced peak, "
            f"{seconds * 1000:.0f} ms per confusion summary")
      self.assertLess(peak, 64 * 2**20)

  def test_what_tensorboard_shows_at_a_thousand_classes(self):
    logdir = tempfile.mkdtemp()
    names = [f"n{i:08d}" for i in range(1000)]
    writer = Summaries(os.path.join(logdir, "run"))
    writer.confusion("eval", imagenet_like(1000), names, 5)
    writer.close()
    with tensorboard(logdir) as board:
      images = board.tags("images", wait_for=("run/eval", "confusion_matrix"))
      self.assertIn("confusion_matrix", images["run/eval"])
      self.assertIn("most confused pairs involve",
                    images["run/eval"]["confusion_matrix"]["description"])
      shown = board.get("/data/plugin/images/images", run="run/eval",
                        tag="confusion_matrix", sample=0)
      png = tf.io.decode_png(board.get(
          "/data/plugin/images/individualImage?" + shown[-1]["query"]))
      self.assertLessEqual(max(png.shape), confusion.MAP_PIXELS)
      text = board.tags("text", wait_for=("run/eval", "per_class_accuracy"))
      self.assertTrue({"confusion_table", "per_class_accuracy"}
                      <= set(text["run/eval"]))
      table = board.get("/data/plugin/text/text", run="run/eval",
                        tag="confusion_table")
      self.assertIn("n00000007", table[-1]["text"])
      histograms = board.tags("histograms", wait_for=(
          "run/eval", "per_class_accuracy_distribution"))
      self.assertIn("per_class_accuracy_distribution",
                    histograms["run/eval"])


if __name__ == "__main__":
  tf.test.main()
