"""The flags are generated from each command's option table (RunConfig,
EvaluateOptions, PredictOptions): same names, defaults, choices and help,
and parsed back into the table."""

import dataclasses
import os

from absl import flags
from absl.testing import parameterized
import tensorflow as tf

from core.runtime.errors import InputError
from tests import helpers
from train.startup import options
from train.startup.config import RunConfig
from train.evaluate import EvaluateOptions
from train.predict import PredictOptions


TABLES = (RunConfig, EvaluateOptions, PredictOptions)


def parsed(*argv, table=RunConfig):
  flag_values = flags.FlagValues()
  options.define(flag_values, table)
  flag_values(["prog", *argv])
  return flag_values


class OptionsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*TABLES)
  def test_every_field_is_a_flag_with_its_default_and_help(self, table):
    flag_values = parsed(table=table)
    for field in dataclasses.fields(table):
      flag = flag_values[field.name]
      default = field.default
      if isinstance(default, tuple):
        default = [str(v) for v in default]
      self.assertEqual(flag.default, default, field.name)
      # absl prefixes an enum's help with its choices.
      self.assertTrue(flag.help.endswith(field.metadata["help"]), field.name)
    self.assertEqual(sorted(flag_values), sorted(
        f.name for f in dataclasses.fields(table)))

  def test_the_commands_tables_parse_and_validate(self):
    settings = options.config(parsed("--model_dir=runs/x", "--split=train",
                                     "--checkpoint_step=4",
                                     table=EvaluateOptions), EvaluateOptions)
    self.assertEqual(settings, EvaluateOptions(model_dir="runs/x",
                                               split="train",
                                               checkpoint_step=4))
    with self.assertRaisesRegex(InputError, "--model_dir is required"):
      options.config(parsed(table=EvaluateOptions), EvaluateOptions)
    with self.assertRaisesRegex(InputError, "`top_k` must be at least 1"):
      options.config(parsed("--saved_model=x", "--top_k=0",
                            table=PredictOptions), PredictOptions)

  def test_choices_come_from_the_config(self):
    flag_values = parsed()
    for field in dataclasses.fields(RunConfig):
      if "choices" in field.metadata:
        self.assertEqual(tuple(flag_values[field.name].parser.enum_values),
                         field.metadata["choices"], field.name)
    with self.assertRaisesRegex(flags.IllegalFlagValueError,
                                "value should be one of <adam|sgd>"):
      parsed("--optimizer=lbfgs")

  def test_defaults_make_the_default_config(self):
    self.assertEqual(options.config(parsed()), RunConfig())

  def test_shipped_flag_files_make_valid_configs(self):
    # make train's configuration and the longer recipe (BUILD.md).
    folder = os.path.join(helpers.ROOT, "configs")
    names = sorted(os.listdir(folder))
    self.assertIn("fashion_mnist_best.cfg", names)
    for name in names:
      config = options.config(parsed(
          f"--flagfile={os.path.join(folder, name)}"))
      self.assertEqual(config.dataset, "fashion_mnist", name)
    best = options.config(parsed(
        f"--flagfile={os.path.join(folder, 'fashion_mnist_best.cfg')}"))
    self.assertEqual((best.stem, best.export), ("medium", "best"))

  def test_values_parse_to_the_field_types(self):
    config = options.config(parsed(
        "--aux_loss_weights=0.5,0.25", "--profile_steps=3,9",
        "--learning_rate=0.01", "--train_steps=7", "--deterministic",
        "--export_dir=/e"))
    self.assertEqual(config.aux_loss_weights, (0.5, 0.25))
    self.assertEqual(config.profile_steps, (3, 9))
    self.assertEqual((config.learning_rate, config.train_steps,
                      config.deterministic, config.export_dir),
                     (0.01, 7, True, "/e"))

  def test_list_items_of_the_wrong_type(self):
    with self.assertRaisesRegex(InputError, r"`profile_steps` must be a "
                                r"comma-separated list of int values; "
                                r"received profile_steps='3,x'"):
      options.config(parsed("--profile_steps=3,x"))

  def test_config_and_flags_load_without_tensorflow(self):
    # The command line sets TF's environment (oneDNN off for
    # --deterministic) after parsing, so parsing must not import TF.
    done = helpers.python("-c", "import sys\n"
                          "from train.startup import options\n"
                          "print('tensorflow' in sys.modules)")
    self.assertEqual(done.returncode, 0, done.stderr)
    self.assertEqual(done.stdout.strip(), "False")
