"""TFRecord shards of `tf.train.Example`: `DIR/train-*`, `DIR/validation-*`,
`DIR/test-*`, ImageNet-style (and a TensorFlow Datasets set's files,
core/data/tfds.py, whose features have other names).

Each record holds `image/encoded` (JPEG or PNG bytes), `image/class/label`
(int64; `label_offset` is subtracted, 1 for ImageNet's 1-based shards) and,
optionally, `image/class/text`. The splits' sizes and the class names are read
from `DIR/dataset.json` when it is there (tools/convert.py writes it);
otherwise one pass over the labels of every shard finds them (the images are
not decoded), checks every label and names the shard and record of the first
bad one.
"""

import json
import os
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import tensorflow as tf

from core.data import headers
from core.runtime import files
from core.runtime.errors import DataError

METADATA = "dataset.json"
ENCODED, LABEL, TEXT = "image/encoded", "image/class/label", "image/class/text"
FEATURES = (ENCODED, LABEL)  # where a shard's records keep image and label
SPLITS = ("train", "validation", "test")
# Labels must be below this (after --label_offset): well above the largest
# public label sets (Google Landmarks v2: 203,094 classes); a label past it
# is a damaged record, and its class list would fill memory (review #26).
MAX_CLASSES = 1_000_000


class RecordSplit(NamedTuple):
  """One split of a shard set (a types.AnySplit): its files, how many
  records they hold, each file's size in bytes (read once, when the set
  is described; the streams check a shard's records add up to it:
  core/data/shard_stream.py; empty: stat the files when a stream is
  built), and the features its records keep the image and the label in."""
  files: Tuple[str, ...]
  num_examples: int
  sizes: Tuple[int, ...] = ()
  features: Tuple[str, str] = FEATURES

  @property
  def num_shards(self) -> int:
    return len(self.files)


def shards(root: str, split: str) -> Tuple[str, ...]:
  """The sorted files `root/<split>-*` (empty if there are none)."""
  # One listing: no look per shard (on object storage, a request each).
  return tuple(os.path.join(root, name) for name in files.scan(root)[1]
               if name.startswith(f"{split}-"))


def parse(record: tf.Tensor, features=FEATURES) -> Dict[str, tf.Tensor]:
  """A serialized Example to {encoded, label (-1 if missing), text}.

  Args:
    record: A serialized tf.train.Example.
    features: The names of its image and label features: a pair of
      strings, or a [2] string tensor that rides with the record through a
      stream of several sets' records (`RecordSplit.features`).

  Raises:
    tf.errors.InvalidArgumentError: If `record` is not an Example, or a
      feature has another type.
  """
  # tf.io.parse_single_example takes the names only as Python strings; the
  # op under it takes them as a tensor.
  names = tf.concat([tf.convert_to_tensor(features, tf.string), [TEXT]], 0)
  encoded, label, text = (value[0] for value in tf.raw_ops.ParseExampleV2(
      serialized=tf.reshape(record, [1]), names=[], sparse_keys=[],
      dense_keys=names, ragged_keys=[],
      dense_defaults=[tf.constant(""), tf.constant(-1, tf.int64),
                      tf.constant("")],
      num_sparse=0, sparse_types=[], ragged_value_types=[],
      ragged_split_types=[], dense_shapes=[[], [], []]).dense_values)
  return {"encoded": encoded, "label": label, "text": text}


BAD_RECORD_HINT = ("fix or remove the shard, or pass --skip_bad_images to "
                   "skip (and count) such records")


def _records(path: str):
  """(number, serialized record or None) of one shard; None (once, then
  the end) where the shard is damaged (TFRecordDataset cannot read past a
  CRC mismatch or a record cut short)."""
  iterator = iter(tf.data.TFRecordDataset(path))
  number = 0
  while True:
    try:
      record = next(iterator)
    except StopIteration:
      return
    except tf.errors.OpError:
      yield number, None
      return
    yield number, record
    number += 1


