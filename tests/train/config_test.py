import tensorflow as tf

from core.errors import InputError
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
    with self.assertRaises(Exception):
      TrainConfig(model_dir="m").epochs = 3

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
    ]
    for kwargs, pattern in cases:
      with self.assertRaisesRegex(InputError, pattern):
        TrainConfig(model_dir="m", **kwargs)
