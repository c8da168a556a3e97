"""`python -m train.convert` on a trained run: every format, each run where a
device would run it (LiteRT or onnxruntime, no TensorFlow, not the
project), against the SavedModel; and its one-line errors."""

import errno
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest
from unittest import mock

import numpy as np
import tensorflow as tf

import train
from core.runtime import errors
from core.runtime import files
from core.runtime.errors import InputError
from layers.googlenet import GoogLeNet
from tests import helpers
from train import convert
from train.artefacts import serving
from train.artefacts import standalone
from train.artefacts import tflite_model
from train.artefacts.report import run_config
from train.assembly import build


def command(*args: str, blocked: str = ""):
  """Runs `python -m train.convert ARGS`, with the package `blocked` (if
  any) missing, as on a machine without it."""
  code = textwrap.dedent(f"""
      import runpy, sys
      if {blocked!r}:
        sys.modules[{blocked!r}] = None  # what `import` and find_spec miss
      runpy.run_module("train.convert", run_name="__main__")
      """)
  return subprocess.run(
      [sys.executable, "-c", code, *args], cwd=helpers.ROOT,
      env=helpers._env(),  # pylint: disable=protected-access
      capture_output=True, text=True, timeout=600)


class ConvertTest(unittest.TestCase):

  @classmethod
  def setUpClass(cls):
    cls.dir = tempfile.mkdtemp()
    result = train.fit(
        model_dir=cls.dir, dataset="synthetic", image_size=28,
        global_batch_size=16, validation_size=64, train_examples=160,
        epochs=1, strategy="mirrored", num_cpu_devices=2, steps_per_loop=5,
        blocks=helpers.SMALL_BLOCKS, report=lambda line: None)
    cls.saved_model = result.export_path
    cls.done = command(f"--saved_model={cls.saved_model}",
                       f"--model_dir={cls.dir}")
    test = build.load_data(run_config(cls.dir)).test
    cls.images = np.asarray(test.images[:200])
    cls.want = tf.saved_model.load(cls.saved_model).signatures[
        "serving_default"](images=tf.constant(cls.images))["logits"].numpy()

  def run_format(self, name: str) -> np.ndarray:
    path = os.path.join(self.saved_model + "-converted",
                        convert.FORMATS[name][0])
    return standalone.run_apart(path, self.images)["logits"]

  def agreement(self, logits: np.ndarray) -> float:
    return float((logits.argmax(-1) == self.want.argmax(-1)).mean())

  def test_one_line_per_file(self):
    self.assertEqual(self.done.returncode, 0, self.done.stderr[-3000:])
    # TF Lite's int8 calibrator prints its settings to fd 2 (filtered).
    self.assertNotIn("fully_quantize", self.done.stderr)
    lines = self.done.stdout.strip().splitlines()
    self.assertEqual([line.split(":")[0] for line in lines],
                     list(convert.FORMATS))
    for line, (file_name, _) in zip(lines, convert.FORMATS.values()):
      path = os.path.join(self.saved_model + "-converted", file_name)
      self.assertIn(f": {path} (", line)
      self.assertTrue(os.path.isfile(path))

  def test_float_formats_give_the_saved_models_classes(self):
    for name in ("tflite_float32", "onnx"):
      self.assertEqual(self.agreement(self.run_format(name)), 1.0, name)
    # float16 weights move a logit by about 5e-4 of the largest: a near tie
    # may flip (none did here).
    self.assertGreaterEqual(self.agreement(self.run_format("tflite_float16")),
                            0.99)
    scale = np.abs(self.want).max()
    self.assertLess(np.abs(self.run_format("onnx") - self.want).max(),
                    1e-4 * scale)

  def test_int8_formats_agree_within_quantization_error(self):
    for name in ("tflite_int8_dynamic", "tflite_int8"):
      self.assertGreaterEqual(self.agreement(self.run_format(name)), 0.9,
                              name)

  def test_a_missing_converter_is_one_line_naming_the_extra(self):
    done = command(f"--saved_model={self.saved_model}", "--formats=onnx",
                   blocked="tf2onnx")
    self.assertEqual(done.returncode, 2)
    self.assertEqual(done.stderr.strip(), "error: the onnx format needs "
                     "tf2onnx: install the project's `onnx` extra (pip "
                     "install -e '.[onnx]').")

  def test_flag_errors_are_one_line(self):
    for args, line in (
        ([], "error: --saved_model is required."),
        (["--saved_model=x", "--formats=tflite_float32,coreml"],
         "error: `formats` must be a comma-separated list of tflite_float32, "
         "tflite_float16, tflite_int8_dynamic, tflite_int8, onnx; received "
         "formats='tflite_float32,coreml'."),
        (["--saved_model=x", "--formats=tflite_int8"],
         "error: tflite_int8 is calibrated on the training split of a run: "
         "name the run with --model_dir, or leave tflite_int8 out of "
         "--formats.")):
      done = command(*args)
      self.assertEqual(done.returncode, 2, done.stderr)
      self.assertEqual(done.stderr.strip(), line)

  def test_an_output_folder_that_cannot_be_made_is_one_line(self):
    blocker = os.path.join(self.dir, "a-file")
    with open(blocker, "w") as f:
      f.write("in the way")
    done = command(f"--saved_model={self.saved_model}",
                   f"--output_dir={blocker}/out", "--formats=tflite_float32")
    self.assertEqual(done.returncode, 2, done.stderr[-2000:])
    self.assertRegex(done.stderr, rf"^error: `output_dir` '{blocker}/out' "
                     r"cannot be written \([^\n]*\)\.\n$")

  def test_a_converter_failure_is_one_line_and_writes_nothing(self):
    out = os.path.join(self.dir, "failed")
    with mock.patch.object(tflite_model, "convert", side_effect=ValueError(
        "Some ops are not supported\nmany more lines")):
      with self.assertRaisesRegex(errors.ExportError,
                                  r"^tflite_float16: the converter failed "
                                  r"\(Some ops are not supported\); no "
                                  r"tflite_float16 file was written\.$"):
        convert.convert(self.saved_model, ("tflite_float16",),
                        output_dir=out)
    self.assertEqual(os.listdir(out), [])

  def test_a_full_disk_is_one_line(self):
    out = os.path.join(self.dir, "full")
    with mock.patch.object(files, "write_atomic", side_effect=OSError(
        errno.ENOSPC, "No space left on device")):
      with self.assertRaisesRegex(errors.NoSpaceError,
                                  rf"^no space left writing into {out}: free "
                                  r"some and run the command again\.$") as e:
        convert.convert(self.saved_model, ("tflite_float32",),
                        output_dir=out)
    self.assertEqual(e.exception.exit_code, 74)

  def test_a_run_of_another_image_size_cannot_calibrate(self):
    with self.assertRaisesRegex(InputError, r"'s training images are "
                                r"28x28x1, but the SavedModel reads "
                                r"32x32x1: name the run it was exported "
                                r"from\.$"):
      convert._representative(self.dir, None, (32, 32, 1))  # pylint: disable=protected-access

  def test_an_export_without_the_conversion_signature_is_one_line(self):
    # As an engine before the signature wrote them: the serving pair only.
    module = serving.ServingModule(
        GoogLeNet(10, 1, 28, blocks=helpers.SMALL_BLOCKS), (28, 28, 1),
        [str(i) for i in range(10)])
    path = os.path.join(self.dir, "older")
    tf.saved_model.save(module, path, signatures={
        "serving_default": module.serve, "serving_bytes": module.serve_bytes})
    done = command(f"--saved_model={path}", "--formats=tflite_float32")
    self.assertEqual(done.returncode, 2, done.stderr[-2000:])
    self.assertEqual(done.stderr.strip(),
                     f"error: `saved_model` {path!r} has no `conversion` "
                     "signature (exported by an older engine): export the "
                     "run's weights again.")
