"""Data set sources: MNIST, Fashion-MNIST (IDX files), a synthetic set,
image folders (core/data/folders.py), TFRecord shards
(core/data/tfrecords.py) and TensorFlow Datasets sets (core/data/tfds.py).

`load` returns the splits together with the data set's facts (`DatasetInfo`:
name, image shape, class names); the model, the export signature, the
summaries and the manifest take them from there. IDX and synthetic splits
hold uint8 images [N, H, W, C] and int32 labels [N] in memory; folders and
shards hold only their file lists, and the input pipeline streams them
(core/data/pipeline.py).
"""

import hashlib
import os
import urllib.request
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from core.data import idx
from core.data.types import (NAMES, STREAMED, TFDS_PREFIX, DatasetInfo,
                             Split, Splits, check_validation_size, is_known,
                             is_streamed)
from core.runtime import files
from core.runtime.errors import DataError


_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Debian's dataset-fashion-mnist installs the full set here.
FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist",)
MNIST_CACHE = os.path.join(
    os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
    "googlenet-engine", "mnist")
# The mirror TensorFlow's own datasets use; SHA-256 of each archive.
MNIST_MIRRORS = ("https://storage.googleapis.com/cvdf-datasets/mnist/",)
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz":
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz":
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz":
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz":
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
# The classes of the IDX sets, in label order (their own definitions).
_CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
}
# The synthetic set: 10 classes of 28x28 grey images, like MNIST.
_SYNTHETIC_CLASSES = 10
_SYNTHETIC_SIDE = 28


