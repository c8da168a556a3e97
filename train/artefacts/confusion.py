"""What a confusion matrix is drawn as, bounded at any class count.

The counts are accumulated exactly (train/loop/step.py); what is drawn
from them here grows no further than a few hundred kilobytes: the full
heat map and count table while they are readable (up to FULL_MAP and
FULL_TABLE classes), and above that the most confused pairs of classes, a
heat map of only the classes those pairs involve, and per-class accuracy
worst first. At 1,000 classes the whole matrix was a 576-megapixel image
and a 1,000-column table; ImageNet's reviewers look at the confused pairs
(the dog breeds) anyway. NumPy only, so `train.evaluate` uses it too: the
heat map's axis titles and class labels are drawn in a 5x7 bitmap font
written out below.
"""

from typing import List, Optional, Sequence, Tuple

import numpy as np

FULL_MAP = 100      # classes up to which the heat map shows every class
FULL_TABLE = 30     # classes up to which the count table has every column
PAIRS = 20          # most confused pairs shown above those
WORST = 20          # per-class accuracies listed above FULL_MAP classes
MAP_PIXELS = 960    # a heat map's side at most (cells of 4 to 24 pixels)
LABELLED = 40       # classes shown up to which labels are names, not indices
NAME_CHARS = 16     # a name's characters at most on the map (cut with "..")

# X11's misc-fixed 5x7 font (public domain), printable ASCII from " " to "~":
# a glyph is 7 rows of 5 pixels, each row one base-32 digit whose highest
# bit is the leftmost pixel. The last column and the last row are blank.
_FONT = """
0000000 4444040 aaa0000 0avava0 0eke5e0 gi48i20 08k8ka0 4440000 4888840
8444480 0a4e4a0 044v440 0000648 000u000 0000cc0 0248g00 4aaaa40 4c444e0
ci248u0 u2c2ic0 4cku440 ugs2ic0 cgsiic0 u244880 ciciic0 ciie2c0 0cc0cc0
0cc0c8g 0248420 00u0u00 0842480 4a24040 cimmgc0 ciiuii0 sisiis0 ciggic0
siiiis0 ugsggu0 ugsggg0 cigmie0 iiuiii0 e4444e0 2222ic0 ikooki0 gggggu0
iuuiii0 iqqmmi0 ciiiic0 siisgg0 ciiiqc2 siiski0 ci84ic0 e444440 iiiiic0
iiiicc0 iiiuui0 iiccii0 aaa4440 u248gu0 e8888e0 0g84200 e2222e0 4a00000
00000u0 8400000 00eima0 ggsiis0 00cggc0 22eiie0 00cmoc0 4a8s880 00eicge
ggsiii0 40c44e0 20222a4 ggkoki0 c4444e0 00kuii0 00siii0 00ciic0 00siisg
00eiie2 00sigg0 00eo6s0 88s8860 00iiie0 00aaa40 00iiuu0 00icci0 00iia48
00u48u0 24c4420 4444440 8464480 ak00000
"""
_GLYPHS = np.array([[[int(row, 32) >> (4 - x) & 1 for x in range(5)]
                     for row in glyph] for glyph in _FONT.split()], bool)
_INK = 40           # the labels' grey


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


def text(line: str, scale: int = 1) -> np.ndarray:
  """bool [7 * scale, 5 * scale * len(line)]: `line` in the 5x7 font, each
  font pixel `scale` pixels a side; a character outside printable ASCII
  is drawn as "?"."""
  codes = [ord(c if " " <= c <= "~" else "?") - ord(" ") for c in line]
  drawn = _GLYPHS[codes].transpose(1, 0, 2).reshape(7, 5 * len(codes))
  return np.repeat(np.repeat(drawn, scale, axis=0), scale, axis=1)


def heat_map(counts: np.ndarray, classes: Optional[np.ndarray] = None,
             names: Optional[Sequence[str]] = None) -> np.ndarray:
  """uint8 [H, W, 3]: rows of `classes` (default all) normalised by their
  full totals, white (0) to dark blue (1), square cells of 4 to 24 px;
  the axes named, "true" down the left beside a label per row and
  "predicted" along the top above a label per column (read upwards). A
  label is the class's name (from `names`, cut to NAME_CHARS characters)
  while at most LABELLED classes are shown, else its index."""
  counts = np.asarray(counts, np.float64)
  if classes is None:
    classes = np.arange(counts.shape[0])
  totals = np.maximum(counts.sum(axis=1), 1)[classes]
  rows = (counts[np.ix_(classes, classes)] / totals[:, None]).astype(
      np.float32)
  cell = int(np.clip(MAP_PIXELS // max(len(classes), 1), 4, 24))
  heat = np.repeat(np.repeat(rows, cell, axis=0), cell, axis=1)
  rgb = np.stack([1 - heat, 1 - 0.6 * heat, 1 - 0.2 * heat], axis=-1)
  return _labelled(np.rint(rgb * 255).astype(np.uint8), cell,
                   _labels(classes, names))


def _labels(classes: np.ndarray,
            names: Optional[Sequence[str]]) -> List[str]:
  if names is None or len(classes) > LABELLED:
    return [str(c) for c in classes]
  return [names[c] if len(names[c]) <= NAME_CHARS else
          names[c][:NAME_CHARS - 2] + ".." for c in classes]


def _labelled(grid: np.ndarray, cell: int, labels: List[str]) -> np.ndarray:
  """`grid` on white with the axis titles and a label centred on each row
  (right-aligned) and column (upwards), in font pixels of 2 where the
  cells are high enough for two lines, else 1 (cells of 9 px and more
  always fit a line: more than LABELLED classes have cells of 9 to 23)."""
  scale = 2 if cell >= 18 else 1
  gap = 2 * scale
  drawn = [text(label, scale) for label in labels]
  line, longest = 7 * scale, max((d.shape[1] for d in drawn), default=0)
  margin = line + gap + longest + gap  # a title, then the labels
  truth, predicted = np.rot90(text("true", scale)), text("predicted", scale)
  side = grid.shape[0]
  ink = np.zeros([margin + max(side, truth.shape[0]),
                  margin + max(side, predicted.shape[1])], bool)
  for i, d in enumerate(drawn):
    across = margin + i * cell + (cell - line) // 2  # centred in its cell
    ink[across:across + line, margin - gap - d.shape[1]:margin - gap] = d
    ink[margin - gap - d.shape[1]:margin - gap,
        across:across + line] = np.rot90(d)
  middle = margin + side // 2
  top = max(middle - truth.shape[0] // 2, margin)
  ink[top:top + truth.shape[0], :line] = truth
  left = max(middle - predicted.shape[1] // 2, margin)
  ink[:line, left:left + predicted.shape[1]] = predicted
  image = np.full(ink.shape + (3,), 255, np.uint8)
  image[margin:margin + side, margin:margin + side] = grid
  image[ink] = _INK
  return image


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
