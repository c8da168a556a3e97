"""Checkpoint keys are an API: a run's checkpoints must restore into later
versions of the engine. tests/data/checkpoint_keys_e6250e0.json holds the
keys e6250e0 (the engine before the loop was split into a trainer, an
evaluator and their parts) wrote for a run with every optional part: batch
normalisation, the moving average and the best weights, all nine blocks,
Adam. Today's run of that configuration must write exactly those."""

import json
import os

import tensorflow as tf

from core.runtime import checkpointing
from tests import helpers
from train.startup import config as config_lib

GOLDEN = os.path.join(helpers.ROOT, "tests", "data",
                      "checkpoint_keys_e6250e0.json")


class CheckpointKeysTest(tf.test.TestCase):

  def test_a_run_writes_the_keys_the_engine_wrote_before_the_split(self):
    parts = helpers.parts(["/cpu:0", "/cpu:1"], steps_per_epoch=64,
                          total_steps=8, global_batch_size=32,
                          stem="medium", norm="batch", norm_group_size=8,
                          ema_decay=0.99, export="best",
                          blocks=config_lib.BLOCKS)
    directory = self.get_temp_dir()
    checkpointing.Checkpointer(directory,
                               **parts.checkpoint_objects()).save(1)
    keys = sorted(name for name, _ in tf.train.list_variables(
        os.path.join(directory, "ckpt-1")))
    with open(GOLDEN) as f:
      golden = json.load(f)
    self.assertLen(golden, 1300)
    self.assertEqual(keys, golden)


if __name__ == "__main__":
  tf.test.main()
