"""`python -m bench.experiments.shifted_views SAVED_MODEL [DATASET [SPLIT]]`:
accuracy of an exported model with each image's one-pixel shifts averaged in.

The rest of the paper's multi-crop evaluation, measured offline on an export
(not an engine option; docs/experiments/2026-11-accuracy.md): each image of a
split of an IDX set (Fashion-MNIST's test split by default; `validation` is the
last 2,000 training images, the split the engine chooses on) is scored centred
and shifted by one pixel in each of 8 directions (zero padding), through the
SavedModel's `serving_default` (which already averages in the mirror image when
the run had --test_mirror). Prints each view's accuracy and that of the averaged
probabilities of the centre, the centre with its 4 sideways and vertical shifts,
and all 9 views.
"""

import sys

import numpy as np

SHIFTS = [(0, 0), (0, 1), (0, -1), (1, 0), (-1, 0),
          (1, 1), (1, -1), (-1, 1), (-1, -1)]
BATCH = 500


def main(saved_model: str, dataset: str = "fashion_mnist",
         split: str = "test") -> None:
  if split not in ("test", "validation"):
    sys.exit(f"error: the split must be test or validation, not {split!r}")
  import tensorflow as tf
  from core.data import datasets
  data = getattr(datasets.load(dataset, download=False), split)
  serve = tf.saved_model.load(saved_model).signatures["serving_default"]
  height, width = data.images.shape[1:3]
  padded = np.pad(data.images, ((0, 0), (1, 1), (1, 1), (0, 0)))
  views = {}
  for dy, dx in SHIFTS:
    shifted = padded[:, 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]
    views[dy, dx] = np.concatenate([
        serve(images=tf.constant(shifted[i:i + BATCH]))["probabilities"]
        .numpy() for i in range(0, len(shifted), BATCH)])

  def accuracy(keys):
    mean = sum(views[k] for k in keys)
    return float(np.mean(mean.argmax(axis=1) == data.labels))

  for key in SHIFTS:
    print(f"view {key}: {accuracy([key]):.4f}")
  print(f"centre: {accuracy(SHIFTS[:1]):.4f}")
  print(f"centre and 4 shifts: {accuracy(SHIFTS[:5]):.4f}")
  print(f"all 9 views: {accuracy(SHIFTS):.4f}")


if __name__ == "__main__":
  main(*sys.argv[1:4])
