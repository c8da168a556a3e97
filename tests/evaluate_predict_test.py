"""After training: the Python API (train.fit, in process) and the commands
a user runs on its result (train.evaluate, train.predict, as subprocesses).
The evaluation repeats the run's final test line, from the checkpoint and
from the SavedModel; predict names files and classes."""

import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import tensorflow as tf

import train
from core.data import datasets
from core.data import idx
from core.runtime.errors import InputError
from tests import helpers
from train import evaluate
from train import predict


def command(module, *args, **env):
  """Runs `python -m module ARGS`; `env`: variables to set on top."""
  base = helpers._env()  # pylint: disable=protected-access
  return subprocess.run([sys.executable, "-m", module, *args],
                        cwd=helpers.ROOT, env=dict(base, **env),
                        capture_output=True, text=True, timeout=600)


class AfterTrainingTest(unittest.TestCase):

  @classmethod
  def setUpClass(cls):
    cls.dir = tempfile.mkdtemp()
    cls.lines = []
    cls.result = train.fit(
        model_dir=cls.dir, dataset="synthetic", image_size=28,
        global_batch_size=16, validation_size=64, train_examples=160,
        epochs=2, strategy="mirrored", num_cpu_devices=2, steps_per_loop=5,
        ema_decay=0.9, export="best", test_mirror=True,
        blocks=helpers.SMALL_BLOCKS,
        report=cls.lines.append)
    cls.final = re.search(r"^test accuracy (\d\.\d{4}) \(loss (\d+\.\d{4}), "
                          r"(\d+) images", cls.lines[-1]).groups()
    cls.export = cls.result.export_path

  def test_fit_returns_the_result_and_its_history(self):
    self.assertEqual(self.result.global_step, 20)
    self.assertEqual(self.result.export_path,
                     os.path.join(self.dir, "export", "20"))
    self.assertEqual([h["epoch"] for h in self.result.history], [1.0, 2.0])
    for entry in self.result.history:
      self.assertEqual(sorted(entry), ["epoch", "step", "train_accuracy",
                                       "train_loss", "validation_accuracy",
                                       "validation_loss"])
    self.assertEqual(f"{self.result.test_accuracy:.4f}", self.final[0])
    # --export=best: the final weights are those of the first best
    # validation (of the moving average, --ema_decay).
    best = max(self.result.history, key=lambda h: h["validation_accuracy"])
    validation = evaluate.evaluate_checkpoint(self.dir, split="validation")
    self.assertAlmostEqual(validation.accuracy, best["validation_accuracy"],
                           places=6)
    with open(os.path.join(self.export, "assets.extra",
                           "metadata.json")) as f:
      meta = json.load(f)
    self.assertEqual((meta["weights"], meta["weights_step"],
                      meta["moving_average"]), ("best", best["step"], True))
    self.assertIn(f"(the weights of step {best['step']}, the best on "
                  "validation)", "\n".join(self.lines))
    with self.assertRaisesRegex(InputError, "no checkpoint 3 in .*; it has "
                                "20"):
      evaluate.evaluate_checkpoint(self.dir, step=3)

  def test_mirroring_without_flips_was_warned_about_once(self):
    warnings = [line for line in self.lines if line.startswith("warning:")]
    self.assertEqual(len(warnings), 1, warnings)
    self.assertIn("--test_mirror scores each image with its mirror image "
                  "too, but --augment has no flip", warnings[0])

  def test_evaluate_command_repeats_the_runs_final_line(self):
    result = command("train.evaluate", f"--model_dir={self.dir}")
    self.assertEqual(result.returncode, 0, result.stderr)
    accuracy, loss, images = self.final
    self.assertIn(f"checkpoint 20 of {self.dir} on test ({images} images): "
                  f"loss {loss} accuracy {accuracy} top-5 ", result.stdout)
    self.assertIn("confusion matrix (rows: true class", result.stdout)
    self.assertEqual(result.stderr, "")

  def test_evaluate_with_ten_crops(self):
    # --test_crops=10 scores each test image by its 10 crops (the run
    # itself: one crop and the mirror): the same images, another loss.
    result = command("train.evaluate", f"--model_dir={self.dir}",
                     "--test_crops=10", "--output=json")
    self.assertEqual(result.returncode, 0, result.stderr)
    report = json.loads(result.stdout)
    accuracy, loss, images = self.final
    self.assertEqual(report["examples"], int(images))
    self.assertNotAlmostEqual(report["loss"], float(loss), places=4)
    # (Not more accurate here: the synthetic classes are pixel templates
    # learnt at +-1 pixel of shift, and a corner crop shifts by 2.)
    self.assertEqual(np.array(report["confusion"]).sum(), int(images))

  def test_saved_model_evaluation_as_json(self):
    result = command("train.evaluate", f"--model_dir={self.dir}",
                     f"--saved_model={self.export}", "--output=json")
    self.assertEqual(result.returncode, 0, result.stderr)
    report = json.loads(result.stdout)
    self.assertEqual(f"{report['accuracy']:.4f}", self.final[0])
    self.assertEqual(report["examples"], int(self.final[2]))
    confusion = np.array(report["confusion"])
    self.assertEqual(confusion.sum(), int(self.final[2]))
    self.assertAlmostEqual(np.trace(confusion) / confusion.sum(),
                           report["accuracy"])
    self.assertEqual(sorted(report["per_class"]),
                     sorted(helpers.SYNTHETIC_INFO.class_names))

  def test_evaluate_without_a_run_is_one_line(self):
    result = command("train.evaluate", f"--model_dir={tempfile.mkdtemp()}")
    self.assertEqual(result.returncode, 2)
    self.assertRegex(result.stderr, r"^error: `model_dir` .* has no "
                     r"manifest.json: not a training run's folder\.\n$")

  def test_predict_names_each_file_and_its_classes(self):
    folder = tempfile.mkdtemp()
    images = datasets.load("synthetic", validation_size=64).test.images[:3]
    paths = []
    for i, image in enumerate(images):
      paths.append(os.path.join(folder, f"picture{i}.png"))
      tf.io.write_file(paths[-1], tf.io.encode_png(image))
    idx_path = os.path.join(folder, "three-images-idx3-ubyte")
    idx.write(idx_path, images[..., 0])
    result = command("train.predict", f"--saved_model={self.export}",
                     "--top_k=2", "--output=json", *paths, idx_path)
    self.assertEqual(result.returncode, 0, result.stderr)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    self.assertEqual([r["file"] for r in rows],
                     paths + [f"{idx_path}[{i}]" for i in range(3)])
    for row in rows:
      self.assertEqual(len(row["classes"]), 2)
      self.assertIn(row["classes"][0]["name"],
                    helpers.SYNTHETIC_INFO.class_names)
    # A PNG and the same pixels from an IDX file: the same answer.
    for i in range(3):
      self.assertEqual(rows[i]["classes"][0]["name"],
                       rows[3 + i]["classes"][0]["name"])
    table = predict.render(predict.predict(self.export, paths[:1]))
    self.assertRegex(table, rf"^{re.escape(paths[0])}  \S.* \d\.\d{{4}}")

  def test_a_saved_model_that_is_not_ours_is_one_line(self):
    foreign = os.path.join(tempfile.mkdtemp(), "foreign")
    module = tf.Module()
    module.double = tf.function(lambda x: {"y": 2 * x}, input_signature=[
        tf.TensorSpec([None, 3], tf.float32)])
    tf.saved_model.save(module, foreign,
                        signatures={"serving_default": module.double})
    want = (f"`saved_model` '{foreign}' is not a model this engine exported: "
            "it needs signatures serving_default and serving_bytes taking "
            "`images` and returning logits, probabilities, classes, "
            "class_names; it has serving_default(x) -> y.")
    with self.assertRaises(InputError) as raised:
      evaluate.evaluate_saved_model(foreign, self.dir)
    self.assertEqual(str(raised.exception), want)
    picture = os.path.join(tempfile.mkdtemp(), "caf\udce9.png")  # not UTF-8
    tf.io.write_file(os.fsencode(picture), tf.io.encode_png(
        np.zeros([28, 28, 1], np.uint8)))
    result = command("train.predict", f"--saved_model={foreign}", picture)
    self.assertEqual(result.returncode, 2)
    self.assertEqual(result.stderr, f"error: {want}\n")
    # Ours, on that file name: it is read, and JSON shows it escaped.
    result = command("train.predict", f"--saved_model={self.export}",
                     "--output=json", picture)
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertEqual(json.loads(result.stdout)["file"],
                     os.fsencode(picture).decode("utf-8", "backslashreplace"))

  def test_predict_text_shows_a_name_that_is_not_utf8_escaped(self):
    picture = os.path.join(tempfile.mkdtemp(), "caf\udce9.png")
    tf.io.write_file(os.fsencode(picture), tf.io.encode_png(
        np.zeros([28, 28, 1], np.uint8)))
    # What an installed UTF-8 locale gives: surrogates, which stand for
    # the name's bytes that are not UTF-8, cannot be printed.
    result = command("train.predict", f"--saved_model={self.export}",
                     picture, PYTHONIOENCODING="utf-8:strict")
    self.assertEqual(result.returncode, 0, result.stderr)
    escaped = os.fsencode(picture).decode("utf-8", "backslashreplace")
    self.assertTrue(escaped.endswith("caf\\xe9.png"), escaped)
    self.assertRegex(result.stdout,
                     rf"^{re.escape(escaped)}  \S.* \d\.\d{{4}}")

  def test_predict_on_a_bad_file_is_one_line(self):
    bad = os.path.join(tempfile.mkdtemp(), "bad.jpg")
    with open(bad, "wb") as f:
      f.write(b"not an image")
    result = command("train.predict", f"--saved_model={self.export}", bad)
    self.assertEqual(result.returncode, 2)
    self.assertEqual(result.stderr, f"error: {bad}: not a PNG or JPEG image "
                     "this model can decode.\n")


class EvaluateOptionsTest(unittest.TestCase):

  def test_test_crops_are_a_checkpoints_choice(self):
    self.assertEqual(evaluate.EvaluateOptions(model_dir="m",
                                              test_crops="144").test_crops,
                     "144")
    with self.assertRaisesRegex(InputError, r"^--test_crops applies to a "
                                r"checkpoint; a SavedModel scores each image "
                                r"as it was exported \(drop --test_crops or "
                                r"--saved_model\)\.$"):
      evaluate.EvaluateOptions(model_dir="m", saved_model="s",
                               test_crops="10")


if __name__ == "__main__":
  unittest.main()
