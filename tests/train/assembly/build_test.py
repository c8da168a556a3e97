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


class ShardsPerWorkerTest(tf.test.TestCase):

  def test_fewer_train_shards_than_workers_is_one_line(self):
    import numpy as np  # pylint: disable=g-import-not-at-top
    from core.data import tfrecords, types  # pylint: disable=g-import-not-at-top
    from core.runtime.errors import InputError  # pylint: disable=g-import-not-at-top
    info = types.DatasetInfo("tfrecord", (None, None, 3), ("a", "b"))
    one = tfrecords.RecordSplit(("d/train-00000-of-00001",), 10)
    data = types.Splits(one, tfrecords.RecordSplit((), 0),
                        tfrecords.RecordSplit((), 0), info)
    build.check_shards(data, 1)
    with self.assertRaisesRegex(
        InputError, r"^1 train-\* shard\(s\) for 2 workers: each worker "
        r"reads its own shards, so one would have none; write at least as "
        r"many shards as workers \(tools.convert --shards=N\) or run fewer "
        r"workers\.$"):
      build.check_shards(data, 2)
    # Indexed data (folders, IDX) is shared out by rows: any worker count.
    memory = types.Split(np.zeros([4, 2, 2, 1], np.uint8),
                         np.zeros([4], np.int32))
    build.check_shards(types.Splits(memory, memory, memory, info), 5)
