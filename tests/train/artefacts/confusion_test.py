"""The confusion summaries at any class count: exact numbers, bounded
drawings with their axes and classes named, and what TensorBoard itself
shows at 1,000 classes."""

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


# A heat map's side at most: the cells' MAP_PIXELS and the labels' margin
# (a title and a gap of 2, then a name of NAME_CHARS and a gap of 2, in
# font pixels of 2; 182 px).
MOST_PIXELS = confusion.MAP_PIXELS + 2 * (7 + 2 + 5 * confusion.NAME_CHARS
                                          + 2)


def ink(image: np.ndarray) -> np.ndarray:
  """bool [H, W]: the labels' pixels."""
  return np.all(image == 40, axis=-1)


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
    # Cells of 24 px below and right of a margin of 32: the title (14),
    # 4, the widest label ("0": 10), 4; "predicted" (90) is wider.
    self.assertEqual(image.shape, (32 + 48, 32 + 90, 3))
    cells = image[32:, 32:]
    self.assertEqual(tuple(cells[0, 0]), (0, 102, 204))      # 4/4: dark
    self.assertEqual(tuple(cells[0, 24]), (255, 255, 255))   # 0/4: white
    self.assertEqual(tuple(cells[24, 0]), (191, 217, 242))   # 1/4
    self.assertEqual(tuple(cells[47, 47]), (64, 140, 217))   # 3/4
    table = confusion.count_table(counts, ["cat", "dog"])
    self.assertEqual(table.splitlines()[-1], "dog | 1 | 3")

  def test_the_axes_and_the_classes_are_named(self):
    counts = np.array([[4, 0], [1, 3]])
    image = confusion.heat_map(counts, names=["cat", "dog"])
    margin = 14 + 4 + 30 + 4  # the title, a gap, "cat" and "dog", a gap
    self.assertEqual(image.shape, (margin + 48, margin + 90, 3))
    drawn = ink(image)
    self.assertFalse(drawn[margin:, margin:].any())  # nothing on the cells
    # Each row's name right-aligned beside it, centred; each column's name
    # upwards above it; "true" down the left, "predicted" along the top.
    for row, name in enumerate(["cat", "dog"]):
      middle = margin + 24 * row + 5
      self.assertAllEqual(drawn[middle:middle + 14, 18:48],
                          confusion.text(name, 2))
      self.assertAllEqual(drawn[18:48, middle:middle + 14],
                          np.rot90(confusion.text(name, 2)))
    self.assertAllEqual(drawn[:14, margin:margin + 90],
                        confusion.text("predicted", 2))
    self.assertAllEqual(drawn[margin + 4:margin + 44, :14],
                        np.rot90(confusion.text("true", 2)))

  def test_longer_names_widen_the_margins_up_to_a_cut(self):
    counts = np.eye(3, dtype=np.int64)
    short = confusion.heat_map(counts, names=["a", "b", "c"])
    longer = confusion.heat_map(counts, names=["a", "b", "cheetah"])
    self.assertEqual(np.subtract(longer.shape, short.shape).tolist(),
                     [60, 60, 0])  # 6 characters of 10 px, both ways
    cut = confusion.heat_map(counts, names=["a", "b", "x" * 40])
    at_most = confusion.heat_map(counts, names=["a", "b", "x" * 16])
    self.assertEqual(cut.shape, at_most.shape)
    self.assertFalse(np.array_equal(cut, at_most))  # "xxxxxxxxxxxxxx.."

  def test_past_forty_classes_the_labels_are_indices(self):
    counts = np.eye(41, dtype=np.int64)
    names = [f"class {i}" for i in range(41)]
    self.assertAllEqual(confusion.heat_map(counts, names=names),
                        confusion.heat_map(counts))
    forty = np.eye(40, dtype=np.int64)
    self.assertNotAllEqual(confusion.heat_map(forty, names=names[:40]),
                           confusion.heat_map(forty))

  def test_without_confusions_past_a_hundred_classes_only_the_axes(self):
    counts = np.eye(200, dtype=np.int64) * 5
    classes = confusion.shown_classes(counts)
    self.assertLen(classes, 0)
    image = confusion.heat_map(counts, classes)
    # The titles and their gaps (14 + 4 + 4), "true" (40) and "predicted".
    self.assertEqual(image.shape, (22 + 40, 22 + 90, 3))
    self.assertTrue(ink(image)[:14, 22:].any())

  def test_the_font_draws_ascii_and_a_question_mark_for_the_rest(self):
    self.assertAllEqual(confusion.text("T").astype(int),
                        [[0, 1, 1, 1, 0]] + [[0, 0, 1, 0, 0]] * 5
                        + [[0, 0, 0, 0, 0]])
    self.assertAllEqual(confusion.text("é"), confusion.text("?"))
    self.assertEqual(confusion.text("ab", 3).shape, (21, 30))
    glyphs = {confusion.text(chr(c)).tobytes() for c in range(33, 127)}
    self.assertLen(glyphs, 94)  # every printable character its own

  def test_a_thousand_classes_are_drawn_bounded(self):
    counts = imagenet_like(1000)
    names = [f"n{i:08d}" for i in range(1000)]
    pairs = confusion.confused_pairs(counts)
    self.assertEqual(pairs[0], (7, 3, 40))
    classes = confusion.shown_classes(counts)
    self.assertLessEqual(len(classes), 2 * confusion.PAIRS)
    self.assertTrue({3, 7} <= set(classes.tolist()))
    image = confusion.heat_map(counts, classes, names)
    self.assertLessEqual(max(image.shape), MOST_PIXELS)
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
      self.assertLessEqual(max(png.shape), MOST_PIXELS)
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
