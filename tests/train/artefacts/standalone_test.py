"""The converted models' runner: its one-line errors, and that it stays
apart from TensorFlow and the project (the runs themselves are in
tflite_model_test.py and onnx_model_test.py)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

from train.artefacts import serving
from train.artefacts import standalone

# Runs the runner as a script with one more package missing, as on a device
# that lacks it.
WITHOUT = textwrap.dedent("""
    import importlib.abc, runpy, sys
    missing = sys.argv.pop(1)
    class Missing(importlib.abc.MetaPathFinder):
      def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == missing:
          raise ImportError(f"No module named {name!r}")
    sys.meta_path.insert(0, Missing())
    sys.argv.pop(0)
    runpy.run_path(sys.argv[0], run_name="__main__")
""")


class StandaloneTest(tf.test.TestCase):

  def run_script(self, missing: str, model: str):
    tmp = self.get_temp_dir()
    images = os.path.join(tmp, "images.npy")
    np.save(images, np.zeros([1, 28, 28, 1], np.uint8))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-I", "-c", WITHOUT, missing, standalone.__file__,
         model, images, os.path.join(tmp, "out.npz")], cwd=tmp, env=env,
        capture_output=True, text=True, timeout=120)

  def test_its_signature_is_the_exports(self):
    self.assertEqual(standalone.SIGNATURE, serving.CONVERSION)

  def test_a_missing_runtime_is_one_line_naming_the_extra(self):
    for missing, model, line in (
        ("ai_edge_litert", "m.tflite", "error: this file needs "
         "ai-edge-litert: pip install ai-edge-litert (the project's `litert` "
         "extra)."),
        ("onnxruntime", "m.onnx", "error: this file needs onnxruntime: pip "
         "install onnxruntime (the project's `onnx` extra).")):
      done = self.run_script(missing, model)
      self.assertEqual(done.returncode, 2, done.stderr)
      self.assertEqual(done.stderr.strip().splitlines(), [line])

  def test_another_file_is_one_line(self):
    done = self.run_script("nothing", "weights.pb")
    self.assertEqual(done.returncode, 2, done.stderr)
    self.assertEqual(done.stderr.strip(),
                     "error: weights.pb: not a .tflite or .onnx file.")

  def test_tensorflow_and_the_project_are_refused_as_a_script(self):
    tmp = self.get_temp_dir()
    script = os.path.join(tmp, "try.py")
    with open(script, "w") as f:
      f.write(textwrap.dedent(f"""
          import runpy, sys
          runner = runpy.run_path({standalone.__file__!r})
          sys.meta_path.insert(0, runner["_Refuse"]())
          for name in ("tensorflow", "train", "core.data", "numpy"):
            try:
              __import__(name)
              print(name, "imported")
            except ImportError:
              print(name, "refused")
          """))
    done = subprocess.run([sys.executable, "-I", script], cwd=tmp,
                          capture_output=True, text=True, timeout=120)
    self.assertEqual(done.stdout.split("\n")[:4], [
        "tensorflow refused", "train refused", "core.data refused",
        "numpy imported"], done.stderr)
