"""Classifies images with an exported model: `python -m train.predict`.

  python -m train.predict --saved_model=runs/x/export/4000 shoe.jpg shirt.png
  python -m train.predict --saved_model=DIR --top_k=3 --output=json *.jpg
  python -m train.predict --saved_model=DIR t10k-images-idx3-ubyte.gz

PNG and JPEG files of any size go through the SavedModel's encoded-bytes
signature (decoded and resized inside the model, as TF Serving would); an IDX
images file (raw or .gz) gives one row per image, named FILE[i], through the
uint8 signature. One row per image with the top-k class names and
probabilities, or one JSON object per line. Exit codes as train.main's: a
missing or undecodable file is one line and exit 2.
"""

import json
import os
import sys
from typing import Dict, List, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from core import errors  # pylint: disable=g-import-not-at-top
from train import cli
from core.errors import InputError

IDX_SUFFIXES = ("-ubyte", "-ubyte.gz", ".idx", ".idx.gz")
BATCH = 64


def predict(saved_model: str, files: Sequence[str],
            top_k: int = 5) -> List[Dict]:
  """[{"file", "classes": [{"name", "index", "probability"}, ...]}], one per
  image, in the order given.

  Raises:
    InputError: A file is missing or cannot be decoded, or the SavedModel
      cannot be loaded (one line).
  """
  from train import offline  # pylint: disable=g-import-not-at-top
  loaded = offline.load_saved_model(saved_model)
  rows = []
  for path in files:
    if not os.path.isfile(path):
      raise InputError(f"{path}: no such file.")
  pictures = [p for p in files if not p.endswith(IDX_SUFFIXES)]
  outputs = {}
  for start in range(0, len(pictures), BATCH):
    chunk = pictures[start:start + BATCH]
    outputs.update(zip(chunk, _probabilities_of_files(loaded, chunk)))
  count = loaded.signatures["serving_default"].structured_outputs[
      "probabilities"].shape[-1]
  names = class_names(saved_model, count)
  for path in files:
    if path in outputs:
      rows.append(_row(path, outputs[path], names, top_k))
    else:
      for i, p in enumerate(_probabilities_of_idx(loaded, path)):
        rows.append(_row(f"{path}[{i}]", p, names, top_k))
  return rows


def _probabilities_of_files(loaded, paths):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  encoded = []
  for path in paths:
    with open(path, "rb") as f:
      encoded.append(f.read())
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
  from core import idx  # pylint: disable=g-import-not-at-top
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
    with open(os.path.join(saved_model, "assets.extra",
                           "metadata.json")) as f:
      names = json.load(f).get("class_names")
  except (OSError, ValueError):
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


def define_flags() -> None:
  """The command's flags (defined only when it runs: the Python API imports
  this module too)."""
  flags.DEFINE_string("saved_model", None, "An exported SavedModel version "
                      "folder (export/<step>).")
  flags.DEFINE_integer("top_k", 5, "Classes shown per image.", lower_bound=1)
  flags.DEFINE_enum("output", "text", ["text", "json"], "A table, or one JSON "
                    "object per line.")


FLAGS = flags.FLAGS


def main(argv: Sequence[str]) -> int:
  files = argv[1:]
  if not FLAGS.saved_model:
    return cli.fail("--saved_model is required.")
  if not files:
    return cli.fail("name at least one PNG, JPEG or IDX file to classify.")
  try:
    rows = predict(FLAGS.saved_model, files, FLAGS.top_k)
  except errors.EngineError as e:
    return cli.fail(str(e), e.exit_code)
  print("\n".join(json.dumps(r) for r in rows) if FLAGS.output == "json"
        else render(rows))
  return 0


if __name__ == "__main__":
  from absl import logging  # pylint: disable=g-import-not-at-top
  from train import native_stderr  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)
  from train import kernels  # pylint: disable=g-import-not-at-top
  define_flags()
  kernels.choose(deterministic=False)  # oneDNN where TF would not pick it
  native_stderr.import_tensorflow_quietly()
  app.run(lambda argv: sys.exit(main(argv)), flags_parser=cli.parse_flags)
