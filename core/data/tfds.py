"""TensorFlow Datasets sets by name (`--dataset=tfds:NAME`), read from the
TFRecord files a TFDS builder prepared on disk.

TFDS describes the set: its splits' files and sizes, and its features. The
engine's own shard stream (core/data/shard_stream.py) reads the files, so a
TFDS set resumes exactly and is dealt out to workers a file each, as
`--dataset=tfrecord`'s shards are. Two features are read: the image (an
`Image` of uint8, stored as PNG or JPEG) and the label (a `ClassLabel`,
whose names are the class names), named by the set's supervised keys, else
`image` and `label`. Images are read at --image_size, as shards' are.

The engine never downloads or prepares a set (`tfds build NAME
--data_dir=DIR` does). A set without a validation split has none: its
records, like shards, cannot be cut.
"""

import os
from typing import Optional, Tuple

import numpy as np

from core.data import tfrecords
from core.data import types
from core.runtime import files
from core.runtime.errors import DataError, InputError

INSTALL = ("install the engine's tfds extra (pip install -e '.[tfds]' in its "
           "checkout) or pip install tensorflow-datasets")
# The features TFDS's image classification sets keep image and label in,
# read where a set names no supervised keys.
DEFAULT_FEATURES = ("image", "label")
_CHANNELS = (1, 3)  # what the decoders give (core/data/images.py)


def load(name: str, data_dir: Optional[str]) -> types.Splits:
  """The splits of the prepared TFDS set `name`, and its facts.

  Args:
    name: As TFDS takes it: name[/config][:version].
    data_dir: The folder the set was prepared in; None: TFDS's default.

  Raises:
    InputError: If TensorFlow Datasets is not installed.
    DataError: If the set is not prepared there, is not stored as TFRecord
      files, has no train split or a class count outside 2..MAX_CLASSES,
      has no uint8
      image and ClassLabel features, or misses a file.
  """
  builder = _builder(name, data_dir)
  info = builder.info
  if info.file_format.value != "tfrecord":
    raise DataError(f"tfds:{name} is stored as {info.file_format.value} "
                    "files; the engine reads TFRecord files: prepare it "
                    "with `tfds build --file_format=tfrecord`.")
  image, label = _features(name, info)
  splits = {s: _split(builder, s, (image, label)) for s in tfrecords.SPLITS}
  if not splits["train"].num_examples:
    raise DataError(f"tfds:{name} has no train split (its splits: "
                    f"{', '.join(sorted(info.splits)) or 'none'}).")
  count = info.features[label].num_classes
  if not 2 <= count <= tfrecords.MAX_CLASSES:
    raise DataError(f"tfds:{name}: its label {label!r} has {count} "
                    "class(es); the engine trains a classifier of 2 to "
                    f"{tfrecords.MAX_CLASSES:,}.")
  names = tuple(info.features[label].names)
  return types.Splits(**splits, info=types.DatasetInfo(
      types.TFDS_PREFIX + name, (None, None, info.features[image].shape[-1]),
      names))


def _builder(name: str, data_dir: Optional[str]):
  """TFDS's builder of the set `name` prepared in `data_dir`: a read-only
  one, from the files, when no code defines the set in this process."""
  try:
    import tensorflow_datasets  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise InputError(f"--dataset=tfds:{name} needs TensorFlow Datasets: "
                     f"{INSTALL}.") from None
  where = data_dir or "TFDS's default folder"
  hint = (f"prepare it there first (`tfds build {name} --data_dir=DIR`); "
          "the engine never downloads a set")
  try:
    builder = tensorflow_datasets.builder(name, data_dir=data_dir)
  # A bad name or none found (ValueError), a version not prepared
  # (TFDS asserts): its first line.
  except (ValueError, AssertionError) as e:
    raise DataError(f"tfds:{name}: no prepared set of that name in {where} "
                    f"({str(e).splitlines()[0]}); {hint}.") from None
  if not builder.is_prepared():
    raise DataError(f"tfds:{name}: not prepared in {where} (no "
                    f"{builder.data_dir}); {hint}.")
  return builder


def _features(name: str, info) -> Tuple[str, str]:
  """(image, label): the names of the features read, checked to be a
  uint8 image of 1 or 3 channels and a class label."""
  keys = info.supervised_keys or DEFAULT_FEATURES
  kinds = {key: type(feature).__name__
           for key, feature in info.features.items()}
  if (len(keys) != 2 or not all(isinstance(k, str) for k in keys)
      or kinds.get(keys[0]) != "Image" or kinds.get(keys[1]) != "ClassLabel"):
    raise DataError(
        f"tfds:{name}: the engine reads an Image feature and a ClassLabel "
        f"(the set's supervised keys, else {DEFAULT_FEATURES}); its "
        f"supervised keys are {info.supervised_keys} and its features "
        f"{kinds}.")
  image = info.features[keys[0]]
  if image.np_dtype != np.uint8 or image.shape[-1] not in _CHANNELS:
    raise DataError(f"tfds:{name}: its images {keys[0]!r} are "
                    f"{np.dtype(image.np_dtype).name} of shape "
                    f"{image.shape}; the engine reads uint8 images of "
                    f"{' or '.join(map(str, _CHANNELS))} channels.")
  return keys


def _split(builder, split: str,
           features: Tuple[str, str]) -> tfrecords.RecordSplit:
  """The split's files with their sizes (none if the set has no `split`)."""
  if split not in builder.info.splits:
    return tfrecords.RecordSplit((), 0, features=features)
  found = builder.info.splits[split]
  paths = tuple(os.path.join(str(builder.data_dir), filename)
                for filename in found.filenames)
  try:
    sizes = tuple(files.size(path) for path in paths)
  except OSError as e:
    raise DataError(f"tfds:{builder.info.full_name}: a file of its {split} "
                    f"split cannot be read ({e}); prepare the set "
                    "again.") from None
  return tfrecords.RecordSplit(paths, found.num_examples, sizes,
                               tuple(features))
