import dataclasses
import json
import os

import tensorflow as tf

from core.data import datasets
from core.runtime.errors import InputError
from train.assembly import manifest
from train.startup.config import RunConfig


class ManifestTest(tf.test.TestCase):

  def test_refuses_another_configuration_naming_the_difference(self):
    d = self.get_temp_dir()
    manifest.write(d, {"fingerprint": RunConfig(model_dir=d).fingerprint})
    self.assertIsNone(manifest.check_compatible(d, RunConfig(
        model_dir=d, epochs=3).fingerprint))  # training longer is fine
    self.assertRegex(manifest.check_compatible(d, RunConfig(
        model_dir=d, image_size=28).fingerprint),
                     r"holds a run with another configuration \(image_size: "
                     r"224 there, 28 now\)$")

  def test_an_option_listed_on_one_side_only_differs_too(self):
    d = self.get_temp_dir()
    manifest.write(d, {"fingerprint": RunConfig(
        model_dir=d, ema_decay=0.999).fingerprint})
    self.assertRegex(manifest.check_compatible(
        d, RunConfig(model_dir=d).fingerprint),
                     r"\(ema_decay: 0.999 there, None now\)")
    manifest.write(d, {"fingerprint": RunConfig(model_dir=d).fingerprint})
    self.assertRegex(manifest.check_compatible(
        d, RunConfig(model_dir=d, stem="small").fingerprint),
                     r"\(stem: None there, 'small' now\)")

  def test_changed_flags_names_each_difference_but_the_folder(self):
    d = self.get_temp_dir()
    self.assertEqual(manifest.changed_flags(d, {"epochs": 1}), [])  # none
    before = RunConfig(model_dir=d, epochs=12, aux_loss_weights=(0.3, 0.3))
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


class HandEditedManifestTest(tf.test.TestCase):
  """A manifest.json someone else wrote: one line naming it, never a
  traceback."""

  def check(self, text: bytes, pattern: str):
    d = self.get_temp_dir()
    with open(os.path.join(d, "manifest.json"), "wb") as f:
      f.write(text)
    with self.assertRaisesRegex(InputError, pattern):
      manifest.check_compatible(d, {})
    self.assertEqual(manifest.changed_flags(d, {"epochs": 1}), [])

  def test_wrong_types_and_encodings(self):
    self.check(b"[1, 2]", r"manifest.json is not a manifest this engine "
               r"wrote \(the file is not a JSON object\)")
    self.check(b'{"fingerprint": [1]}', r"\('fingerprint' is not a JSON")
    self.check(b'{"flags": "x"}', r"\('flags' is not a JSON object\)")
    self.check(b'{"a": "\xff\xfe"}', r"manifest.json cannot be read")


class SameDataTest(tf.test.TestCase):

  def test_shards_read_by_another_number_of_workers_are_other_data(self):
    d = self.get_temp_dir()
    shards = datasets.DatasetInfo("tfrecord", (None, None, 3), ("a", "b"))
    manifest.write(d, {"data": shards.as_dict(), "input_pipelines": 2,
                       "flags": {"label_offset": 0}})
    self.assertIsNone(manifest.check_same_data(d, shards, 0, 2))
    self.assertEqual(manifest.check_same_data(d, shards, 0, 3), (
        f"`model_dir` {d} holds a run trained on other data (workers "
        "reading the shards: 2 there, 3 now, which reads them in another "
        "order; run as many workers)"))
    # Folders (and IDX sets) are indexed: the worker count changes nothing.
    folder = datasets.DatasetInfo("folder", (None, None, 3), ("a", "b"))
    manifest.write(d, {"data": folder.as_dict(), "input_pipelines": 2,
                       "flags": {"label_offset": 0}})
    self.assertIsNone(manifest.check_same_data(d, folder, 0, 3))

  def test_names_each_difference_in_the_data(self):
    d = self.get_temp_dir()
    info = datasets.DatasetInfo("folder", (None, None, 3), ("cat", "dog"))
    manifest.write(d, {"data": info.as_dict(), "flags": {"label_offset": 0}})
    self.assertIsNone(manifest.check_same_data(d, info, 0))
    more = datasets.DatasetInfo("folder", (None, None, 3),
                                ("cat", "dog", "eel"))
    self.assertEqual(manifest.check_same_data(d, more, 1), (
        f"`model_dir` {d} holds a run trained on other data (num_classes: "
        "2 there, 3 now; class_names: added 1 ('eel'); label_offset: 0 "
        "there, 1 now)"))
    renamed = datasets.DatasetInfo("folder", (None, None, 3), ("dog", "cat"))
    self.assertRegex(manifest.check_same_data(d, renamed, 0),
                     r"class_names: the same names in another order\)$")
    thousand = datasets.DatasetInfo("folder", (None, None, 3), tuple(
        f"n{i:08d}" for i in range(1000)))
    self.assertIn("added 1000 ('n00000000', 'n00000001', 'n00000002', ...),"
                  " gone 2 ('cat', 'dog')",
                  manifest.check_same_data(d, thousand, 0))
