import json
import os

import tensorflow as tf

from core.errors import InputError
from train import manifest
from train.config import TrainConfig


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
