"""Every layer: checkpoint round trip into a fresh instance with
assert_consumed(), SavedModel round trip, tf.function equals eager."""

import os

import tensorflow as tf
from absl.testing import parameterized

from layers import aux_head, conv, dense, googlenet, inception

GOLDENS = {
    "conv": (lambda: conv.Conv2D(3, 4, 3, name="conv"), [2, 5, 5, 3]),
    "dense": (lambda: dense.Dense(6, 4, name="dense"), [2, 6]),
    "inception": (lambda: inception.Inception(
        8, inception.InceptionSpec(4, 3, 5, 2, 3, 2), name="inc"),
                  [2, 4, 4, 8]),
    "aux_head": (lambda: aux_head.AuxHead(8, 6, 5, name="aux"),
                 [2, 6, 6, 8]),
    "googlenet": (lambda: googlenet.GoogLeNet(10, 1, 28), [2, 28, 28, 1]),
}


def forward(module, x):
  if isinstance(module, googlenet.GoogLeNet):
    return module(x, training=False).logits
  if isinstance(module, aux_head.AuxHead):
    return module(x, training=False)
  return module(x)


class ConformanceTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(*[(k, k) for k in GOLDENS])
  def test_checkpoint_round_trip(self, key):
    factory, shape = GOLDENS[key]
    a, b = factory(), factory()
    x = tf.random.normal(shape, seed=1)
    path = tf.train.Checkpoint(module=a).save(
        os.path.join(self.get_temp_dir(), key))
    tf.train.Checkpoint(module=b).restore(path).assert_consumed()
    self.assertAllClose(forward(a, x), forward(b, x))

  @parameterized.named_parameters(*[(k, k) for k in GOLDENS])
  def test_saved_model_round_trip(self, key):
    factory, shape = GOLDENS[key]
    module = factory()
    module.call = tf.function(lambda x: forward(module, x),
                              input_signature=[tf.TensorSpec(
                                  [None, *shape[1:]])])
    path = os.path.join(self.get_temp_dir(), key + "_sm")
    tf.saved_model.save(module, path)
    loaded = tf.saved_model.load(path)
    x = tf.random.normal(shape, seed=2)
    self.assertAllClose(loaded.call(x), forward(module, x), atol=1e-5)
    saved = tf.train.load_checkpoint(os.path.join(path, "variables",
                                                  "variables"))
    stored = [k for k in saved.get_variable_to_shape_map()
              if k.endswith(".ATTRIBUTES/VARIABLE_VALUE")]
    self.assertLen(stored, len(module.variables))

  @parameterized.named_parameters(*[(k, k) for k in GOLDENS])
  def test_function_equals_eager(self, key):
    factory, shape = GOLDENS[key]
    module = factory()
    x = tf.random.normal(shape, seed=3)
    self.assertAllClose(tf.function(lambda y: forward(module, y))(x),
                        forward(module, x), atol=1e-5)
