"""tools/recipe.py: which flag file `make train` runs on this machine."""

import os
import unittest
from unittest import mock

from core.optim import precision
from tests import helpers
from tools import recipe


class RecipeTest(unittest.TestCase):

  def choose(self, flags, onednn="1"):
    with mock.patch.object(precision, "cpu_flags",
                           return_value=frozenset(flags)), \
        mock.patch.dict(os.environ, {"TF_ENABLE_ONEDNN_OPTS": onednn}), \
        mock.patch("builtins.print") as shown:
      self.assertEqual(recipe.main(), 0)
    return shown.call_args.args[0]

  def test_bfloat16_where_amx_runs_it_else_float32(self):
    self.assertEqual(self.choose({"avx512f", "amx_bf16"}),
                     "configs/fashion_mnist_amx.cfg")
    self.assertEqual(self.choose({"avx2"}), "configs/fashion_mnist_cpu.cfg")
    # TensorFlow's own kernels (oneDNN off) do not use the matrix unit.
    self.assertEqual(self.choose({"amx_bf16"}, onednn="0"),
                     "configs/fashion_mnist_cpu.cfg")

  def test_the_flag_files_exist_and_the_amx_one_builds_on_make_trains(self):
    for path in recipe.CONFIGS.values():
      self.assertTrue(os.path.isfile(os.path.join(helpers.ROOT, path)), path)
    with open(os.path.join(helpers.ROOT, recipe.CONFIGS[
        precision.BFLOAT16])) as f:
      lines = [l for l in f.read().splitlines() if l.startswith("--")]
    self.assertEqual(lines[0], "--flagfile=" + recipe.CONFIGS[
        precision.FLOAT32])
    self.assertIn("--mixed_precision=mixed_bfloat16", lines)


if __name__ == "__main__":
  unittest.main()
