"""How the config's update is computed (train/assembly/update.py): the
schedule, the balanced class weights, the batch's groups."""

import glob
import os
import tempfile

import tensorflow as tf
from absl.testing import parameterized

from core.runtime import distribution
from core.runtime import errors
from tests import helpers
from train.assembly import build
from train.assembly import update
from train.startup.config import RunConfig


class MakeScheduleTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("constant", "step", "cosine")
  def test_warmup_applies_to_every_schedule(self, name):
    config = RunConfig(lr_schedule=name, learning_rate=0.1,
                       warmup_steps=10)
    s = update.make_schedule(config, steps_per_epoch=100, total_steps=1000)
    self.assertAllClose(s(tf.constant(0)), 0.01)
    self.assertAllClose(s(tf.constant(4)), 0.05)
    self.assertAllClose(s(tf.constant(9)), 0.1)

  @parameterized.parameters("constant", "step", "cosine")
  def test_no_warmup_starts_at_the_peak(self, name):
    config = RunConfig(lr_schedule=name, learning_rate=0.1)
    s = update.make_schedule(config, steps_per_epoch=100, total_steps=1000)
    self.assertAllClose(s(tf.constant(0)), 0.1)

  def test_warmup_longer_than_the_run_is_cut_to_fit(self):
    config = RunConfig(lr_schedule="constant", learning_rate=0.1,
                       warmup_steps=50)
    s = update.make_schedule(config, steps_per_epoch=5, total_steps=10)
    self.assertAllClose(s(tf.constant(8)), 0.1)


class RecipeWiringTest(tf.test.TestCase):
  """The recipe's options reach the step as the config asks."""

  def test_balanced_class_weights_on_a_ten_to_one_folder(self):
    root = tempfile.mkdtemp()
    helpers.write_image_folder(root, classes=("many", "few"), per_class=20)
    for path in sorted(glob.glob(os.path.join(root, "train", "few", "*")))[2:]:
      os.remove(path)  # 20 of "many", 2 of "few": 10 to 1
    config = RunConfig(model_dir=root + "/run", dataset="folder",
                       data_dir=root, validation_size=0, image_size=28,
                       class_weight="balanced", global_batch_size=2,
                       blocks=("4a", "4d"), num_cpu_devices=1)
    data = build.load_data(config)
    # Classes in name order: "few" is 0.
    self.assertAllEqual(sorted(data.train.labels), [0] * 2 + [1] * 20)
    weights = update.class_weights(config, data.train.labels,
                                   data.info.num_classes)
    # 22 / (2 x 2) and 22 / (2 x 20): each class weighs the same in all.
    self.assertAllClose(weights, (22 / 4, 22 / 40))
    none = update.class_weights(
        RunConfig(model_dir="m"), data.train.labels, 2)
    self.assertIsNone(none)
    with self.assertRaisesRegex(errors.InputError, "`class_weight` must be "
                                "none for a data set whose labels"):
      update.class_weights(config, None, 2)

  def test_groups_must_divide_the_micro_batch(self):
    batch = distribution.BatchSplit(32, 2)
    with self.assertRaisesRegex(errors.InputError,
                                r"`norm_group_size` must divide the "
                                r"per-replica micro-batch \(4: global batch "
                                r"32 over 2 replicas in 4 micro-batches; it "
                                r"also sizes the mixing groups\)"):
      update.step_options(RunConfig(model_dir="m", accumulate_steps=4,
                                   mixup_alpha=0.2, norm_group_size=8),
                         batch)
    options = update.step_options(
        RunConfig(model_dir="m", accumulate_steps=4, cutmix_alpha=1.0,
                  norm_group_size=4), batch)
    self.assertEqual((options.micro_batch, options.mixing.group_size,
                      options.norm_group_size), (4, 4, None))
