"""The Python API as a notebook uses it, in process: fit returns the result
and its per-epoch history; evaluate and predict agree with it."""

import os
import tempfile
import unittest

import tensorflow as tf

import train
from train import evaluate
from train import predict
from core.errors import InputError
from core import datasets


class ApiTest(unittest.TestCase):

  def test_fit_evaluate_predict(self):
    model_dir = tempfile.mkdtemp()
    lines = []
    result = train.fit(
        model_dir=model_dir, dataset="synthetic", image_size=28,
        global_batch_size=16, validation_size=64, train_examples=160,
        epochs=2, strategy="mirrored", num_cpu_devices=2, steps_per_loop=5,
        report=lines.append)
    self.assertEqual(result.global_step, 20)
    self.assertEqual([h["epoch"] for h in result.history], [1.0, 2.0])
    for entry in result.history:
      self.assertEqual(sorted(entry), ["epoch", "step", "train_accuracy",
                                       "train_loss", "validation_accuracy",
                                       "validation_loss"])
    self.assertIn(f"test accuracy {result.test_accuracy:.4f}", lines[-1])
    report = evaluate.evaluate_checkpoint(model_dir)
    self.assertEqual(report.step, 20)
    self.assertAlmostEqual(report.accuracy, result.test_accuracy, places=6)
    validation = evaluate.evaluate_checkpoint(model_dir, split="validation")
    self.assertAlmostEqual(validation.accuracy,
                           result.history[-1]["validation_accuracy"],
                           places=6)
    picture = os.path.join(model_dir, "one.png")
    image = datasets.load("synthetic", validation_size=64).test.images[0]
    tf.io.write_file(picture, tf.io.encode_png(image))
    rows = predict.predict(result.export_path, [picture], top_k=3)
    self.assertEqual(rows[0]["file"], picture)
    self.assertEqual(len(rows[0]["classes"]), 3)
    saved = evaluate.evaluate_saved_model(result.export_path, model_dir)
    self.assertAlmostEqual(saved.accuracy, result.test_accuracy, places=6)
    with self.assertRaisesRegex(InputError, "no checkpoint 3 in"):
      evaluate.evaluate_checkpoint(model_dir, step=3)


if __name__ == "__main__":
  unittest.main()
