"""Converts an exported model for devices and other runtimes:
`python -m train.convert`.

  python -m train.convert --saved_model=runs/x/export/4000 --model_dir=runs/x
  python -m train.convert --saved_model=runs/x/export/4000 \\
      --formats=tflite_float16,onnx --output_dir=deploy

Each format is one file in --output_dir (default `<saved_model>-converted`,
a folder name TF Serving and the export's versions ignore), converted from
the SavedModel's `conversion` signature (uint8 pixels at the training size
in, logits and probabilities out, the preprocessing inside):
`tflite_float32`, `tflite_float16`, `tflite_int8_dynamic` and `tflite_int8`
(train/artefacts/tflite_model.py; the last calibrated on images drawn from
the training split of --model_dir's data, as its manifest.json names it)
and `onnx` (train/artefacts/onnx_model.py, the `onnx` extra). Each runs
with numpy and its runtime alone (train/artefacts/standalone.py). One line
per file written; flags from ConvertOptions; start-up, one-line errors and
exit codes as train.main's (train/startup/cli.py).
"""

import dataclasses
import importlib.util
import os
from typing import Callable, Dict, Optional, Sequence, Tuple

from core.runtime import errors
from core.runtime.errors import InputError
from train.startup import cli
from train.startup.config import option

# Format -> (file name, the module it needs and the extra that brings it).
FORMATS = {
    "tflite_float32": ("float32.tflite", None),
    "tflite_float16": ("float16.tflite", None),
    "tflite_int8_dynamic": ("int8_dynamic.tflite", None),
    "tflite_int8": ("int8.tflite", None),
    "onnx": ("model.onnx", ("tf2onnx", "onnx")),
}
CALIBRATED = "tflite_int8"


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
  """train.convert's option table: each field is the flag of its name.

  Raises (on creation):
    InputError: Without --saved_model, with an unknown format, or with
      tflite_int8 and no --model_dir.
  """
  saved_model: str = option(
      "", "An exported SavedModel version folder (export/<step>).")
  formats: Tuple[str, ...] = option(
      tuple(FORMATS), f"Comma-separated, of {', '.join(FORMATS)}.")
  model_dir: Optional[str] = option(
      None, "The training run whose training split calibrates tflite_int8 "
      "(its manifest.json names the data).")
  data_dir: Optional[str] = option(
      None, "Another folder of the run's data set kind (default: the run's "
      "own).")
  output_dir: Optional[str] = option(
      None, "Where the files go (default: <saved_model>-converted).")

  def __post_init__(self):
    if not self.saved_model:
      raise InputError("--saved_model is required.")
    unknown = [f for f in self.formats if f not in FORMATS]
    if unknown or not self.formats:
      raise InputError(f"`formats` must be a comma-separated list of "
                       f"{', '.join(FORMATS)}; received formats="
                       f"{','.join(self.formats)!r}.")
    if CALIBRATED in self.formats and not self.model_dir:
      raise InputError(f"{CALIBRATED} is calibrated on the training split "
                       "of a run: name the run with --model_dir, or leave "
                       f"{CALIBRATED} out of --formats.")


def require(formats: Sequence[str]) -> None:
  """Raises InputError, naming the extra to install, when a format's
  converter is not installed (before anything is loaded or written)."""
  for name in formats:
    needs = FORMATS[name][1]
    if needs and importlib.util.find_spec(needs[0]) is None:
      raise InputError(f"the {name} format needs {needs[0]}: install the "
                       f"project's `{needs[1]}` extra (pip install -e "
                       f"'.[{needs[1]}]').")


