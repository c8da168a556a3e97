import tensorflow as tf

from core.data import datasets
from tests import helpers


class TrainerTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.parts = helpers.parts(["/cpu:0", "/cpu:1"], steps_per_epoch=4,
                              total_steps=20, global_batch_size=8)
    cls.trainer = cls.parts.trainer
    cls.split = datasets.synthetic(32)

  def test_traced_once_for_any_step_count(self):
    trainer = self.trainer
    it = trainer.iterator(self.split, 0)
    before = trainer.global_step
    for n in (1, 3, 2):
      trainer.loop.run(it, n)
    # A new iterator (e.g. after a resume) has the same type: no retrace.
    trainer.loop.run(trainer.iterator(self.split, 6), 1)
    self.assertEqual(trainer.loop.traces, 1)
    self.assertEqual(trainer.global_step - before, 7)

  def test_sums_count_every_example(self):
    it = self.trainer.iterator(self.split, 0)
    sums = self.trainer.loop.run(it, 2)
    self.assertEqual(float(sums["examples"]), 16)
    self.assertBetween(float(sums["accuracy/main"]), 0, 16)

  def test_train_returns_means_by_name(self):
    values = self.trainer.train(self.trainer.iterator(self.split, 0), 2)
    for head in ("main", "aux1", "aux2"):
      self.assertBetween(values[f"accuracy/{head}"], 0, 1)
      self.assertGreater(values[f"loss/{head}"], 0)
    # The total is main + 0.3 aux1 + 0.3 aux2, as means too.
    self.assertAllClose(values["loss/total"], values["loss/main"] + 0.3 * (
        values["loss/aux1"] + values["loss/aux2"]), rtol=1e-5)
    self.assertIn("learning_rate", values)
    self.assertNotIn("examples", values)

  def test_step_count_must_be_an_int(self):
    it = self.trainer.iterator(self.split, 0)
    with self.assertRaisesRegex(TypeError, "`num_steps` must be an int; "
                                "received num_steps=2.0"):
      self.trainer.loop.run(it, 2.0)
