"""What a confusion matrix is drawn as, bounded at any class count.

The counts are accumulated exactly (train/loop/step.py); what is drawn
from them here grows no further than a few hundred kilobytes: the full
heat map and count table while they are readable (up to FULL_MAP and
FULL_TABLE classes), and above that the most confused pairs of classes, a
heat map of only the classes those pairs involve, and per-class accuracy
worst first. At 1,000 classes the whole matrix was a 576-megapixel image
and a 1,000-column table; ImageNet's reviewers look at the confused pairs
(the dog breeds) anyway. NumPy only, so `train.evaluate` uses it too.
"""

from typing import List, Optional, Sequence, Tuple

import numpy as np

FULL_MAP = 100      # classes up to which the heat map shows every class
FULL_TABLE = 30     # classes up to which the count table has every column
PAIRS = 20          # most confused pairs shown above those
WORST = 20          # per-class accuracies listed above FULL_MAP classes
MAP_PIXELS = 960    # a heat map's side at most (cells of 4 to 24 pixels)


def per_class_accuracy(counts: np.ndarray) -> np.ndarray:
  """float64 [classes]: the diagonal over each row's total; NaN for a class
  with no examples."""
  counts = np.asarray(counts, np.float64)
  totals = counts.sum(axis=1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(totals > 0, np.diag(counts) / totals, np.nan)


def confused_pairs(counts: np.ndarray,
                   k: int = PAIRS) -> List[Tuple[int, int, int]]:
  """The `k` largest off-diagonal counts as (true, predicted, count), most
  first, ties by index; zero counts are not confusions."""
  counts = np.asarray(counts, np.int64)
  off = counts.copy()
  np.fill_diagonal(off, 0)
  flat = off.reshape(-1)
  k = min(k, int(np.count_nonzero(flat)))
  if k == 0:
    return []
  top = np.argpartition(-flat, k - 1)[:k]
  top = sorted(top.tolist(), key=lambda i: (-flat[i], i))
  n = counts.shape[0]
  return [(i // n, i % n, int(flat[i])) for i in top]


def shown_classes(counts: np.ndarray) -> np.ndarray:
  """The classes the heat map shows: all up to FULL_MAP, else those the
  most confused pairs involve (at most 2 * PAIRS), in index order."""
  n = np.asarray(counts).shape[0]
  if n <= FULL_MAP:
    return np.arange(n)
  involved = {c for t, p, _ in confused_pairs(counts) for c in (t, p)}
  return np.array(sorted(involved), np.int64)


def heat_map(counts: np.ndarray,
             classes: Optional[np.ndarray] = None) -> np.ndarray:
  """uint8 [H, W, 3]: rows of `classes` (default all) normalised by their
  full totals, white (0) to dark blue (1), square cells of 4 to 24 px."""
  counts = np.asarray(counts, np.float64)
  if classes is None:
    classes = np.arange(counts.shape[0])
  totals = np.maximum(counts.sum(axis=1), 1)[classes]
  rows = (counts[np.ix_(classes, classes)] / totals[:, None]).astype(
      np.float32)
  cell = int(np.clip(MAP_PIXELS // max(len(classes), 1), 4, 24))
  heat = np.repeat(np.repeat(rows, cell, axis=0), cell, axis=1)
  rgb = np.stack([1 - heat, 1 - 0.6 * heat, 1 - 0.2 * heat], axis=-1)
  return np.rint(rgb * 255).astype(np.uint8)


def count_table(counts: np.ndarray, names: Sequence[str]) -> str:
  """Markdown: every count up to FULL_TABLE classes, else the most
  confused pairs with the share of the true class they take."""
  counts = np.asarray(counts, np.int64)
  if len(names) <= FULL_TABLE:
    lines = [" | ".join(["true \\ predicted"] + list(names)),
             " | ".join(["---"] * (len(names) + 1))]
    lines += [" | ".join([name] + [str(v) for v in row])
              for name, row in zip(names, counts)]
    return "\n".join(lines)
  totals = counts.sum(axis=1)
  lines = [f"the {PAIRS} most confused pairs of {len(names)} classes",
           "", "true | predicted | images | share of true class",
           "--- | --- | --- | ---"]
  lines += [f"{names[t]} | {names[p]} | {c} | {c / totals[t]:.3f}"
            for t, p, c in confused_pairs(counts)]
  return "\n".join(lines)


def accuracy_table(counts: np.ndarray, names: Sequence[str]) -> str:
  """Markdown: per-class accuracy worst first (every class up to FULL_MAP,
  the WORST worst above), classes without examples last."""
  accuracy = per_class_accuracy(counts)
  totals = np.asarray(counts, np.int64).sum(axis=1)
  order = sorted(range(len(names)), key=lambda i: (
      np.isnan(accuracy[i]), accuracy[i], i))
  shown = order if len(names) <= FULL_MAP else order[:WORST]
  head = ("" if len(shown) == len(names) else
          f"the {len(shown)} worst of {len(names)} classes\n\n")
  lines = ["class | accuracy | images", "--- | --- | ---"]
  lines += [f"{names[i]} | " + ("-" if np.isnan(accuracy[i]) else
                                f"{accuracy[i]:.3f}") + f" | {totals[i]}"
            for i in shown]
  return head + "\n".join(lines)
