"""Data sets read from disk as training goes: image folders and TFRecord
shards. Loading lists their files (and, for shards without `dataset.json`,
reads their labels once); images are decoded by the input pipeline."""

import numpy as np

from core import datasets
from core import folders
from core import images
from core import tfrecords


def load(name: str, data_dir: str, validation_size: int,
         label_offset: int) -> datasets.Splits:
  """The splits of a folder or shard set, and its facts.

  Raises:
    DataError: As core/folders.py and core/tfrecords.py say.
  """
  if name == "folder":
    return _folder(data_dir, validation_size)
  return _shards(data_dir, label_offset)


def _folder(root: str, validation_size: int) -> datasets.Splits:
  names = folders.class_names(root)
  train = folders.read_split(root, "train", names)
  validation = folders.read_split(root, "validation", names)
  test = folders.read_split(root, "test", names)
  if validation is None:
    datasets.check_validation_size("folder", validation_size,
                                   train.num_examples)
    train, validation = folders.carve(train, validation_size)
  empty = folders.FileSplit(np.array([], dtype=object),
                            np.array([], dtype=np.int32))
  channels = folders.sniff_channels(train, images.channels_of)
  return datasets.Splits(train, validation, test or empty,
                         datasets.DatasetInfo("folder",
                                              (None, None, channels), names))


def _shards(root: str, label_offset: int) -> datasets.Splits:
  splits, names = tfrecords.describe(root, label_offset)
  channels = tfrecords.sniff_channels(splits["train"].files)
  return datasets.Splits(splits["train"], splits["validation"],
                         splits["test"],
                         datasets.DatasetInfo("tfrecord",
                                              (None, None, channels), names))
