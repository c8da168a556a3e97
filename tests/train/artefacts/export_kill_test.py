"""A process SIGKILLed while exporting leaves every earlier version intact
and loadable, and no partial version TF Serving would pick up."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import tensorflow as tf

from tests import helpers

EXPORTER = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    from layers.googlenet import GoogLeNet
    from train.artefacts import export
    model = GoogLeNet(10, 1, 28)
    for version in range(1, 100):
      export.export(model, sys.argv[1], version, image_shape=(28, 28, 1),
                    class_names=[str(i) for i in range(10)])
      print(version, flush=True)
""")


class ExportKillTest(tf.test.TestCase):

  def test_sigkill_during_export(self):
    base = os.path.join(self.get_temp_dir(), "exports")
    env = dict(os.environ, PYTHONPATH=helpers.ROOT)
    proc = subprocess.Popen([sys.executable, "-c", EXPORTER, base],
                            cwd=helpers.ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()  # version 1 is complete
    time.sleep(1.5)  # land somewhere inside a later export
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    names = os.listdir(base)
    versions = [n for n in names if n.isdigit()]
    self.assertIn("1", versions)
    self.assertEqual(sorted(int(v) for v in versions),
                     list(range(1, len(versions) + 1)))
    for v in versions:  # each numbered version is complete and loads
      fn = tf.saved_model.load(os.path.join(base, v)).signatures[
          "serving_default"]
      self.assertEqual(fn(images=tf.zeros([1, 28, 28, 1], tf.uint8))[
          "logits"].shape, [1, 10])
    for n in names:
      self.assertTrue(n.isdigit() or n.startswith(".tmp-"), n)
