"""Writes a data set as TFRecord shards or as an image folder.

  python -m tools.convert --source=fashion_mnist --to=tfrecord --output=DIR
  python -m tools.convert --source=fashion_mnist --to=folder --output=DIR
  python -m tools.convert --source=folder:PHOTOS --to=tfrecord --output=DIR

Sources: an IDX set (mnist, fashion_mnist, with --data_dir as train.main
takes it) or an image folder (`folder:DIR`, DIR/train/<class>/...). IDX images
are written as PNG (lossless, so training on the result sees the same pixels);
a folder's files are copied byte for byte. The last --validation_size IDX
training images become the validation split, the ones train.main holds out
from the IDX files, so every form of the data set has the same splits.
TFRecord output: `<split>-NNNNN-of-MMMMM` shards and `dataset.json` (sizes
and class names, which spares train.main a scan). Folder output:
`<split>/<class>/<index>.png`. Input and output may be on any file system
TensorFlow knows (core/runtime/files.py). Bad input is one line on stderr and
exit 2.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from core.runtime import errors
from core.runtime import files
from train.startup import native_stderr

FLAGS = flags.FLAGS
flags.DEFINE_string("source", None, "mnist, fashion_mnist or folder:DIR.")
flags.DEFINE_string("data_dir", None, "IDX folder for mnist/fashion_mnist.")
flags.DEFINE_enum("to", "tfrecord", ["tfrecord", "folder"], "Output kind.")
flags.DEFINE_string("output", None, "Output folder (must not exist yet).")
flags.DEFINE_integer("shards", 8, "TFRecord shards per split (at most).")
flags.DEFINE_integer("validation_size", 2000, "IDX sources: the last N "
                     "training images are written as the validation split, "
                     "the split train.main holds out from IDX files (the "
                     "same default), so all three forms train on the same "
                     "images.")


def _splits(source: str):
  """{split: (encoded-bytes iterator factory, labels)}, class names."""
  from core.data import datasets, folders  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if source.startswith("folder:"):
    root = source[len("folder:"):]
    names = folders.class_names(root)
    out = {}
    for split in ("train", "validation", "test"):
      found = folders.read_split(root, split, names)
      if found is not None and found.num_examples:
        out[split] = (lambda f=found: (files.read_bytes(p)
                                       for p in f.paths), found.labels)
    return out, names
  data = datasets.load(source, data_dir=FLAGS.data_dir,
                       validation_size=FLAGS.validation_size)
  encode = lambda images: (tf.io.encode_png(i).numpy() for i in images)
  out = {name: (lambda s=split: encode(s.images), split.labels)
         for name, split in (("train", data.train),
                             ("validation", data.validation),
                             ("test", data.test)) if split.num_examples}
  return out, data.info.class_names


def _write_tfrecords(splits, names, output: str, shards: int) -> None:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from core.data import tfrecords  # pylint: disable=g-import-not-at-top
  counts = {}
  for split, (encoded, labels) in splits.items():
    n = min(shards, len(labels))
    writers = [tf.io.TFRecordWriter(os.path.join(
        output, f"{split}-{i:05d}-of-{n:05d}")) for i in range(n)]
    for i, (data, label) in enumerate(zip(encoded(), labels)):
      writers[i % n].write(tfrecords.example(data, int(label),
                                             names[int(label)]))
    for writer in writers:
      writer.close()
    counts[split] = len(labels)
  tfrecords.write_metadata(output, counts, names)


def _write_folder(splits, names, output: str) -> None:
  for split, (encoded, labels) in splits.items():
    for name in names:
      files.makedirs(os.path.join(output, split, _safe(name)))
    for i, (data, label) in enumerate(zip(encoded(), labels)):
      files.write_atomic(os.path.join(output, split, _safe(names[int(
          label)]), f"{i:06d}.png"), data, durable=False)


def _safe(name: str) -> str:
  """A class name as a folder name ('T-shirt/top' -> 'T-shirt_top')."""
  return name.replace(os.sep, "_")


def main(argv) -> int:
  del argv
  native_stderr.import_tensorflow_quietly()  # its start-up lines, filtered
  try:
    if not FLAGS.source or not FLAGS.output:
      raise errors.InputError("--source and --output are required.")
    files.check_scheme(FLAGS.output, "output")
    if FLAGS.source.startswith("folder:"):
      files.check_scheme(FLAGS.source[len("folder:"):], "source")
    if files.exists(FLAGS.output):
      raise errors.InputError(f"`output` {FLAGS.output!r} exists; choose a "
                              "new folder.")
    if FLAGS.shards < 1:
      raise errors.InputError(f"`shards` must be a positive integer; "
                              f"received shards={FLAGS.shards}.")
    splits, names = _splits(FLAGS.source)
    files.makedirs(FLAGS.output)
    if FLAGS.to == "tfrecord":
      _write_tfrecords(splits, names, FLAGS.output, FLAGS.shards)
    else:
      _write_folder(splits, names, FLAGS.output)
  except errors.EngineError as e:
    print(f"error: {e}", file=sys.stderr)
    return e.exit_code
  except ValueError as e:  # an unknown --source name
    print(f"error: {e}", file=sys.stderr)
    return errors.EXIT_USAGE
  print(f"wrote {', '.join(f'{s} ({len(v[1])})' for s, v in splits.items())}"
        f" to {FLAGS.output}")
  return 0


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
