"""`python -I bench/experiments/score_export.py SAVED_MODEL [IDX_DIR]`: the
test accuracy of an export, scored in a process that cannot import the
project (run it from outside the checkout, e.g. /tmp, with `-I`).

It reads the IDX test split itself (Fashion-MNIST's by default, gzipped or not)
and feeds the raw uint8 pixels to the SavedModel's `serving_default`, as a
serving client would; the accuracy note's export figures (docs/experiments) come
from it. Only TensorFlow and numpy are imported.
"""

import gzip
import os
import sys

import numpy as np
import tensorflow as tf

BATCH = 500


def read_idx(folder: str, stem: str, offset: int) -> np.ndarray:
  """The payload of `stem` (or `stem`.gz) in `folder` past its header."""
  path = os.path.join(folder, stem)
  with (open(path, "rb") if os.path.exists(path)
        else gzip.open(path + ".gz", "rb")) as f:
    return np.frombuffer(f.read(), np.uint8, offset=offset)


def main(saved_model: str,
         folder: str = "/usr/share/datasets/fashion-mnist") -> None:
  labels = read_idx(folder, "t10k-labels-idx1-ubyte", 8)
  images = read_idx(folder, "t10k-images-idx3-ubyte", 16)
  images = images.reshape(len(labels), -1)
  side = int(round(np.sqrt(images.shape[1])))
  images = images.reshape(-1, side, side, 1)
  serve = tf.saved_model.load(saved_model).signatures["serving_default"]
  classes = np.concatenate([
      serve(images=tf.constant(images[i:i + BATCH]))["classes"].numpy()
      for i in range(0, len(images), BATCH)])
  print(f"test accuracy {np.mean(classes == labels):.4f} "
        f"({len(labels)} images)")


if __name__ == "__main__":
  main(*sys.argv[1:])
