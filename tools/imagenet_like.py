"""Writes a data set in ImageNet's layout, for rehearsals at its shape.

  python -m tools.imagenet_like --output=DIR [--classes=1000]
      [--train_per_class=2] [--validation_images=1000] [--test_images=0]
      [--layout=shards,folder]

Shards (DIR/shards) are named and filled as TF-slim's and Model Garden's
`build_imagenet_data.py` write them: `train-00000-of-00008`,
`validation-00000-of-00002` (and `test-...` when --test_images is set;
ImageNet ships no labelled test split), each record a `tf.train.Example`
with `image/encoded` (JPEG), a 1-based `image/class/label` (train with
--label_offset=1), `image/class/text` (a human-readable name),
`image/class/synset`, `image/format`, `image/filename`, `image/height`,
`image/width`, `image/channels` and `image/colorspace`; no dataset.json, so
train.main scans the labels once, as it would for real ImageNet shards. The
folder tree (DIR/folder) holds the same images as
`<split>/<synset>/<synset>_<n>.JPEG`.

The images are JPEGs of varied sizes, as photographs are: most 120 to 500
pixels a side, every --large_every-th one 3,000 to 4,000 pixels wide (a
12-megapixel camera's), each a smooth field in its class's colour with
noise. Deterministic for given flags. Bad flags are one line and exit 2.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import numpy as np

from core.runtime import errors

FLAGS = flags.FLAGS
flags.DEFINE_string("output", None, "Output folder (must not exist yet).")
flags.DEFINE_integer("classes", 1000, "Classes (ImageNet: 1,000).")
flags.DEFINE_integer("train_per_class", 2, "Training images per class.")
flags.DEFINE_integer("validation_images", 1000, "Validation images, spread "
                     "over the classes in turn.")
flags.DEFINE_integer("test_images", 0, "Test images (0: none, as ImageNet).")
flags.DEFINE_integer("large_every", 250, "Every N-th image is 3,000 to "
                     "4,000 pixels wide (0: none).")
flags.DEFINE_integer("train_shards", 8, "Training shards.")
flags.DEFINE_integer("eval_shards", 2, "Validation (and test) shards.")
flags.DEFINE_list("layout", ["shards", "folder"], "What to write: shards, "
                  "folder, or both.")
flags.DEFINE_integer("seed", 0, "Seed of the sizes, colours and noise.")


def synset(label: int) -> str:
  """A WordNet-style id for class `label` (0-based), as ImageNet's folders
  are named."""
  return f"n{label + 1:08d}"


def class_text(label: int) -> str:
  return f"synthetic class {label + 1}"


def picture(rng: np.random.RandomState, label: int, classes: int,
            large: bool) -> np.ndarray:
  """uint8 [H, W, 3]: a smooth field in the class's hue, with noise."""
  if large:
    width = int(rng.randint(3000, 4001))
    height = width * 3 // 4
  else:
    height, width = (int(v) for v in rng.randint(120, 501, size=2))
  hue = 2 * np.pi * label / classes
  colour = 128 + 100 * np.cos(hue + np.array([0, 2.1, 4.2]))
  y = np.linspace(-1, 1, height, dtype=np.float32)[:, None, None]
  x = np.linspace(-1, 1, width, dtype=np.float32)[None, :, None]
  field = colour * (0.7 + 0.3 * np.cos(3 * x + rng.uniform(0, 6)) *
                    np.sin(2 * y + rng.uniform(0, 6)))
  noise = rng.randint(-10, 11, size=(height, width, 1))
  return np.clip(field + noise, 0, 255).astype(np.uint8)


