"""The data types every room shares, without TensorFlow or a reader: the
data set names, a data set's facts (`DatasetInfo`), what every split offers
(`AnySplit`), an in-memory split and the three splits. The command line
imports them before TensorFlow loads; the readers (core/data/datasets.py,
core/data/streamed.py) build them."""

import dataclasses
from typing import NamedTuple, Optional, Protocol, Tuple, runtime_checkable

import numpy as np

from core.runtime.errors import DataError

NAMES = ("mnist", "fashion_mnist", "synthetic", "folder", "tfrecord")
STREAMED = ("folder", "tfrecord")  # read from disk as training goes
# tfds:NAME: a TensorFlow Datasets set prepared on disk, streamed as shards
# are (core/data/tfds.py); NAME as TFDS takes it (name[/config][:version]).
TFDS_PREFIX = "tfds:"


def is_known(name: str) -> bool:
  """Whether `name` names a data set: one of NAMES, or tfds:NAME."""
  return name in NAMES or (name.startswith(TFDS_PREFIX)
                           and len(name) > len(TFDS_PREFIX))


def is_streamed(name: str) -> bool:
  """Whether the set `name` is read from disk as training goes (folders,
  shards, TFDS sets) rather than held in memory."""
  return name in STREAMED or name.startswith(TFDS_PREFIX)


def is_records(name: str) -> bool:
  """Whether the set `name` is a stream of records (shards, TFDS sets):
  not indexed, so it cannot be cut, its labels are not known before
  training, and each worker reads its own files."""
  return name == "tfrecord" or name.startswith(TFDS_PREFIX)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What the rest of the engine needs to know about a data set.

  Attributes:
    name: The data set's name ("fashion_mnist", ...).
    image_shape: (height, width, channels) of the stored images; height and
      width are None where images come in any size (folders, shards).
    class_names: One name per label, in label order.
  """
  name: str
  image_shape: Tuple[Optional[int], Optional[int], int]
  class_names: Tuple[str, ...]

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  @property
  def channels(self) -> int:
    return self.image_shape[-1]

  def as_dict(self) -> dict:
    """JSON-ready facts for the manifest and the export's metadata."""
    return {"name": self.name, "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names)}


@runtime_checkable
class AnySplit(Protocol):
  """What the engine may ask of any split, whatever holds its examples:
  `Split` (rows in memory), `folders.FileSplit` (image files) or
  `tfrecords.RecordSplit` (shards). Which kind a split is only
  core/data/batches.py asks, to pick its reader."""

  @property
  def num_examples(self) -> int:
    """Its examples (0 for a split the data set does not have)."""

  @property
  def num_shards(self) -> Optional[int]:
    """The files its examples are dealt out in, whole, one worker reading
    each (shards); None where every worker indexes all the examples."""


@runtime_checkable
class IndexedSplit(AnySplit, Protocol):
  """A split whose examples are indexed (rows in memory, image files), so
  it can be cut; shards are streamed and cannot (RunConfig refuses
  --train_examples for them)."""

  def take(self, n: int) -> "IndexedSplit":
    """Its first `n` examples (all, when it has fewer), as a split of the
    same kind."""


class Split(NamedTuple):
  """One split of a data set, in host memory (an `AnySplit`)."""
  images: np.ndarray  # uint8 [N, H, W, C]
  labels: np.ndarray  # int32 [N]

  @property
  def num_examples(self) -> int:
    return len(self.labels)

  @property
  def num_shards(self) -> Optional[int]:
    return None  # rows, which every worker indexes

  def take(self, n: int) -> "Split":
    return Split(self.images[:n], self.labels[:n])


class Splits(NamedTuple):
  """The three splits and the facts they share."""
  train: AnySplit
  validation: AnySplit
  test: AnySplit
  info: DatasetInfo


def check_validation_size(name: str, validation_size: int,
                          train_examples: int) -> None:
  """Raises DataError unless `validation_size` leaves training images."""
  if not 0 <= validation_size < train_examples:
    raise DataError(
        f"`validation_size` must be in [0, {train_examples}) for "
        f"{name}, which has {train_examples} training images; received "
        f"validation_size={validation_size}.")
