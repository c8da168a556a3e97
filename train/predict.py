"""Classifies images with an exported model: `python -m train.predict`.

  python -m train.predict --saved_model=runs/x/export/4000 shoe.jpg shirt.png
  python -m train.predict --saved_model=DIR --top_k=3 --output=json *.jpg
  python -m train.predict --saved_model=DIR t10k-images-idx3-ubyte.gz

PNG and JPEG files of any size go through the SavedModel's encoded-bytes
signature (decoded and resized inside the model, as TF Serving would); an IDX
images file (raw or .gz) gives one row per image, named FILE[i], through the
uint8 signature. One row per image with the top-k class names and
probabilities, or one JSON object per line. Its flags come from the option
table PredictOptions; start-up, errors and exit codes are train.main's
(train/startup/cli.py): a missing or undecodable file is one line, exit 2.
"""

import dataclasses
import json
import os
from typing import Dict, List, Sequence

from core.runtime import files
from core.runtime.errors import InputError
from train.startup.config import option
from train.startup import cli

IDX_SUFFIXES = ("-ubyte", "-ubyte.gz", ".idx", ".idx.gz")
BATCH = 64


def predict(saved_model: str, images: Sequence[str],
            top_k: int = 5) -> List[Dict]:
  """[{"file", "classes": [{"name", "index", "probability"}, ...]}], one per
  image, in the order given.

  Raises:
    InputError: A file is missing or cannot be decoded, or the SavedModel
      cannot be loaded (one line).
  """
  from train.assembly import offline  # pylint: disable=g-import-not-at-top
  loaded = offline.load_saved_model(saved_model)
  rows = []
  for path in images:
    if not files.isfile(path):
      raise InputError(f"{path}: no such file.")
  pictures = [p for p in images if not p.endswith(IDX_SUFFIXES)]
  outputs = {}
  for start in range(0, len(pictures), BATCH):
    chunk = pictures[start:start + BATCH]
    outputs.update(zip(chunk, _probabilities_of_files(loaded, chunk)))
  count = loaded.signatures["serving_default"].structured_outputs[
      "probabilities"].shape[-1]
  names = class_names(saved_model, count)
  for path in images:
    if path in outputs:
      rows.append(_row(path, outputs[path], names, top_k))
    else:
      for i, p in enumerate(_probabilities_of_idx(loaded, path)):
        rows.append(_row(f"{path}[{i}]", p, names, top_k))
  return rows


def _probabilities_of_files(loaded, paths):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  encoded = [files.read_bytes(path) for path in paths]
  try:
    result = loaded.signatures["serving_bytes"](images=tf.constant(encoded))
  except tf.errors.InvalidArgumentError:
    for path, data in zip(paths, encoded):  # which file: one at a time
      try:
        loaded.signatures["serving_bytes"](images=tf.constant([data]))
      except tf.errors.InvalidArgumentError:
        raise InputError(f"{path}: not a PNG or JPEG image this model can "
                         "decode.") from None
    raise
  return result["probabilities"].numpy()


def _probabilities_of_idx(loaded, path):
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from core.data import idx  # pylint: disable=g-import-not-at-top
  images = idx.read(path)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.dtype != np.uint8:
    raise InputError(f"{path}: an IDX file of uint8 images is needed "
                     f"(found shape {images.shape}, {images.dtype}).")
  out = []
  for start in range(0, len(images), BATCH):
    result = loaded.signatures["serving_default"](
        images=tf.constant(images[start:start + BATCH]))
    out.append(result["probabilities"].numpy())
  return np.concatenate(out) if out else np.zeros([0, 0])


def _row(name: str, probabilities, names: Sequence[str],
         top_k: int) -> Dict:
  order = probabilities.argsort()[::-1][:top_k]
  return {"file": name, "classes": [
      {"name": names[i], "index": int(i),
       "probability": round(float(probabilities[i]), 6)} for i in order]}


def class_names(saved_model: str, count: int) -> List[str]:
  """The names the export recorded in assets.extra/metadata.json."""
  try:
    names = json.loads(files.read_text(os.path.join(
        saved_model, "assets.extra", "metadata.json"))).get("class_names")
  except (OSError, ValueError, AttributeError):
    names = None
  return list(names) if names and len(names) == count else [
      f"class {i}" for i in range(count)]


def render(rows: List[Dict]) -> str:
  """One line per image: its file, then the top-k names and probabilities."""
  width = max([len(r["file"]) for r in rows] + [4])
  return "\n".join(
      f"{r['file']:<{width}}  " + "  ".join(
          f"{c['name']} {c['probability']:.4f}" for c in r["classes"])
      for r in rows)


@dataclasses.dataclass(frozen=True)
class PredictOptions:
  """train.predict's option table: each field is the flag of its name.

  Raises (on creation):
    InputError: Without --saved_model, or with --top_k below 1.
  """
  saved_model: str = option(
      "", "An exported SavedModel version folder (export/<step>).")
  top_k: int = option(5, "Classes shown per image.")
  output: str = option("text", "A table, or one JSON object per line.",
                       choices=("text", "json"))

  def __post_init__(self):
    if not self.saved_model:
      raise InputError("--saved_model is required.")
    if self.top_k < 1:
      raise InputError(f"`top_k` must be at least 1; received "
                       f"top_k={self.top_k}.")


def classify(settings: PredictOptions, images: List[str]) -> int:
  """The command: one row (or JSON line) per file of `images`."""
  cli.load_tensorflow(deterministic=False)  # oneDNN where TF would not pick it
  # A name that is not UTF-8 is shown with \xNN escapes: JSON holds text,
  # and a strict UTF-8 stdout refuses the surrogates Python reads it as.
  rows = [dict(r, file=files.shown(r["file"]))
          for r in predict(settings.saved_model, images, settings.top_k)]
  if settings.output == "json":
    print("\n".join(json.dumps(r) for r in rows))
  else:
    print(render(rows))
  return 0


if __name__ == "__main__":
  cli.run(PredictOptions, classify,
          arguments="PNG, JPEG or IDX file to classify")
