"""The TFLite files of an export, run by LiteRT in a process without
TensorFlow or the project (train/artefacts/standalone.py)."""

import os
import tempfile
import shutil

import numpy as np
import tensorflow as tf

from core.data import folders
from core.data import types
from core.runtime.errors import InputError
from layers.googlenet import GoogLeNet
from tests import helpers
from train.artefacts import export
from train.artefacts import serving
from train.artefacts import standalone
from train.artefacts import tflite_model


def images_of(seed: int, count: int) -> np.ndarray:
  """Smooth patterns with noise: logits further apart than pure noise's."""
  rng = np.random.RandomState(seed)
  ramp = np.linspace(0, 1, 28)
  out = []
  for _ in range(count):
    a, b = rng.uniform(1, 8, size=2)
    field = 127 + 100 * np.sin(a * ramp[:, None] + b * ramp[None, :])
    out.append(field[..., None] + rng.normal(0, 20, [28, 28, 1]))
  return np.clip(out, 0, 255).astype(np.uint8)


class TFLiteTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # Its own folder: the process's temp dir is shared with the other test
    # files a worker runs, and a version 1 exported there first is kept.
    tmp = tempfile.mkdtemp()
    model = GoogLeNet(10, 1, 32, blocks=helpers.SMALL_BLOCKS)
    cls.saved_model = export.export(model, os.path.join(tmp, "export"), 1,
                                    image_shape=(28, 28, 1),
                                    class_names=[str(i) for i in range(10)])
    cls.images = images_of(0, 40)
    cls.want = tf.saved_model.load(cls.saved_model).signatures[
        "serving_default"](images=tf.constant(cls.images))["logits"].numpy()
    cls.files = {}
    for kind in tflite_model.KINDS:
      cls.files[kind] = path = os.path.join(tmp, f"{kind}.tflite")
      with open(path, "wb") as f:
        f.write(tflite_model.convert(cls.saved_model, kind, images_of(1, 32)))
    cls.runs = {kind: standalone.run_apart(path, cls.images)
                for kind, path in cls.files.items()}

  def gap(self, kind: str) -> float:
    """The largest logit difference from the SavedModel's, relative to the
    largest logit."""
    return float(np.abs(self.runs[kind]["logits"] - self.want).max()
                 / np.abs(self.want).max())

  def agreement(self, kind: str) -> float:
    return float((self.runs[kind]["logits"].argmax(-1)
                  == self.want.argmax(-1)).mean())

  def test_float32_reproduces_the_saved_model(self):
    self.assertLess(self.gap("float32"), 1e-4)
    self.assertEqual(self.agreement("float32"), 1.0)

  def test_float16_is_close_and_mostly_agrees(self):
    # Measured: 5e-4 of the largest logit, every class the same.
    self.assertLess(self.gap("float16"), 1e-2)
    self.assertGreaterEqual(self.agreement("float16"), 0.95)

  def test_int8_files_are_within_quantization_error(self):
    # Measured: 1.5-2.5 % of the largest logit, 98-100 % of the classes;
    # uncalibrated or broken ranges give chance (10 %).
    for kind in ("int8_dynamic", "int8"):
      self.assertLess(self.gap(kind), 0.1, kind)
      self.assertGreaterEqual(self.agreement(kind), 0.8, kind)

  def test_runs_without_tensorflow_or_the_project(self):
    for kind, run in self.runs.items():
      modules = set(run["modules"])
      self.assertIn("ai_edge_litert", modules, kind)
      self.assertEmpty(modules & {"tensorflow", "keras", "train", "core",
                                  "layers"}, kind)

  def test_any_batch_size_gives_the_same_logits(self):
    one_by_one = standalone.run_apart(self.files["float32"], self.images[:7],
                                      batch=1)["logits"]
    threes = standalone.run_apart(self.files["float32"], self.images[:7],
                                  batch=3)["logits"]
    self.assertAllClose(one_by_one, self.runs["float32"]["logits"][:7],
                        atol=1e-5)
    self.assertAllClose(threes, one_by_one, atol=1e-5)

  def test_sizes_and_what_each_kind_computes_in(self):
    from ai_edge_litert import interpreter  # pylint: disable=g-import-not-at-top
    sizes = {k: os.path.getsize(p) for k, p in self.files.items()}
    self.assertBetween(sizes["float16"] / sizes["float32"], 0.45, 0.55)
    for kind in ("int8_dynamic", "int8"):
      self.assertBetween(sizes[kind] / sizes["float32"], 0.2, 0.3)
    dtypes = {}
    for kind, path in self.files.items():
      tensors = interpreter.Interpreter(model_path=path).get_tensor_details()
      dtypes[kind] = [t["dtype"] for t in tensors]
    # Full integer: float32 only at the edges (the preprocessing's cast,
    # the outputs); dynamic range: int8 weights, float32 activations.
    self.assertLess(dtypes["int8"].count(np.float32), 8)
    self.assertGreater(dtypes["int8"].count(np.int8), 50)
    self.assertGreater(dtypes["int8_dynamic"].count(np.int8), 10)
    self.assertGreater(dtypes["int8_dynamic"].count(np.float32), 20)
    self.assertNotIn(np.int8, dtypes["float32"])
    self.assertIn(np.float16, dtypes["float16"])

  def test_the_signature_feeds_pixels_and_reads_logits(self):
    from ai_edge_litert import interpreter  # pylint: disable=g-import-not-at-top
    for kind, path in self.files.items():
      runner = interpreter.Interpreter(model_path=path)
      details = runner.get_signature_list()[serving.CONVERSION]
      self.assertEqual(details, {"inputs": ["images"],
                                 "outputs": ["logits", "probabilities"]},
                       kind)
      self.assertEqual(runner.get_input_details()[0]["dtype"], np.uint8)
      self.assertEqual(list(runner.get_input_details()[0]["shape"]),
                       [1, 28, 28, 1])

  def test_a_folder_name_that_is_a_pattern_is_read_as_it_is(self):
    # TensorFlow finds a SavedModel's variables by globbing: `[1]` would
    # match `1`, never the folder itself (core/runtime/files.literal).
    folder = os.path.join(self.get_temp_dir(), "lr[1]")
    shutil.copytree(self.saved_model, folder)
    self.assertEqual(tflite_model.convert(folder, "float32")[4:8], b"TFL3")

  def test_argument_errors(self):
    with self.assertRaisesRegex(ValueError, "`kind` must be one of float32, "
                                "float16, int8_dynamic, int8; received "
                                "kind='int4'"):
      tflite_model.convert(self.saved_model, "int4")
    with self.assertRaisesRegex(ValueError, "`representative` images are "
                                "needed for kind='int8'"):
      tflite_model.convert(self.saved_model, "int8")


