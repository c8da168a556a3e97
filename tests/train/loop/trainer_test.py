import tensorflow as tf

from core.data import datasets
from core.optim import losses
from core.data import preprocessing
from tests import helpers


class TrainerTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.parts = helpers.parts(["/cpu:0", "/cpu:1"], steps_per_epoch=4,
                              total_steps=20, global_batch_size=8)
    cls.trainer, cls.evaluator = cls.parts.trainer, cls.parts.evaluator
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

  def test_evaluate_counts_padding_out(self):
    result = self.evaluator.evaluate(datasets.synthetic(13))
    self.assertEqual(result.examples, 13)
    self.assertEqual(float(result.confusion.sum()), 13)
    self.assertBetween(result.values["accuracy/main"], 0, 1)

  def test_test_mirror_scores_each_image_with_its_mirror_image(self):
    parts = helpers.parts(["/cpu:0"], steps_per_epoch=4, total_steps=20,
                          global_batch_size=8, test_mirror=True)
    split = datasets.synthetic(16)
    got = parts.evaluator.evaluate(split).values["loss/main"]
    x = preprocessing.preprocess(tf.constant(split.images), image_size=28,
                                 channels=1)
    def mean_loss(logits):
      return float(tf.reduce_mean(losses.cross_entropy(logits,
                                                       split.labels)))
    self.assertAllClose(got, mean_loss(parts.model.classify(x, mirror=True)),
                        rtol=1e-5)
    self.assertNotAllClose(got, mean_loss(parts.model.classify(x)),
                           rtol=1e-3)

  def test_evaluation_moves_no_state(self):
    before = self.trainer.global_step
    self.evaluator.evaluate(datasets.synthetic(16))
    self.assertEqual(self.trainer.global_step, before)

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
