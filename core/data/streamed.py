"""Data sets read from disk as training goes: image folders, TFRecord
shards and TensorFlow Datasets sets. Loading lists their files (and, for
shards without `dataset.json`, reads their labels once); images are decoded
by the input pipeline."""

from typing import Optional

import numpy as np

from core.data import types
from core.data import folders
from core.data import headers
from core.data import tfds
from core.data import tfrecords


def load(name: str, data_dir: Optional[str], validation_size: int,
         label_offset: int, skip_bad: bool = False) -> types.Splits:
  """The splits of a folder, shard or TFDS set, and its facts.

  Raises:
    DataError: As core/data/folders.py, core/data/tfrecords.py and
      core/data/tfds.py say.
    InputError: For a TFDS set, when TensorFlow Datasets is not installed.
  """
  if name.startswith(types.TFDS_PREFIX):
    return tfds.load(name[len(types.TFDS_PREFIX):], data_dir)
  if name == "folder":
    return _folder(data_dir, validation_size)
  return _shards(data_dir, label_offset, skip_bad)


def _folder(root: str, validation_size: int) -> types.Splits:
  names = folders.class_names(root)
  train = folders.read_split(root, "train", names)
  validation = folders.read_split(root, "validation", names)
  test = folders.read_split(root, "test", names)
  if validation is None:
    types.check_validation_size("folder", validation_size,
                                   train.num_examples)
    train, validation = folders.carve(train, validation_size)
  empty = folders.FileSplit(np.array([], dtype=object),
                            np.array([], dtype=np.int32))
  channels = folders.sniff_channels(train, headers.channels_of)
  return types.Splits(train, validation, test or empty,
                         types.DatasetInfo("folder",
                                              (None, None, channels), names))


def _shards(root: str, label_offset: int, skip_bad: bool) -> types.Splits:
  splits, names = tfrecords.describe(root, label_offset, skip_bad)
  channels = tfrecords.sniff_channels(splits["train"].files)
  return types.Splits(splits["train"], splits["validation"],
                         splits["test"],
                         types.DatasetInfo("tfrecord",
                                              (None, None, channels), names))