def load(name: str, *, data_dir: Optional[str] = None,
         validation_size: int = 2000, synthetic_size: int = 4096,
         download: bool = True, label_offset: int = 0,
         skip_bad: bool = False) -> Splits:
  """Loads a data set; holds out validation images where it has none.

  Args:
    name: One of NAMES, or tfds:NAME.
    data_dir: IDX sets: the folder with the four IDX files (raw or .gz);
      None searches the defaults (Debian's folder for Fashion-MNIST, a cache
      folder for MNIST). Folders and shards: required. TFDS sets: the
      folder they were prepared in; None: TFDS's own default.
    validation_size: Training images held out for validation when the data
      set has no validation split: the last ones of the IDX sets (as the
      tutorial does, 2,000), a fixed random choice of a folder's files.
      Shards without validation-* shards, and TFDS sets without a
      validation split, have none.
    synthetic_size: Training images of the synthetic set (test: a quarter).
    download: For MNIST only: download and verify the files when missing.
    label_offset: Shards: subtracted from every label (1 for ImageNet).
    skip_bad: Shards scanned for their labels: a damaged record, or one
      that is not an Example with an image, is counted (the pipeline skips
      it) instead of refused.

  Returns:
    Splits(train, validation, test, info).

  Raises:
    DataError: If the files cannot be found, read or verified, or
      `validation_size` leaves no training images.
    ValueError: If `name` is unknown.
  """
  if not is_known(name):
    raise ValueError(f"`dataset` must be one of {', '.join(NAMES)}, or "
                     f"{TFDS_PREFIX}NAME; received dataset={name!r}.")
  if is_streamed(name):
    if not data_dir and name in STREAMED:
      raise DataError(f"--dataset={name} needs --data_dir (the folder that "
                      "holds the data set).")
    # Imported here: they need TensorFlow, and this module must load without
    # it (the flags are parsed before TensorFlow is imported).
    from core.data import streamed  # pylint: disable=g-import-not-at-top
    return streamed.load(name, data_dir, validation_size, label_offset,
                         skip_bad)
  if name == "synthetic":
    train, test = synthetic(synthetic_size), synthetic(
        max(synthetic_size // 4, 1), seed=1)
    class_names = tuple(f"class {d}" for d in range(_SYNTHETIC_CLASSES))
  else:
    folder = _find_folder(name, data_dir, download)
    class_names = _CLASS_NAMES[name]
    train, test = (_read_split(folder, s, len(class_names))
                   for s in ("train", "test"))
    if train.images.shape[1:] != test.images.shape[1:]:
      raise DataError(f"{folder}: training images are "
                      f"{list(train.images.shape[1:])} but test images are "
                      f"{list(test.images.shape[1:])}.")
  check_validation_size(name, validation_size, train.num_examples)
  cut = len(train.labels) - validation_size
  info = DatasetInfo(name, tuple(int(d) for d in train.images.shape[1:]),
                     class_names)
  return Splits(Split(train.images[:cut], train.labels[:cut]),
                Split(train.images[cut:], train.labels[cut:]), test, info)


def synthetic(num_examples: int, *, seed: int = 0) -> Split:
  """A small learnable set: each class is a fixed random stroke pattern plus
  per-image noise and shift. Deterministic in (num_examples, seed)."""
  side = _SYNTHETIC_SIDE
  templates = np.random.RandomState(1234).rand(_SYNTHETIC_CLASSES, side,
                                               side) > 0.8
  rng = np.random.RandomState(seed)
  labels = rng.randint(0, _SYNTHETIC_CLASSES, size=num_examples).astype(
      np.int32)
  images = templates[labels] * 180.0 + rng.rand(num_examples, side,
                                                side) * 75.0
  shifts = rng.randint(-1, 2, size=(num_examples, 2))
  for i, (dy, dx) in enumerate(shifts):
    images[i] = np.roll(images[i], (dy, dx), axis=(0, 1))
  return Split(images.astype(np.uint8)[..., None], labels)


def _candidates(folder: str, stem: str) -> Tuple[str, ...]:
  return tuple(os.path.join(folder, stem + ext) for ext in ("", ".gz"))


def _has_files(folder: str) -> bool:
  return all(any(files.isfile(p) for p in _candidates(folder, stem))
             for pair in _FILES.values() for stem in pair)


def _find_folder(name: str, data_dir: Optional[str], download: bool) -> str:
  if data_dir is not None:
    if not files.isdir(data_dir):
      raise DataError(f"`data_dir` {data_dir!r} is not a readable directory.")
    if not _has_files(data_dir):
      raise DataError(
          f"{data_dir}: missing IDX files; expected "
          f"{', '.join(s for p in _FILES.values() for s in p)} (raw or .gz).")
    return data_dir
  defaults = FASHION_MNIST_DIRS if name == "fashion_mnist" else (MNIST_CACHE,)
  for folder in defaults:
    if _has_files(folder):
      return folder
  if name == "mnist" and download:
    return download_mnist(MNIST_CACHE)
  hint = ("install Debian's package dataset-fashion-mnist (`make data`)"
          if name == "fashion_mnist" else
          "put the four MNIST IDX files in a folder and pass --data_dir")
  raise DataError(f"{name} not found in {', '.join(defaults)}; {hint}.")


def _read_split(folder: str, split: str, num_classes: int) -> Split:
  image_stem, label_stem = _FILES[split]
  image_path = next(p for p in _candidates(folder, image_stem)
                    if files.isfile(p))
  label_path = next(p for p in _candidates(folder, label_stem)
                    if files.isfile(p))
  images, labels = idx.read(image_path), idx.read(label_path)
  if images.dtype != np.uint8 or images.ndim not in (3, 4) or 0 in (
      images.shape[1:]):
    raise DataError(f"{image_path}: expected uint8 images of shape "
                    f"[N, H, W] or [N, H, W, C]; found {images.dtype} "
                    f"{list(images.shape)}.")
  if labels.dtype != np.uint8 or labels.ndim != 1:
    raise DataError(f"{label_path}: expected uint8 labels of shape [N]; "
                    f"found {labels.dtype} {list(labels.shape)}.")
  if len(images) != len(labels):
    raise DataError(f"{image_path} holds {len(images)} images but "
                    f"{label_path} holds {len(labels)} labels.")
  if len(labels) and labels.max() >= num_classes:
    raise DataError(f"{label_path}: label {int(labels.max())} is outside "
                    f"[0, {num_classes}).")
  if images.ndim == 3:
    images = images[..., None]
  return Split(images, labels.astype(np.int32))


def download_mnist(folder: str,
                   mirrors: Sequence[str] = MNIST_MIRRORS,
                   checksums: Dict[str, str] = MNIST_SHA256,
                   timeout: float = 30.0) -> str:
  """Downloads the MNIST archives into `folder`, verifying each SHA-256.

  A file is written under a temporary name and renamed only once its checksum
  matches, so `folder` never holds an unverified archive.

  Returns:
    `folder`.

  Raises:
    DataError: If no mirror delivers a file with the expected checksum.
  """
  files.makedirs(folder)
  for name, digest in checksums.items():
    target = os.path.join(folder, name)
    if files.isfile(target) and hashlib.sha256(
        files.read_bytes(target)).hexdigest() == digest:
      continue
    faults = []
    for mirror in mirrors:
      try:
        with urllib.request.urlopen(mirror + name, timeout=timeout) as r:
          data = r.read()
      except (OSError, ValueError) as e:
        faults.append(f"{mirror}: {getattr(e, 'reason', e)}")
        continue
      if hashlib.sha256(data).hexdigest() != digest:
        faults.append(f"{mirror}: checksum mismatch")
        continue
      files.write_atomic(target, data)
      break
    else:
      raise DataError(
          f"MNIST could not be downloaded ({'; '.join(faults)}); put the four "
          "IDX files (train-images-idx3-ubyte.gz, ...) in a folder and pass "
          "--data_dir.")
  return folder

