"""The evaluator: the gallery's mistakes, the weights each purpose uses, and
the evaluation-only parts train.evaluate assembles."""

import tensorflow as tf

from core.data import datasets
from core.data import preprocessing
from core.optim import losses
from tests import helpers
from train.assembly import build
from train.startup.config import RunConfig
from train.loop import evaluator
from train.loop import weights as weights_lib


class EvaluatorTest(tf.test.TestCase):
  """Evaluation over a whole split: padding counted out, the mirror, no
  state moved."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.parts = helpers.parts(["/cpu:0", "/cpu:1"], steps_per_epoch=4,
                              total_steps=20, global_batch_size=8)
    cls.trainer, cls.evaluator = cls.parts.trainer, cls.parts.evaluator

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

  def test_the_final_test_scores_the_test_crops_and_validation_one(self):
    # --test_crops=10: the final test (and train.evaluate) averages each
    # image's 10 crops, taken from the image as delivered (28x28 here,
    # scaled to 32 for the crops); validation scores the single crop.
    parts = helpers.parts(["/cpu:0", "/cpu:1"], steps_per_epoch=4,
                          total_steps=20, global_batch_size=8,
                          test_crops="10")
    split = datasets.synthetic(16)
    raw = preprocessing.preprocess(tf.constant(split.images),
                                   image_size=None, channels=1)
    def mean_loss(logits):
      return float(tf.reduce_mean(losses.cross_entropy(logits,
                                                       split.labels)))
    final = parts.evaluator.evaluate(split, weights_lib.FINAL)
    self.assertAllClose(final.values["loss/main"], mean_loss(
        parts.model.classify(raw, crops="10")), rtol=1e-5)
    validation = parts.evaluator.evaluate(split, weights_lib.VALIDATION)
    self.assertAllClose(validation.values["loss/main"],
                        mean_loss(parts.model.classify(raw)), rtol=1e-5)
    self.assertNotAllClose(final.values["loss/main"],
                           validation.values["loss/main"], rtol=1e-3)

  def test_evaluation_moves_no_state(self):
    before = self.trainer.global_step
    self.evaluator.evaluate(datasets.synthetic(16))
    self.assertEqual(self.trainer.global_step, before)


class MisclassifiedTest(tf.test.TestCase):
  """The images of the misclassified grid are the model's real mistakes
  among the first GALLERY_SAMPLE validation examples."""

  def test_only_and_all_mistakes_of_the_sample_up_to_the_limit(self):
    from core.data import datasets, preprocessing
    from core.runtime import distribution
    import numpy as np
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    split = datasets.synthetic(300, seed=3)
    info = datasets.DatasetInfo("synthetic", (28, 28, 1),
                                tuple(str(i) for i in range(10)))
    config = RunConfig(dataset="synthetic", image_size=28,
                       global_batch_size=8)
    parts = build.evaluation_parts(config, strategy, info,
                                   distribution.split_batch(8, strategy))
    eng = parts.evaluator
    logits = parts.model(preprocessing.preprocess(
        split.images[:evaluator.GALLERY_SAMPLE], image_size=28, channels=1),
                         training=False).logits
    predicted = np.argmax(logits, axis=1)
    wrong = np.flatnonzero(
        predicted != split.labels[:evaluator.GALLERY_SAMPLE])
    self.assertGreater(len(wrong), 20)  # an untrained model
    images, labels, preds = eng.misclassified(split, limit=20)
    self.assertAllEqual(images, split.images[wrong[:20]])
    self.assertAllEqual(labels, split.labels[wrong[:20]])
    self.assertAllEqual(preds, predicted[wrong[:20]])
    self.assertLen(eng.misclassified(split, limit=1000)[0], len(wrong))

  def test_shards_and_files_give_their_decoded_images(self):
    # The same 12 colour PNGs as TFRecord shards and as an image folder:
    # the grid's images are the ones evaluation reads, resized.
    import os
    import numpy as np
    from core.data import datasets, folders, tfrecords
    from core.runtime import distribution
    root = self.get_temp_dir()
    rng = np.random.RandomState(0)
    pictures = rng.randint(0, 255, [12, 20, 20, 3]).astype(np.uint8)
    encoded = [tf.io.encode_png(p).numpy() for p in pictures]
    labels = np.arange(12) % 3
    with tf.io.TFRecordWriter(os.path.join(root, "validation-0")) as w:
      for data, label in zip(encoded, labels):
        w.write(tfrecords.example(data, int(label)))
    paths = []
    for i, data in enumerate(encoded):
      paths.append(os.path.join(root, f"{i}.png"))
      with open(paths[-1], "wb") as f:
        f.write(data)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    info = datasets.DatasetInfo("shards", (None, None, 3), ("a", "b", "c"))
    eng = build.evaluation_parts(
        RunConfig(dataset="tfrecord", image_size=16, global_batch_size=4),
        strategy, info, distribution.split_batch(4, strategy)).evaluator
    shards = tfrecords.RecordSplit((os.path.join(root, "validation-0"),), 12)
    files = folders.FileSplit(np.array(paths), labels.astype(np.int32))
    for split in (shards, files):
      images, true, predicted = eng.misclassified(split, limit=100)
      self.assertEqual(images.shape[1:], (16, 16, 3))
      self.assertTrue(np.all(true != predicted))
      self.assertGreater(len(images), 3)  # an untrained model
    self.assertAllEqual(eng.misclassified(shards, limit=100)[0],
                        eng.misclassified(files, limit=100)[0])


class WeightsForTest(tf.test.TestCase):
  """Validation uses the moving average; the final test and the export use
  the best validated weights (--export=best); training keeps its own."""

  def test_average_for_validation_best_for_final_trained_kept(self):
    import numpy as np
    from core.data import datasets
    from tests import helpers
    parts = helpers.parts(["/cpu:0", "/cpu:1"], steps_per_epoch=10,
                          total_steps=10, global_batch_size=8,
                          ema_decay=0.9, export="best")
    eng, weights = parts.evaluator, parts.weights
    split = datasets.synthetic(32, seed=5)
    params = parts.model.trainable_variables
    trained = [v.numpy() for v in params]
    uniform = np.log(10.0)  # all-zero weights: equal logits for 10 classes
    for avg in weights.ema.values:
      avg.assign(tf.zeros_like(avg))
    self.assertAllClose(eng.evaluate(split).values["loss/main"], uniform)
    self.assertEqual(weights.final_step(), -1)  # no best yet: the average
    self.assertIsNone(weights.best_validation())
    self.assertAllClose(eng.evaluate(split, "final").values["loss/main"],
                        uniform)
    self.assertTrue(weights.offer_best(0.5, 7))  # keeps the average (zeros)
    for avg, value in zip(weights.ema.values, trained):
      avg.assign(value)                          # the average moves on
    self.assertNotAllClose(eng.evaluate(split).values["loss/main"], uniform)
    self.assertAllClose(eng.evaluate(split, "final").values["loss/main"],
                        uniform)
    self.assertEqual(weights.final_step(), 7)
    for v, value in zip(params, trained):        # training's weights intact
      self.assertAllEqual(v.numpy(), value)
    self.assertFalse(weights.offer_best(0.4, 9))
    # The record the run's last line reports (checkpointed: a resume keeps
    # it).
    self.assertEqual(weights.best_validation(), (0.5, 7))


class ReadingTest(tf.test.TestCase):

  def test_the_flags_of_augmentation_reach_the_input_pipeline(self):
    from core.data import pipeline
    from tests import helpers
    parts = helpers.parts(["/cpu:0"], steps_per_epoch=1, total_steps=1,
                          augment=("crop", "flip"), crop_padding=2, seed=7)
    self.assertEqual(parts.trainer.feed.reading, pipeline.Reading(
        image_size=28, channels=1, augment=("crop", "flip"), seed=7,
        crop_padding=2))
    self.assertIs(parts.evaluator.feed, parts.trainer.feed)


class EvaluationPartsTest(tf.test.TestCase):
  """train.evaluate's parts: the run's model and weight sets, nothing that
  only training needs, and a checkpoint of a training run restores into
  them."""

  def test_it_holds_no_optimizer_and_restores_a_training_checkpoint(self):
    from core.data import datasets
    from core.runtime import checkpointing, distribution
    from tests import helpers
    trained = helpers.parts(["/cpu:0", "/cpu:1"], steps_per_epoch=4,
                            total_steps=4, global_batch_size=8,
                            ema_decay=0.9)
    trainer = trained.trainer
    trainer.train(trainer.iterator(datasets.synthetic(32), 0), 2)
    directory = self.get_temp_dir()
    checkpointing.Checkpointer(directory,
                               **trained.checkpoint_objects()).save(2)
    strategy = trainer.feed.strategy
    config = RunConfig(model_dir="/unused", image_size=28,
                       global_batch_size=8, ema_decay=0.9,
                       blocks=helpers.SMALL_BLOCKS)
    evaluating = build.evaluation_parts(
        config, strategy, helpers.SYNTHETIC_INFO,
        distribution.split_batch(8, strategy))
    self.assertIsNone(evaluating.trainer)
    self.assertEqual(set(evaluating.checkpoint_objects()),
                     {"model", "state", "ema"})
    self.assertEqual(set(trained.checkpoint_objects()),
                     {"model", "state", "ema", "optimizer"})
    restored = checkpointing.Checkpointer(
        directory, writer=False,
        **evaluating.checkpoint_objects()).restore_latest()
    self.assertEqual(restored, 2)
    self.assertEqual(int(evaluating.state.global_step.numpy()), 2)
    split = datasets.synthetic(16, seed=4)
    self.assertEqual(evaluating.evaluator.evaluate(split, "final").values,
                     trained.evaluator.evaluate(split, "final").values)

