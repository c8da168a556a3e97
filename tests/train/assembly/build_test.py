"""The assembler's choices: the learning-rate schedule with its warm-up."""

import tensorflow as tf
from absl.testing import parameterized

from train.assembly import build
from train.assembly.config import TrainConfig


class MakeScheduleTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("constant", "step", "cosine")
  def test_warmup_applies_to_every_schedule(self, name):
    config = TrainConfig(lr_schedule=name, learning_rate=0.1,
                         warmup_steps=10)
    s = build.make_schedule(config, steps_per_epoch=100, total_steps=1000)
    self.assertAllClose(s(tf.constant(0)), 0.01)
    self.assertAllClose(s(tf.constant(4)), 0.05)
    self.assertAllClose(s(tf.constant(9)), 0.1)

  @parameterized.parameters("constant", "step", "cosine")
  def test_no_warmup_starts_at_the_peak(self, name):
    config = TrainConfig(lr_schedule=name, learning_rate=0.1)
    s = build.make_schedule(config, steps_per_epoch=100, total_steps=1000)
    self.assertAllClose(s(tf.constant(0)), 0.1)

  def test_warmup_longer_than_the_run_is_cut_to_fit(self):
    config = TrainConfig(lr_schedule="constant", learning_rate=0.1,
                         warmup_steps=50)
    s = build.make_schedule(config, steps_per_epoch=5, total_steps=10)
    self.assertAllClose(s(tf.constant(8)), 0.1)
