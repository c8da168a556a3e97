"""TFLite files of an exported SavedModel, from its `conversion` signature.

Four kinds, as the TFLite converter names its post-training options:
- `float32`: the graph as trained;
- `float16`: weights stored in float16 (half the file), computed in float32
  (or float16 where the device's delegate takes it);
- `int8_dynamic`: weights in int8, activations quantized on the fly
  (dynamic range: a quarter of the file, no calibration);
- `int8`: every op in int8 (TFLITE_BUILTINS_INT8), the activations' ranges
  calibrated on a representative set drawn from the training split; the
  input stays the uint8 pixels and the outputs float32.

The `conversion` signature (train/artefacts/serving.py) takes uint8 pixels at
the fixed size the model reads and holds the preprocessing, so a device
feeds pixels and reads logits; LiteRT resizes its batch dimension.
"""

import os
import warnings
from typing import Iterator, Optional, Sequence

import numpy as np
import tensorflow as tf

from core.data import batches
from core.data import images as images_lib
from core.data import types
from core.runtime import files
from core.runtime.errors import InputError
from train.artefacts import serving
from train.startup import native_stderr

KINDS = ("float32", "float16", "int8_dynamic", "int8")
# Calibration images for `int8` (TFLite's guide: "around 100-500").
REPRESENTATIVE_COUNT = 128


def convert(saved_model: str, kind: str,
            representative: Optional[np.ndarray] = None) -> bytes:
  """The .tflite file of `saved_model`'s `conversion` signature.

  Args:
    saved_model: An exported version folder (export/<step>).
    kind: One of KINDS.
    representative: uint8 images [N, H, W, C] at the signature's size; needed
      for `int8` (representative_images).

  Raises:
    ValueError: An unknown `kind`, or `int8` without `representative`.
  """
  if kind not in KINDS:
    raise ValueError(f"`kind` must be one of {', '.join(KINDS)}; received "
                     f"kind={kind!r}.")
  if kind == "int8" and representative is None:
    raise ValueError("`representative` images are needed for kind='int8'.")
  with files.literal(os.path.join(saved_model, "saved_model.pb")) as path:
    converter = tf.lite.TFLiteConverter.from_saved_model(
        os.path.dirname(path), signature_keys=[serving.CONVERSION])
    if kind != "float32":
      converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "float16":
      converter.target_spec.supported_types = [tf.float16]
    if kind == "int8":
      converter.target_spec.supported_ops = [
          tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
      converter.representative_dataset = lambda: _one_by_one(representative)
    # Calibration's own tf.lite.Interpreter warns, and its C++ prints its
    # settings to fd 2 ("fully_quantize: 0, ..."): neither reaches the user.
    with warnings.catch_warnings(), native_stderr.NativeChatterFilter(
        writers_outlive_errors=False):
      warnings.filterwarnings("ignore",
                              "(?s).*tf.lite.Interpreter is deprecated")
      return converter.convert()


def _one_by_one(images: np.ndarray) -> Iterator[dict]:
  for image in images:
    yield {"images": image[None]}


def representative_images(split: types.AnySplit,
                          shape: Sequence[int],
                          count: int = REPRESENTATIVE_COUNT,
                          seed: int = 0) -> np.ndarray:
  """`count` images drawn at random (without replacement, seeded) from
  `split`, as uint8 [count, H, W, C] at `shape` (H, W, C): rows as they are,
  files decoded and resized as a serving request's are.

  Raises:
    InputError: For TFRecord shards, which are streamed, not indexed.
  """
  if not isinstance(split, types.IndexedSplit):
    raise InputError("the int8 file's representative images are drawn from "
                     "IDX or image-folder data; records (TFRecord shards, "
                     "TFDS sets) are streamed and cannot be drawn from.")
  picked = np.sort(np.random.RandomState(seed).choice(
      split.num_examples, min(count, split.num_examples), replace=False))
  # A split is a NamedTuple of per-example arrays (rows or paths, labels).
  drawn = type(split)(*(np.asarray(field)[picked] for field in split))
  height, width, channels = shape
  return np.concatenate([
      images.numpy() if signature == "serving_default" else
      images_lib.decode_request(images, channels, height, width).numpy()
      for signature, images in batches.serving_inputs(
          drawn, images_lib.REQUEST_MAX_IMAGES)])
