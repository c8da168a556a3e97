"""The run's configuration (train/startup/config.py): its defaults, its
freezing, its fingerprint and its help; the rules it checks are in
rules_test."""

import dataclasses

import tensorflow as tf

from core.data import choices
from train.startup.config import RunConfig


class ConfigTest(tf.test.TestCase):

  def test_defaults_follow_the_seed(self):
    c = RunConfig(model_dir="m")
    self.assertEqual((c.global_batch_size, c.epochs, c.image_size,
                      c.optimizer, c.aux_loss_weights),
                     (64, 40, 224, "adam", (0.3, 0.3)))
    self.assertEqual(c.rate, 1e-3)
    self.assertEqual(RunConfig(model_dir="m", optimizer="sgd").rate, 0.01)

  def test_frozen(self):
    with self.assertRaisesRegex(dataclasses.FrozenInstanceError,
                                "cannot assign to field 'epochs'"):
      RunConfig(model_dir="m").epochs = 3

  def test_recipe_options_in_the_fingerprint_only_when_set(self):
    # Runs from before these options existed resume; a run with them does
    # not resume another's checkpoints (its model or state differ).
    plain = RunConfig(model_dir="m").fingerprint
    self.assertNotIn("stem", plain)
    recipe = RunConfig(model_dir="m", stem="small", ema_decay=0.999,
                       export="best", label_smoothing=0.1,
                       norm="batch").fingerprint
    self.assertEqual((recipe["stem"], recipe["ema_decay"], recipe["export"],
                      recipe["norm"]), ("small", 0.999, "best", "batch"))
    self.assertNotIn("label_smoothing", recipe)  # a training choice only

  def test_every_field_has_help(self):
    for field in dataclasses.fields(RunConfig):
      self.assertGreater(len(field.metadata.get("help", "")), 10, field.name)

  def test_the_augment_help_names_every_augmentation(self):
    # The help once offered crop, flip and erase only, though the policies
    # and colour were accepted.
    fields = {field.name: field for field in dataclasses.fields(RunConfig)}
    text = fields["augment"].metadata["help"]
    for name in choices.AUGMENTATIONS:
      self.assertIn(name, text)


if __name__ == "__main__":
  tf.test.main()