def _labels_of(files: Sequence[str], skip_bad: bool):
  """(label or None for a bad record, text, file, record number) of every
  record, labels only (the images are not decoded)."""
  for path in files:
    for number, record in _records(path):
      problem, example = None, None
      if record is None:
        problem = ("is damaged (a CRC mismatch or a record cut short); the "
                   "rest of the shard cannot be read")
      else:
        try:
          example = parse(record)
        except tf.errors.OpError:
          problem = "is not a tf.train.Example"
        else:
          if not example["encoded"].numpy():
            problem = f"has no {ENCODED} feature"
      if problem is None:
        yield (int(example["label"]), example["text"].numpy().decode(
            "utf-8", "replace"), path, number)
      elif skip_bad:
        yield None, "", path, number
      elif record is None and number == 0:
        raise DataError(f"{path}: not a readable TFRecord file (its first "
                        f"record is damaged or cut short); "
                        f"{BAD_RECORD_HINT}.")
      else:
        raise DataError(f"{path}: record {number} {problem}; "
                        f"{BAD_RECORD_HINT}.")


def _scan(root: str, files: Dict[str, Tuple[str, ...]], label_offset: int,
          skip_bad: bool):
  """(counts per split, class names) from one pass over the labels; a bad
  record skipped still counts (the stream reads it as a skipped image)."""
  counts, texts, largest = {}, {}, -1
  for split, paths in files.items():
    counts[split] = 0
    for label, text, path, number in _labels_of(paths, skip_bad):
      counts[split] += 1
      if label is None:
        continue
      label -= label_offset
      if label < 0:
        raise DataError(f"{path}: record {number} has label "
                        f"{label + label_offset}, below --label_offset "
                        f"{label_offset} (or no {LABEL} feature).")
      if label >= MAX_CLASSES:
        raise DataError(f"{path}: record {number} has label "
                        f"{label + label_offset}; labels must be below "
                        f"{MAX_CLASSES + label_offset} (at most "
                        f"{MAX_CLASSES} classes).")
      largest = max(largest, label)
      if text:
        texts.setdefault(label, text)
  names = tuple(texts.get(i, str(i)) for i in range(largest + 1))
  return counts, names


def describe(root: str, label_offset: int = 0, skip_bad: bool = False):
  """(RecordSplits by split name, class names) of the shards in `root`.

  `skip_bad`: a damaged record, or one that is not an Example with an
  image, is counted and left for the pipeline to skip instead of refused.

  Raises:
    DataError: No train shards, a bad label or record, or a metadata file
      that disagrees with the shards.
  """
  if not files.isdir(root):
    raise DataError(f"`data_dir` {root!r} is not a readable directory.")
  found = {s: shards(root, s) for s in SPLITS}
  if not found["train"]:
    raise DataError(f"{root}: no train-* shards; a TFRecord data set is "
                    "DIR/train-*, and optionally DIR/validation-*, "
                    "DIR/test-*.")
  meta_path = os.path.join(root, METADATA)
  if files.isfile(meta_path):
    counts, names = _read_metadata(meta_path)
  else:
    counts, names = _scan(root, found, label_offset, skip_bad)
  if len(names) < 2:
    raise DataError(f"{root}: the shards hold {len(names)} class(es); "
                    "training a classifier needs at least 2.")
  return {s: RecordSplit(found[s], counts.get(s, 0) if found[s] else 0,
                        tuple(files.size(f) for f in found[s]))
          for s in SPLITS}, names


def _read_metadata(path: str):
  try:
    meta = json.loads(files.read_text(path))
    names = tuple(str(n) for n in meta["class_names"])
    for name in names:  # JSON's \ud800 escapes make strings TF cannot take
      name.encode("utf-8")
    return {k: int(v) for k, v in meta["counts"].items()}, names
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise DataError(f"{path}: unreadable ({e}); fix or delete it (the "
                    "shards are then scanned once).") from None


def write_metadata(root: str, counts: Dict[str, int],
                   names: Sequence[str]) -> None:
  """Writes `root/dataset.json` (what `describe` reads instead of a scan)."""
  files.write_atomic(os.path.join(root, METADATA), json.dumps(
      {"counts": counts, "class_names": list(names)}, indent=2))


def example(encoded: bytes, label: int,
            text: Optional[str] = None) -> bytes:
  """A serialized Example with the features above."""
  feature = {
      ENCODED: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[encoded])),
      LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
  }
  if text is not None:
    feature[TEXT] = tf.train.Feature(bytes_list=tf.train.BytesList(
        value=[text.encode("utf-8")]))
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString()




def sniff_channels(files: Sequence[str], count: int = 8) -> int:
  """3 if any of the first `count` images of the first shard is in colour,
  else 1 (a bad record is left for the pipeline to name)."""
  for record in tf.data.TFRecordDataset(files[:1]).take(count):
    try:
      if headers.channels_of(parse(record)["encoded"]) >= 3:
        return 3
    except tf.errors.OpError:
      continue
  return 1
