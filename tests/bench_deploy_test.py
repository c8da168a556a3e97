"""bench.deploy's table and its one-line refusal without a runtime (the
measurement itself runs the files as tests/train/convert_test.py does)."""

import subprocess
import sys
import unittest

from bench import deploy
from tests import helpers


class DeployTest(unittest.TestCase):

  def test_the_table_gives_points_from_the_saved_model(self):
    rows = [{"format": "saved_model", "bytes": 4_532_409, "top1": 0.8932,
             "latency_ms": 2.44},
            {"format": "tflite_int8", "bytes": 1_055_264, "top1": 0.8867,
             "latency_ms": 0.209}]
    self.assertEqual(deploy.render(rows).splitlines()[2:], [
        "| saved_model | 4.53 MB | 89.32 % | +0.00 | 2.44 ms |",
        "| tflite_int8 | 1.06 MB | 88.67 % | -0.65 | 0.21 ms |"])

  def test_a_missing_runtime_is_one_line_naming_the_extra(self):
    done = helpers.python("-c", "import runpy, sys; "
                          "sys.modules['onnxruntime'] = None; "
                          "runpy.run_module('bench.deploy', "
                          "run_name='__main__')", "--model_dir=x",
                          "--saved_model=y")
    self.assertEqual(done.returncode, 2, done.stderr)
    self.assertEqual(done.stderr.strip(), "error: bench.deploy runs the files "
                     "in onnxruntime: install the project's `onnx` extra (pip "
                     "install -e '.[onnx]').")
