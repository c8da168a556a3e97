"""SavedModel export for TF Serving: uint8 images in, main head only, atomic.

The signature's image shape is the data set's (DatasetInfo.image_shape).

Layout: `<export_dir>/<version>/saved_model.pb` + `variables/`, version = the
global step. The SavedModel is written to `<export_dir>/.tmp-<version>-<pid>`
(a name TF Serving ignores: not an integer) and renamed into place, so a
reader never sees half an export and a crash leaves earlier versions intact.
Only the trunk's variables are saved; the aux heads and the optimizer are not.
"""

import json
import os
import shutil
from typing import Optional, Sequence

import tensorflow as tf

from core import preprocessing
from core.errors import NoSpaceError, is_no_space
from layers.googlenet import GoogLeNet


class ServingModule(tf.Module):
  """The exported object: preprocessing + GoogLeNet's main head."""

  def __init__(self, model: GoogLeNet, image_shape: Sequence[int]):
    """Wraps `model` for images of `image_shape` (height, width, channels)."""
    super().__init__(name="serving")
    # Track only the trunk's variables; the model object itself stays out of
    # the object graph so the aux heads are not exported.
    self.weights = list(model.trunk_variables)
    image_size, channels = model.image_size, model.in_channels
    forward = model.__call__

    shape = [None, *image_shape]

    @tf.function(input_signature=[
        tf.TensorSpec(shape, tf.uint8, name="images")])
    def serve(images):
      # Signatures check the dtype but not the shape; a wrong-rank input
      # would reach oneDNN's convolution and abort the server process.
      images = tf.ensure_shape(images, shape)
      x = preprocessing.preprocess(images, image_size=image_size,
                                   channels=channels)
      logits = forward(x, training=False).logits
      return {
          "logits": logits,
          "probabilities": tf.nn.softmax(logits),
          "classes": tf.argmax(logits, axis=-1, output_type=tf.int64),
      }

    self.serve = serve


def export(model: GoogLeNet, export_dir: str, version: int, *,
           image_shape: Sequence[int],
           metadata: Optional[dict] = None) -> Optional[str]:
  """Writes `export_dir/<version>` atomically.

  Args:
    model: The trained model (may hold MirroredVariables: the SavedModel is
      written as if there were no strategy).
    export_dir: Base directory of the versions.
    version: A positive integer, normally the global step.
    image_shape: (height, width, channels) of the images the signature takes.
    metadata: Written as `assets.extra/metadata.json` (TF version, classes).

  Returns:
    The version's path, or None if that version already exists (same step,
    same weights: nothing to do).

  Raises:
    NoSpaceError: The disk filled up; nothing was published and the
      half-written copy is removed.
  """
  final = os.path.join(export_dir, str(int(version)))
  if os.path.isdir(final):
    return None
  os.makedirs(export_dir, exist_ok=True)
  tmp = os.path.join(export_dir, f".tmp-{int(version)}-{os.getpid()}")
  shutil.rmtree(tmp, ignore_errors=True)
  try:
    _write(ServingModule(model, image_shape), tmp, metadata)
  except (tf.errors.OpError, OSError) as e:
    shutil.rmtree(tmp, ignore_errors=True)
    if is_no_space(e):
      raise NoSpaceError(f"no space left in {export_dir} to export version "
                         f"{version}: free space and run the same command "
                         "again (the checkpoint is saved).") from None
    raise
  os.rename(tmp, final)
  return final


def _write(module: ServingModule, path: str, metadata: Optional[dict]):
  tf.saved_model.save(module, path,
                      signatures={"serving_default": module.serve})
  extra = os.path.join(path, "assets.extra")
  os.makedirs(extra, exist_ok=True)
  with open(os.path.join(extra, "metadata.json"), "w") as f:
    json.dump({"tensorflow_version": tf.__version__, **(metadata or {})}, f,
              indent=2)
  _fsync_tree(path)


def _fsync_tree(root: str) -> None:
  """Flushes every file so the rename publishes complete data."""
  for folder, _, files in os.walk(root):
    for name in files:
      with open(os.path.join(folder, name), "rb") as f:
        os.fsync(f.fileno())


def remove_stale_temporaries(export_dir: str) -> None:
  """Deletes `.tmp-*` folders left by a crashed export (never a version)."""
  if not os.path.isdir(export_dir):
    return
  for name in os.listdir(export_dir):
    if name.startswith(".tmp-"):
      shutil.rmtree(os.path.join(export_dir, name), ignore_errors=True)
