"""The ONNX file of an export, run by onnxruntime in a process without
TensorFlow or the project (train/artefacts/standalone.py)."""

import os
import tempfile

import numpy as np
import tensorflow as tf

from core.runtime.errors import ExportError
from layers.googlenet import GoogLeNet
from tests import helpers
from tests.train.artefacts.tflite_model_test import images_of
from train.artefacts import export
from train.artefacts import serving
from train.artefacts import onnx_model
from train.artefacts import standalone


class OnnxTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # Its own folder: the process's temp dir is shared with the other test
    # files a worker runs, and a version 1 exported there first is kept.
    tmp = tempfile.mkdtemp()
    # Batch normalisation and test-time mirroring: every op the paper's
    # network and `make train`'s options put in the graph.
    model = GoogLeNet(10, 1, 28, blocks=helpers.SMALL_BLOCKS, stem="medium",
                      norm="batch")
    rng = np.random.RandomState(1)
    for layer in model.norm_layers:  # statistics far from their start
      layer.moving_mean.assign(rng.normal(size=layer.channels) * 0.1)
      layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.channels))
    saved_model = export.export(model, os.path.join(tmp, "export"), 1,
                                image_shape=(28, 28, 1), mirror=True,
                                class_names=[str(i) for i in range(10)])
    cls.path = os.path.join(tmp, "model.onnx")
    with open(cls.path, "wb") as f:
      f.write(onnx_model.convert(saved_model))
    cls.images = images_of(0, 9)
    cls.want = tf.saved_model.load(saved_model).signatures[
        "serving_default"](images=tf.constant(cls.images))["logits"].numpy()

  def test_logits_match_the_saved_model_at_any_batch_size(self):
    scale = np.abs(self.want).max()
    for batch in (1, 4, 9):
      run = standalone.run_apart(self.path, self.images, batch=batch)
      self.assertLess(np.abs(run["logits"] - self.want).max(), 1e-4 * scale,
                      batch)
      self.assertAllEqual(run["logits"].argmax(-1), self.want.argmax(-1))
      modules = set(run["modules"])
      self.assertIn("onnxruntime", modules)
      self.assertEmpty(modules & {"tensorflow", "keras", "train", "core",
                                  "layers"})

  def test_the_graph_takes_pixels_of_any_batch(self):
    import onnx  # pylint: disable=g-import-not-at-top
    graph = onnx.load(self.path).graph
    (images,) = graph.input
    dims = images.type.tensor_type.shape.dim
    self.assertEqual(images.name, "images")
    self.assertEqual(images.type.tensor_type.elem_type, onnx.TensorProto.UINT8)
    self.assertEqual([d.dim_value for d in dims[1:]], [28, 28, 1])
    self.assertFalse(dims[0].HasField("dim_value"))  # symbolic: any batch
    self.assertEqual(sorted(o.name for o in graph.output),
                     ["logits", "probabilities"])

  def test_an_op_tf2onnx_cannot_convert_writes_nothing(self):
    module = tf.Module()
    module.scale = tf.Variable(2.0)
    module.fn = tf.function(
        lambda images: {"logits": tf.math.bessel_i0e(
            tf.cast(images, tf.float32) * module.scale)},
        input_signature=[tf.TensorSpec([None, 4], tf.uint8, name="images")])
    path = os.path.join(self.get_temp_dir(), "odd")
    tf.saved_model.save(module, path,
                        signatures={serving.CONVERSION: module.fn})
    with self.assertRaisesRegex(
        ExportError, f"tf2onnx could not convert {path} .*BesselI0e.*; no "
        r"\.onnx file was written"):
      onnx_model.convert(path)
