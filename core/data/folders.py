"""Image folders: `DIR/train/<class>/*`, and `DIR/validation/`, `DIR/test/`
where present, with JPEG, PNG, GIF or BMP files of any size.

Classes are the sorted subfolder names of `DIR/train` (the convention of
Keras `image_dataset_from_directory` and torchvision `ImageFolder`); the
validation and test folders use the same names and may leave classes out.
Only the file list is held in memory; images are read and decoded by the
input pipeline (core/data/pipeline.py). Without `DIR/validation` the validation
split is carved from train: a fixed permutation (seed 0, so it is the same
for every run seed) puts `validation_size` files aside.
"""

import os
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from core.runtime import files
from core.runtime.errors import DataError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")
SPLIT_FOLDERS = {"train": "train", "validation": "validation", "test": "test"}
_SNIFF_PER_CLASS = 2  # files per class whose channels are read at start


class FileSplit(NamedTuple):
  """One split of an image folder: paths and labels, in memory (a
  types.AnySplit)."""
  paths: np.ndarray   # str [N]
  labels: np.ndarray  # int32 [N]

  @property
  def num_examples(self) -> int:
    return len(self.labels)

  @property
  def num_shards(self) -> Optional[int]:
    return None  # files listed by row, which every worker indexes

  def take(self, n: int) -> "FileSplit":
    return FileSplit(self.paths[:n], self.labels[:n])


def _images_in(folder: str) -> List[str]:
  return [os.path.join(folder, name) for name in files.scan(folder)[1]
          if name.lower().endswith(EXTENSIONS)]


def _regular(paths: List[str]) -> List[str]:
  """`paths`, checked to be regular files once links are followed.

  Raises:
    DataError: If one is not (a named pipe or a device: its first read
      would block for ever, or never end).
  """
  for path in paths:
    # A broken link is not special: the pipeline names it as unreadable.
    if files.is_special(path):
      raise DataError(f"{files.shown(path)}: not a regular file (a named "
                      "pipe, a device, or a link to one); remove it from the "
                      "data folder.")
  return paths


def class_names(root: str) -> Tuple[str, ...]:
  """The sorted class folders of `root/train`.

  Raises:
    DataError: If there is no train folder, fewer than two classes, an
      empty class folder, or one whose name is not UTF-8 (class names go
      into summaries and the export as text).
  """
  train = os.path.join(root, SPLIT_FOLDERS["train"])
  if not files.isdir(train):
    raise DataError(f"{root}: no `train` folder; an image folder data set is "
                    "DIR/train/<class>/*.jpg (and optionally DIR/validation/,"
                    " DIR/test/).")
  names = tuple(files.scan(train)[0])
  if len(names) < 2:
    raise DataError(f"{train}: found {len(names)} class folder(s); training "
                    "a classifier needs at least 2.")
  for name in names:
    try:
      name.encode("utf-8")
    except UnicodeEncodeError:
      raise DataError(f"{files.shown(os.path.join(train, name))}: the class "
                      "folder's name is not UTF-8; rename it.") from None
    if not _images_in(os.path.join(train, name)):
      raise DataError(f"{os.path.join(train, name)}: empty class folder (no "
                      f"{', '.join(EXTENSIONS)} files).")
  return names


def read_split(root: str, split: str,
               names: Sequence[str]) -> Optional[FileSplit]:
  """The files of `root/<split>`, labelled by `names`; None if absent.

  Raises:
    DataError: If it holds a class folder that train does not.
  """
  folder = os.path.join(root, SPLIT_FOLDERS[split])
  if not files.isdir(folder):
    return None
  index = {name: i for i, name in enumerate(names)}
  paths, labels = [], []
  for name in files.scan(folder)[0]:
    if name not in index:
      raise DataError(f"{os.path.join(folder, name)}: class {name!r} is not "
                      f"among the train folder's classes.")
    found = _regular(_images_in(os.path.join(folder, name)))
    paths += found
    labels += [index[name]] * len(found)
  return FileSplit(np.array(paths, dtype=object),
                   np.array(labels, dtype=np.int32))


def carve(train: FileSplit, size: int) -> Tuple[FileSplit, FileSplit]:
  """(train, validation): `size` files set aside by a fixed permutation."""
  order = np.random.RandomState(0).permutation(train.num_examples)
  keep, held = np.sort(order[:len(order) - size]), np.sort(order[len(order)
                                                                - size:])
  return (FileSplit(train.paths[keep], train.labels[keep]),
          FileSplit(train.paths[held], train.labels[held]))


def sniff_channels(train: FileSplit, read_channels) -> int:
  """3 if any of the first files of each class is in colour, else 1.

  Args:
    train: The training files.
    read_channels: bytes -> channels (core/data/headers.channels_of).
  """
  seen = {}
  for path, label in zip(train.paths, train.labels):
    if seen.get(label, 0) >= _SNIFF_PER_CLASS:
      continue
    seen[label] = seen.get(label, 0) + 1
    try:
      if read_channels(files.read_bytes(path)) >= 3:
        return 3
    except Exception:  # pylint: disable=broad-except
      continue  # a bad file is found (and named) by the pipeline
  return 1
