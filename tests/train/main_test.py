"""Bad input at the command line: one line on stderr, non-zero exit, no
traceback, nothing already written lost."""

import os

import numpy as np
import tensorflow as tf

from core import idx
from tests import helpers


class MainErrorsTest(tf.test.TestCase):

  def assert_one_line_error(self, result, pattern, code=2):
    self.assertEqual(result.returncode, code, result.stderr)
    lines = result.stderr.strip().splitlines()
    self.assertLen(lines, 1, result.stderr)
    self.assertRegex(lines[0], "^error: " + pattern)
    self.assertNotIn("Traceback", result.stderr)

  def test_unknown_flag_value(self):
    self.assert_one_line_error(helpers.cli(["--optimizer=lbfgs"]),
                               "flag --optimizer=lbfgs: value should be one "
                               "of")

  def test_unknown_flag(self):
    self.assert_one_line_error(helpers.cli(["--epoch=3"]),
                               "Unknown command line flag 'epoch'")

  def test_positional_argument(self):
    self.assert_one_line_error(helpers.cli(["train"]), "unexpected arguments")

  def test_missing_data_dir(self):
    self.assert_one_line_error(
        helpers.cli(["--dataset=mnist", "--data_dir=/nonexistent/mnist",
                     f"--model_dir={self.get_temp_dir()}/m"]),
        "`data_dir` '/nonexistent/mnist' is not a readable directory")

  def test_corrupt_idx_file(self):
    folder = os.path.join(self.get_temp_dir(), "data")
    os.makedirs(folder)
    for stem, shape in (("train-images-idx3-ubyte", [20, 28, 28]),
                        ("t10k-images-idx3-ubyte", [5, 28, 28]),
                        ("train-labels-idx1-ubyte", [20]),
                        ("t10k-labels-idx1-ubyte", [5])):
      idx.write(os.path.join(folder, stem), np.zeros(shape, np.uint8))
    with open(os.path.join(folder, "train-images-idx3-ubyte"), "r+b") as f:
      f.truncate(100)
    self.assert_one_line_error(
        helpers.cli(["--dataset=mnist", f"--data_dir={folder}",
                     f"--model_dir={self.get_temp_dir()}/m2"]),
        r".*train-images-idx3-ubyte: truncated")

  def test_unwritable_model_dir(self):
    blocker = os.path.join(self.get_temp_dir(), "file")
    open(blocker, "w").write("keep me")
    self.assert_one_line_error(
        helpers.cli(["--dataset=synthetic", f"--model_dir={blocker}/run"]),
        "`model_dir` .* cannot be written")
    self.assertEqual(open(blocker).read(), "keep me")

  def test_batch_not_divisible_by_replicas(self):
    self.assert_one_line_error(
        helpers.cli(["--dataset=synthetic", "--num_cpu_devices=3",
                     "--global_batch_size=64",
                     f"--model_dir={self.get_temp_dir()}/m3"]),
        r"`global_batch_size` must be divisible by the number of replicas "
        r"\(3\)")

  def test_other_configuration_in_model_dir_keeps_its_files(self):
    model_dir = os.path.join(self.get_temp_dir(), "taken")
    os.makedirs(model_dir)
    with open(os.path.join(model_dir, "manifest.json"), "w") as f:
      f.write('{"fingerprint": {"image_size": 96}}')
    before = sorted(os.listdir(model_dir))
    self.assert_one_line_error(
        helpers.cli(["--dataset=synthetic", "--image_size=28",
                     f"--model_dir={model_dir}"]),
        "`model_dir` .* holds a run with another configuration "
        r"\(.*image_size: 96 there, 28 now")
    self.assertEqual(sorted(os.listdir(model_dir)), before)

  def test_every_config_field_is_a_flag(self):
    import dataclasses  # pylint: disable=g-import-not-at-top
    from train import main  # pylint: disable=g-import-not-at-top,unused-import
    from train.config import TrainConfig  # pylint: disable=g-import-not-at-top
    from absl import flags  # pylint: disable=g-import-not-at-top
    defined = set(flags.FLAGS)
    for field in dataclasses.fields(TrainConfig):
      self.assertIn(field.name, defined)

  def test_flagfile_and_helpfull(self):
    flagfile = os.path.join(self.get_temp_dir(), "f.cfg")
    open(flagfile, "w").write("--optimizer=nope\n")
    self.assert_one_line_error(helpers.cli([f"--flagfile={flagfile}"]),
                               "flag --optimizer=nope")
    shown = helpers.cli(["--helpfull"])
    for flag in ("--strategy", "--num_cpu_devices", "--aux_loss_weights",
                 "--image_size", "--train_steps", "--export_dir"):
      self.assertIn(flag, shown.stdout)
