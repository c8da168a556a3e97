"""train.evaluate and train.predict as a user runs them, on a real run:
the evaluation repeats the run's final test line, from the checkpoint and
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

from core import datasets
from core import idx
from tests import helpers


def command(module, *args):
  return subprocess.run([sys.executable, "-m", module, *args],
                        cwd=helpers.ROOT,
                        env=helpers._env(),  # pylint: disable=protected-access
                        capture_output=True, text=True, timeout=600)


class EvaluatePredictTest(unittest.TestCase):

  @classmethod
  def setUpClass(cls):
    cls.dir = tempfile.mkdtemp()
    cls.training = helpers.cli(helpers.small_run_flags(cls.dir,
                                                  "--train_steps=10"))
    found = re.search(r"test accuracy (\d\.\d{4}) \(loss (\d+\.\d{4}), "
                      r"(\d+) images", cls.training.stdout)
    cls.final = found.groups() if found else None
    cls.export = os.path.join(cls.dir, "export", "10")

  def test_checkpoint_evaluation_repeats_the_runs_final_line(self):
    self.assertIsNotNone(self.final, self.training.stderr[-2000:])
    result = command("train.evaluate", f"--model_dir={self.dir}")
    self.assertEqual(result.returncode, 0, result.stderr)
    accuracy, loss, images = self.final
    self.assertIn(f"checkpoint 10 of {self.dir} on test ({images} images): "
                  f"loss {loss} accuracy {accuracy} top-5 ", result.stdout)
    self.assertIn("confusion matrix (rows: true class", result.stdout)
    self.assertEqual(result.stderr, "")

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

  def test_bad_requests_are_one_line(self):
    for args, message in (
        ([f"--model_dir={self.dir}", "--checkpoint_step=7"],
         "no checkpoint 7 in .*; it has 10"),
        ([f"--model_dir={tempfile.mkdtemp()}"],
         "`model_dir` .* has no manifest.json"),
        ([f"--model_dir={self.dir}", "--saved_model=/nonexistent"],
         "`saved_model` '/nonexistent' cannot be loaded")):
      with self.subTest(args=args):
        result = command("train.evaluate", *args)
        self.assertEqual(result.returncode, 2)
        self.assertRegex(result.stderr, rf"^error: {message}.*\n$")

  def test_predict_names_each_file_and_its_classes(self):
    folder = tempfile.mkdtemp()
    data = datasets.load("synthetic", validation_size=64)
    images = data.test.images[:3]
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
    table = command("train.predict", f"--saved_model={self.export}",
                    paths[0])
    self.assertRegex(table.stdout, rf"^{re.escape(paths[0])}  \S.* "
                     r"\d\.\d{4}")
    bad = os.path.join(folder, "bad.jpg")
    with open(bad, "wb") as f:
      f.write(b"not an image")
    result = command("train.predict", f"--saved_model={self.export}", bad)
    self.assertEqual(result.returncode, 2)
    self.assertEqual(result.stderr, f"error: {bad}: not a PNG or JPEG image "
                     "this model can decode.\n")


if __name__ == "__main__":
  unittest.main()