def convert(saved_model: str, formats: Sequence[str] = tuple(FORMATS), *,
            output_dir: Optional[str] = None, model_dir: Optional[str] = None,
            data_dir: Optional[str] = None,
            report: Callable[[str], None] = print) -> Dict[str, str]:
  """Writes one file per format; returns {format: path}.

  Raises:
    InputError: A missing converter, a SavedModel this engine did not export
      (or exported before it had a `conversion` signature), a run whose
      data cannot calibrate tflite_int8, or an output folder that cannot be
      written (one line each).
    ExportError: A converter failed (no file for that format).
    NoSpaceError: The disk filled up (files written before are intact).
  """
  require(formats)
  # pylint: disable=g-import-not-at-top
  from core.runtime import files
  from train.artefacts import serving
  from train.assembly import offline
  # pylint: enable=g-import-not-at-top
  loaded = offline.load_saved_model(saved_model)
  if serving.CONVERSION not in loaded.signatures:
    raise InputError(f"`saved_model` {saved_model!r} has no "
                     f"`{serving.CONVERSION}` signature (exported by an older "
                     "engine): export the run's weights again.")
  signature = loaded.signatures[serving.CONVERSION]
  shape = tuple(signature.structured_input_signature[1]["images"].shape[1:])
  representative = (_representative(model_dir, data_dir, shape)
                    if CALIBRATED in formats else None)
  output_dir = output_dir or saved_model.rstrip("/") + "-converted"
  _writing(output_dir, lambda: files.makedirs(output_dir))
  written = {}
  for name in formats:
    data = _converted(name, saved_model, representative)
    written[name] = path = os.path.join(output_dir, FORMATS[name][0])
    _writing(output_dir, lambda: files.write_atomic(path, data))
    report(f"{name}: {path} ({errors.megabytes(len(data))})")
  return written


def _converted(name: str, saved_model: str, representative) -> bytes:
  """The file of format `name` (a key of FORMATS).

  Raises:
    ExportError: The converter failed (one line; no file for it).
  """
  # pylint: disable=g-import-not-at-top
  from train.artefacts import onnx_model
  from train.artefacts import tflite_model
  # pylint: enable=g-import-not-at-top
  try:
    if name == "onnx":
      return onnx_model.convert(saved_model)
    return tflite_model.convert(saved_model, name[len("tflite_"):],
                                representative)
  except errors.EngineError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    # The converters' own failures (tf.lite's ConverterError, tf2onnx's many
    # kinds): one line.
    why = (str(e).strip() or type(e).__name__).splitlines()[0]
    raise errors.ExportError(f"{name}: the converter failed ({why}); no "
                             f"{name} file was written.") from None


def _writing(output_dir: str, write: Callable[[], None]) -> None:
  """Runs `write` into `output_dir`, its failures as one line.

  Raises:
    NoSpaceError: The disk is full (what was written before is intact).
    InputError: The folder cannot be made or written (a file in its way,
      no permission).
  """
  try:
    write()
  except OSError as e:  # the file layer's errors are OSErrors
    if errors.is_no_space(e):
      raise errors.NoSpaceError(f"no space left writing into {output_dir}: "
                                "free some and run the command again.") \
          from None
    raise InputError(f"`output_dir` {output_dir!r} cannot be written "
                     f"({e}).") from None


def _representative(model_dir: str, data_dir: Optional[str], shape):
  """tflite_model.representative_images of the run's training split."""
  # pylint: disable=g-import-not-at-top
  from train.artefacts import tflite_model
  from train.artefacts.report import run_config
  from train.assembly import build
  # pylint: enable=g-import-not-at-top
  config = run_config(model_dir, data_dir=data_dir, model_dir=model_dir)
  images = tflite_model.representative_images(build.load_data(config).train,
                                              shape)
  if images.shape[1:] != shape:
    raise InputError(f"{model_dir}'s training images are "
                     f"{'x'.join(map(str, images.shape[1:]))}, but the "
                     f"SavedModel reads {'x'.join(map(str, shape))}: name "
                     "the run it was exported from.")
  return images


def command(settings: ConvertOptions, args) -> int:
  """The command: converts as `settings` say, one line per file."""
  del args  # the command takes none (cli.run refuses them)
  require(settings.formats)  # before TensorFlow's seconds of loading
  cli.load_tensorflow(deterministic=False)
  convert(settings.saved_model, settings.formats,
          output_dir=settings.output_dir, model_dir=settings.model_dir,
          data_dir=settings.data_dir)
  return 0


if __name__ == "__main__":
  cli.run(ConvertOptions, command)
