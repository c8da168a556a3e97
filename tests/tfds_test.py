"""The real commands on a TensorFlow Datasets set built here by a TFDS
builder (tests/core/data/tfds_test.py; nothing downloaded): the command
line finds it by name in another process (TFDS reads the prepared files),
trains with its class names, resumes bitwise equal to an uninterrupted run,
and `train.evaluate` reproduces the run's test accuracy; without TensorFlow
Datasets the command says which extra to install, in one line."""

import json
import os
import re
import shutil

import tensorflow as tf

from core.runtime import checkpointing
from tests import events
from tests import faults
from tests import helpers
from tests.core.data import tfds_test


class TfdsEndToEndTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    tmp = tf.compat.v1.test.get_temp_dir()
    cls.data_dir = os.path.join(tmp, "tfds-e2e")
    cls.dataset = "tfds:" + tfds_test.prepare(tfds_test.TinyTfdsShapes,
                                              cls.data_dir)
    cls.whole = os.path.join(tmp, "tfds-whole")
    cls.result = helpers.cli(cls.flags(cls.whole))

  @classmethod
  def flags(cls, model_dir):
    # 24 training records in batches of 4: 8 steps cross the epoch
    # boundary at 6; the two train files feed one worker's two replicas.
    return [f"--model_dir={model_dir}", f"--dataset={cls.dataset}",
            f"--data_dir={cls.data_dir}", "--strategy=mirrored",
            "--num_cpu_devices=2", "--image_size=16", "--global_batch_size=4",
            "--steps_per_loop=2", "--checkpoint_every=2", "--deterministic",
            "--eval_every=4", "--augment=crop,flip,erase", "--train_steps=8",
            "--export=none", helpers.SMALL_NETWORK]

  def test_trains_on_its_splits_with_its_class_names(self):
    self.assertEqual(self.result.returncode, 0, self.result.stderr[-3000:])
    self.assertIn("starting at step 0/8: 2 replica(s), global batch 4, 6 "
                  "steps per epoch", self.result.stdout)
    self.assertRegex(self.result.stdout.strip().splitlines()[-1],
                     r"^test accuracy \d\.\d{4} \(loss .*, 9 images, step 8\)$")
    manifest = json.load(open(os.path.join(self.whole, "manifest.json")))
    self.assertEqual(manifest["data"]["name"], "tfds:tiny_tfds_shapes")
    self.assertEqual(manifest["data"]["class_names"], list(tfds_test.SHAPES))
    # Its validation split is validated on, at steps 4 and 8.
    validated = events.read(os.path.join(self.whole, "eval"))["accuracy/main"]
    self.assertEqual([step for step, _ in validated], [4, 8])

  def test_stopped_and_resumed_equals_uninterrupted(self):
    self.assertEqual(self.result.returncode, 0, self.result.stderr[-3000:])
    parts = os.path.join(self.get_temp_dir(), "tfds-parts")
    shutil.copytree(self.whole, parts)
    for name in os.listdir(parts):
      if re.match(r"ckpt-[68]\.", name):
        os.remove(os.path.join(parts, name))
    self.assertEqual(checkpointing.complete_checkpoints(parts)[0][0], 4)
    done = helpers.cli(self.flags(parts))
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    self.assertIn("resuming at step 4/8", done.stdout)
    a, b = (faults.final_variables(d) for d in (self.whole, parts))
    self.assertEqual(sorted(a), sorted(b))
    for key in a:
      self.assertAllEqual(a[key], b[key], msg=key)

  def test_evaluate_reproduces_the_test_accuracy(self):
    self.assertEqual(self.result.returncode, 0, self.result.stderr[-3000:])
    done = helpers.python("-m", "train.evaluate", f"--model_dir={self.whole}",
                          "--output=json")
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    report = json.loads(done.stdout.strip().splitlines()[-1])
    self.assertEqual((report["split"], report["examples"], report["step"]),
                     ("test", 9, 8))
    self.assertEqual(report["class_names"], list(tfds_test.SHAPES))
    final = self.result.stdout.strip().splitlines()[-1]
    self.assertIn(f"test accuracy {report['accuracy']:.4f} ", final)

  def test_without_tensorflow_datasets_one_line_names_the_extra(self):
    done = helpers.python(
        "-c", "import runpy, sys; sys.modules['tensorflow_datasets'] = None; "
        "sys.argv[0] = 'train.main'; runpy.run_module('train.main', "
        "run_name='__main__')", *self.flags(self.get_temp_dir() + "/none"),
        helpers.ON_CPU)
    self.assertEqual(done.returncode, 2, done.stderr[-3000:])
    self.assertRegex(done.stderr.strip().splitlines()[-1],
                     r"^error: --dataset=tfds:tiny_tfds_shapes needs "
                     r"TensorFlow Datasets: install the engine's tfds extra "
                     r"\(pip install -e '\.\[tfds\]' in its checkout\) or pip "
                     r"install tensorflow-datasets\.$")
    self.assertNotIn("Traceback", done.stderr)


if __name__ == "__main__":
  tf.test.main()