def example(encoded: bytes, label: int, shape, filename: str) -> bytes:
  """A serialized Example with TF-slim's ImageNet features."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def b(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

  def i(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

  return tf.train.Example(features=tf.train.Features(feature={
      "image/encoded": b(encoded), "image/format": b(b"JPEG"),
      "image/class/label": i(label + 1),  # 1-based, as ImageNet's
      "image/class/text": b(class_text(label).encode()),
      "image/class/synset": b(synset(label).encode()),
      "image/filename": b(filename.encode()),
      "image/height": i(shape[0]), "image/width": i(shape[1]),
      "image/channels": i(3), "image/colorspace": b(b"RGB"),
  })).SerializeToString()


def plan(classes: int, train_per_class: int, validation: int, test: int):
  """{split: [label, ...]} in the order the images are written."""
  return {"train": [c for _ in range(train_per_class)
                    for c in range(classes)],
          "validation": [n % classes for n in range(validation)],
          "test": [n % classes for n in range(test)]}


def write(output: str, *, classes: int = 1000, train_per_class: int = 2,
          validation_images: int = 1000, test_images: int = 0,
          large_every: int = 250, train_shards: int = 8, eval_shards: int = 2,
          layout=("shards", "folder"), seed: int = 0) -> dict:
  """Writes the data set; returns {split: image count}."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(seed)
  counts, serial = {}, 0
  for split, labels in plan(classes, train_per_class, validation_images,
                            test_images).items():
    if not labels:
      continue
    counts[split] = len(labels)
    shards = min(train_shards if split == "train" else eval_shards,
                 len(labels))
    writers = []
    if "shards" in layout:
      os.makedirs(os.path.join(output, "shards"), exist_ok=True)
      writers = [tf.io.TFRecordWriter(os.path.join(
          output, "shards", f"{split}-{s:05d}-of-{shards:05d}"))
                 for s in range(shards)]
    for n, label in enumerate(labels):
      serial += 1
      image = picture(rng, label, classes,
                      bool(large_every) and serial % large_every == 0)
      encoded = tf.io.encode_jpeg(image, quality=90).numpy()
      name = f"{synset(label)}_{n}.JPEG"
      if writers:  # consecutive images to one shard, as TF-slim's ranges
        writers[n * shards // len(labels)].write(
            example(encoded, label, image.shape, name))
      if "folder" in layout:
        folder = os.path.join(output, "folder", split, synset(label))
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, name), "wb") as f:
          f.write(encoded)
    for writer in writers:
      writer.close()
  return counts


def main(argv) -> int:
  if len(argv) > 1:
    return _fail(f"unexpected arguments {argv[1:]}")
  if not FLAGS.output:
    return _fail("--output is required.")
  if os.path.exists(FLAGS.output):
    return _fail(f"--output {FLAGS.output!r} exists; give a new folder.")
  if FLAGS.classes < 2 or FLAGS.train_per_class < 1:
    return _fail("--classes must be at least 2 and --train_per_class at "
                 "least 1.")
  if min(FLAGS.validation_images, FLAGS.test_images, FLAGS.large_every) < 0:
    return _fail("--validation_images, --test_images and --large_every "
                 "must not be negative.")
  unknown = set(FLAGS.layout) - {"shards", "folder"}
  if unknown or not FLAGS.layout:
    return _fail(f"--layout must list shards and/or folder; received "
                 f"{','.join(FLAGS.layout)!r}.")
  counts = write(FLAGS.output, classes=FLAGS.classes,
                 train_per_class=FLAGS.train_per_class,
                 validation_images=FLAGS.validation_images,
                 test_images=FLAGS.test_images,
                 large_every=FLAGS.large_every,
                 train_shards=FLAGS.train_shards,
                 eval_shards=FLAGS.eval_shards, layout=FLAGS.layout,
                 seed=FLAGS.seed)
  print(f"wrote {', '.join(f'{n} {s}' for s, n in counts.items())} images "
        f"of {FLAGS.classes} classes to {FLAGS.output} "
        f"({' and '.join(FLAGS.layout)})")
  return 0


def _fail(message: str) -> int:
  print(f"error: {message}", file=sys.stderr)
  return errors.EXIT_USAGE


if __name__ == "__main__":
  app.run(main)
