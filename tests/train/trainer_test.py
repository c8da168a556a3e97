import tensorflow as tf

from core import datasets
from core import pipeline
from train.config import TrainConfig
from train.engine import Engine


class TrainerTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    config = TrainConfig(model_dir="/unused", image_size=28,
                         global_batch_size=8, num_cpu_devices=2)
    cls.engine = Engine(config, strategy, steps_per_epoch=4, total_steps=20)
    cls.split = datasets.synthetic(32)

  def test_traced_once_for_any_step_count(self):
    engine = self.engine
    it = engine.train_iterator(self.split, pipeline.Cursor(0, 0))
    before = int(engine.state.global_step.numpy())
    for n in (1, 3, 2):
      engine.trainer.run(it, n)
    # A new iterator (e.g. after a resume) has the same type: no retrace.
    engine.trainer.run(engine.train_iterator(self.split,
                                             pipeline.Cursor(1, 2)), 1)
    self.assertEqual(engine.trainer.traces, 1)
    self.assertEqual(int(engine.state.global_step.numpy()) - before, 7)

  def test_sums_count_every_example(self):
    it = self.engine.train_iterator(self.split, pipeline.Cursor(0, 0))
    sums = self.engine.trainer.run(it, 2)
    self.assertEqual(float(sums["examples"]), 16)
    self.assertBetween(float(sums["accuracy/main"]), 0, 16)

  def test_evaluate_counts_padding_out(self):
    sums = self.engine.evaluate(datasets.synthetic(13))
    self.assertEqual(float(sums["examples"]), 13)
    self.assertEqual(float(sums["confusion"].sum()), 13)

  def test_step_count_must_be_an_int(self):
    it = self.engine.train_iterator(self.split, pipeline.Cursor(0, 0))
    with self.assertRaisesRegex(TypeError, "`num_steps` must be an int; "
                                "received num_steps=2.0"):
      self.engine.trainer.run(it, 2.0)
