import dataclasses
import json
import os

import tensorflow as tf

from core.runtime.errors import InputError
from train.assembly import manifest
from train.assembly.config import TrainConfig


class ManifestTest(tf.test.TestCase):

  def test_refuses_another_configuration_naming_the_difference(self):
    d = self.get_temp_dir()
    manifest.write(d, {"fingerprint": TrainConfig(model_dir=d).fingerprint})
    manifest.check_compatible(d, TrainConfig(model_dir=d, epochs=3)
                              .fingerprint)  # training longer is fine
    with self.assertRaisesRegex(InputError, r"holds a run with another "
                                r"configuration \(image_size: 224 there, 28 "
                                r"now\)"):
      manifest.check_compatible(d, TrainConfig(model_dir=d, image_size=28)
                                .fingerprint)

  def test_an_option_listed_on_one_side_only_differs_too(self):
    d = self.get_temp_dir()
    manifest.write(d, {"fingerprint": TrainConfig(
        model_dir=d, ema_decay=0.999).fingerprint})
    with self.assertRaisesRegex(InputError, r"\(ema_decay: 0.999 there, "
                                r"None now\)"):
      manifest.check_compatible(d, TrainConfig(model_dir=d).fingerprint)
    manifest.write(d, {"fingerprint": TrainConfig(model_dir=d).fingerprint})
    with self.assertRaisesRegex(InputError, r"\(stem: None there, 'small' "
                                r"now\)"):
      manifest.check_compatible(d, TrainConfig(model_dir=d, stem="small")
                                .fingerprint)

  def test_changed_flags_names_each_difference_but_the_folder(self):
    d = self.get_temp_dir()
    self.assertEqual(manifest.changed_flags(d, {"epochs": 1}), [])  # none
    before = TrainConfig(model_dir=d, epochs=12, aux_loss_weights=(0.3, 0.3))
    manifest.write(d, {"flags": dataclasses.asdict(before)})
    self.assertEqual(manifest.changed_flags(d, dataclasses.asdict(before)),
                     [])  # tuples read back as lists still match
    moved = dataclasses.replace(before, model_dir="/elsewhere", epochs=24,
                                augment=("flip", "erase"))
    self.assertEqual(manifest.changed_flags(d, dataclasses.asdict(moved)), [
        "augment: [] there, ['flip', 'erase'] now",
        "epochs: 12 there, 24 now"])
    # A flag the older manifest did not have is not a change.
    self.assertEqual(manifest.changed_flags(d, {"new_option": 1}), [])

  def test_written_atomically_as_json(self):
    d = self.get_temp_dir()
    manifest.write(d, {"a": 1})
    self.assertEqual(json.load(open(os.path.join(d, "manifest.json"))),
                     {"a": 1})
    self.assertEmpty([f for f in os.listdir(d) if f.startswith(".manifest")])

  def test_unreadable_manifest(self):
    d = os.path.join(self.get_temp_dir(), "bad")
    os.makedirs(d)
    open(os.path.join(d, "manifest.json"), "w").write("{")
    with self.assertRaisesRegex(InputError, "cannot be read"):
      manifest.check_compatible(d, {})