class RepresentativeImagesTest(tf.test.TestCase):

  def test_drawn_at_random_from_rows_without_repeats(self):
    # Image i is filled with i: the pixels say which rows were drawn.
    rows = np.arange(200, dtype=np.uint8)[:, None, None, None] * np.ones(
        [1, 28, 28, 1], np.uint8)
    split = types.Split(rows, np.zeros(200, np.int32))
    drawn = tflite_model.representative_images(split, (28, 28, 1), count=50)
    picked = drawn[:, 0, 0, 0]
    self.assertEqual(drawn.shape, (50, 28, 28, 1))
    self.assertLen(set(picked), 50)
    self.assertGreater(picked.max(), 150)  # not the first 50
    self.assertAllEqual(picked, tflite_model.representative_images(
        split, (28, 28, 1), count=50)[:, 0, 0, 0])  # seeded
    self.assertLen(tflite_model.representative_images(split, (28, 28, 1),
                                                      count=500), 200)

  def test_files_are_decoded_and_resized(self):
    root = self.get_temp_dir()
    helpers.write_image_folder(root, per_class=4)
    split = folders.FileSplit(
        np.array(sorted(os.path.join(d, n) for d, _, ns in os.walk(root)
                        for n in ns)), np.zeros(12, np.int32))
    drawn = tflite_model.representative_images(split, (32, 32, 3), count=5)
    self.assertEqual((drawn.shape, drawn.dtype), ((5, 32, 32, 3), np.uint8))

  def test_shards_are_refused(self):
    class Shards:  # an AnySplit that cannot be cut (no `take`)
      num_examples, num_shards = 10, 2

    with self.assertRaisesRegex(InputError, "drawn from IDX or image-folder "
                                "data; records \(TFRecord shards, TFDS "
                                "sets\) are streamed"):
      tflite_model.representative_images(Shards(), (28, 28, 1))
