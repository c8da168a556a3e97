"""TFRecord shards of `tf.train.Example`: `DIR/train-*`, `DIR/validation-*`,
`DIR/test-*`, ImageNet-style.

Each record holds `image/encoded` (JPEG or PNG bytes), `image/class/label`
(int64; `label_offset` is subtracted, 1 for ImageNet's 1-based shards) and,
optionally, `image/class/text`. The splits' sizes and the class names are read
from `DIR/dataset.json` when it is there (tools/convert.py writes it);
otherwise one pass over the labels of every shard finds them (the images are
not decoded), checks every label and names the shard and record of the first
bad one.
"""

import glob
import json
import os
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import tensorflow as tf

from core.data import images
from core.runtime.errors import DataError

METADATA = "dataset.json"
ENCODED, LABEL, TEXT = "image/encoded", "image/class/label", "image/class/text"
SPLITS = ("train", "validation", "test")


class RecordSplit(NamedTuple):
  """One split of a shard set: its files and how many records they hold."""
  files: Tuple[str, ...]
  num_examples: int


def shards(root: str, split: str) -> Tuple[str, ...]:
  """The sorted files `root/<split>-*` (empty if there are none)."""
  return tuple(sorted(p for p in glob.glob(os.path.join(root, f"{split}-*"))
                      if os.path.isfile(p)))


def parse(record: tf.Tensor) -> Dict[str, tf.Tensor]:
  """A serialized Example to {encoded, label (-1 if missing), text}."""
  parsed = tf.io.parse_single_example(record, {
      ENCODED: tf.io.FixedLenFeature([], tf.string, default_value=""),
      LABEL: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
      TEXT: tf.io.FixedLenFeature([], tf.string, default_value=""),
  })
  return {"encoded": parsed[ENCODED], "label": parsed[LABEL],
          "text": parsed[TEXT]}


def _labels_of(files: Sequence[str]):
  """(label, text, file, record number) of every record, labels only."""
  for path in files:
    try:
      for number, record in enumerate(tf.data.TFRecordDataset(path)):
        example = parse(record)
        if not example["encoded"].numpy():
          raise DataError(f"{path}: record {number} has no {ENCODED} "
                          "feature.")
        yield (int(example["label"]), example["text"].numpy().decode(
            "utf-8", "replace"), path, number)
    except tf.errors.OpError as e:
      raise DataError(f"{path}: not a readable TFRecord file "
                      f"({e.message.splitlines()[0][:120]}).") from None


def _scan(root: str, files: Dict[str, Tuple[str, ...]], label_offset: int):
  """(counts per split, class names) from one pass over the labels."""
  counts, texts, largest = {}, {}, -1
  for split, paths in files.items():
    counts[split] = 0
    for label, text, path, number in _labels_of(paths):
      label -= label_offset
      if label < 0:
        raise DataError(f"{path}: record {number} has label "
                        f"{label + label_offset}, below --label_offset "
                        f"{label_offset} (or no {LABEL} feature).")
      counts[split] += 1
      largest = max(largest, label)
      if text:
        texts.setdefault(label, text)
  names = tuple(texts.get(i, str(i)) for i in range(largest + 1))
  return counts, names


def describe(root: str, label_offset: int = 0):
  """(RecordSplits by split name, class names) of the shards in `root`.

  Raises:
    DataError: No train shards, a bad label or record, or a metadata file
      that disagrees with the shards.
  """
  if not os.path.isdir(root):
    raise DataError(f"`data_dir` {root!r} is not a readable directory.")
  files = {s: shards(root, s) for s in SPLITS}
  if not files["train"]:
    raise DataError(f"{root}: no train-* shards; a TFRecord data set is "
                    "DIR/train-*, and optionally DIR/validation-*, "
                    "DIR/test-*.")
  meta_path = os.path.join(root, METADATA)
  if os.path.isfile(meta_path):
    counts, names = _read_metadata(meta_path)
  else:
    counts, names = _scan(root, files, label_offset)
  if len(names) < 2:
    raise DataError(f"{root}: the shards hold {len(names)} class(es); "
                    "training a classifier needs at least 2.")
  return {s: RecordSplit(files[s], counts.get(s, 0) if files[s] else 0)
          for s in SPLITS}, names


def _read_metadata(path: str):
  try:
    with open(path) as f:
      meta = json.load(f)
    return ({k: int(v) for k, v in meta["counts"].items()},
            tuple(str(n) for n in meta["class_names"]))
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise DataError(f"{path}: unreadable ({e}); fix or delete it (the "
                    "shards are then scanned once).") from None


def write_metadata(root: str, counts: Dict[str, int],
                   names: Sequence[str]) -> None:
  """Writes `root/dataset.json` (what `describe` reads instead of a scan)."""
  with open(os.path.join(root, METADATA), "w") as f:
    json.dump({"counts": counts, "class_names": list(names)}, f, indent=2)


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
      if images.channels_of(parse(record)["encoded"]) >= 3:
        return 3
    except tf.errors.OpError:
      continue
  return 1
