import dataclasses

import tensorflow as tf

from core import datasets
from core import distribution
from core.errors import InputError
from train import config as config_lib
from train.config import TrainConfig


class ConfigTest(tf.test.TestCase):

  def test_defaults_follow_the_seed(self):
    c = TrainConfig(model_dir="m")
    self.assertEqual((c.global_batch_size, c.epochs, c.image_size,
                      c.optimizer, c.aux_loss_weights),
                     (64, 40, 224, "adam", (0.3, 0.3)))
    self.assertEqual(c.rate, 1e-3)
    self.assertEqual(TrainConfig(model_dir="m", optimizer="sgd").rate, 0.01)

  def test_frozen(self):
    with self.assertRaisesRegex(dataclasses.FrozenInstanceError,
                                "cannot assign to field 'epochs'"):
      TrainConfig(model_dir="m").epochs = 3

  def test_choice_lists_are_the_ones_the_engine_builds(self):
    self.assertEqual(config_lib.STRATEGIES, distribution.STRATEGIES)
    choices = {f.name: f.metadata.get("choices")
               for f in dataclasses.fields(TrainConfig)}
    self.assertEqual(choices["dataset"], datasets.NAMES)
    self.assertEqual(choices["strategy"], distribution.STRATEGIES)

  def test_every_field_has_help(self):
    for field in dataclasses.fields(TrainConfig):
      self.assertGreater(len(field.metadata.get("help", "")), 10, field.name)

  def test_errors(self):
    cases = [
        (dict(global_batch_size=0), "`global_batch_size` must be a positive "
         "integer; received global_batch_size=0"),
        (dict(optimizer="rmsprop"), "`optimizer` must be one of adam, sgd"),
        (dict(keep_checkpoints=1), "`keep_checkpoints` must be at least 2"),
        (dict(learning_rate=float("nan")), "`learning_rate` must be a "
         "positive finite number"),
        (dict(aux_loss_weights=(0.3,)), "`aux_loss_weights` must be two"),
        (dict(profile_steps=(5, 2)), "`profile_steps` must be empty or two"),
        (dict(train_steps=0), "`train_steps` must be a positive integer"),
        (dict(strategy="tpu"), "`strategy` must be one of mirrored, "
         "one_device, default, multi_worker; received strategy='tpu'"),
        (dict(dataset="cifar"), "`dataset` must be one of mnist, "
         "fashion_mnist, synthetic"),
        (dict(mixed_precision="int8"), "`mixed_precision` must be one of"),
        (dict(epochs=True), "`epochs` must be a positive integer"),

    ]
    for kwargs, pattern in cases:
      with self.assertRaisesRegex(InputError, pattern):
        TrainConfig(model_dir="m", **kwargs)
    with self.assertRaisesRegex(InputError, "`model_dir` must be a directory "
                                "path; received model_dir=''"):
      TrainConfig(model_dir="")
