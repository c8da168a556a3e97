"""The benchmark's analytic FLOP count against GOOGLENET.md's figures."""

import tensorflow as tf

from bench import flops
from layers.dense import Dense
from layers.googlenet import GoogLeNet


class FlopsTest(tf.test.TestCase):

  def test_dense_counts_exactly(self):
    layer = Dense(7, 3)
    self.assertEqual(flops.forward_macs(layer, tf.TensorSpec([1, 7])), 21)

  def test_googlenet_forward_at_224(self):
    # GOOGLENET.md: about 1.58 G multiply-adds at 224x224x3 (trunk).
    model = GoogLeNet(1000, 3, 224)
    macs = flops.forward_macs(lambda x: model(x, training=False,
                                               reference=True).logits,
                              tf.TensorSpec([1, 224, 224, 3]))
    self.assertBetween(macs / 1e9, 1.57, 1.59)

  def test_googlenet_forward_at_28(self):
    # reliability_performance_anchors.md B.2: 28.8 M (trunk), 29.2 M with aux.
    model = GoogLeNet(10, 1, 28)
    trunk = flops.forward_macs(lambda x: model(x, training=False,
                                               reference=True).logits,
                               tf.TensorSpec([1, 28, 28, 1]))
    self.assertBetween(trunk / 1e6, 28.5, 29.1)
    self.assertEqual(flops.training_flops_per_image(10), 60)

  def test_fast_formulations_are_not_what_is_counted(self):
    # The nominal count is the textbook graph; the engine's fast paths at
    # 28x28 (cropped kernels, and whole-map products with their one-hot
    # weight assembly) would count something else.
    model = GoogLeNet(10, 1, 28)
    spec = tf.TensorSpec([1, 28, 28, 1])
    nominal = flops.forward_macs(
        lambda x: model(x, training=False, reference=True).logits, spec)
    fast = flops.forward_macs(lambda x: model(x, training=False).logits, spec)
    self.assertNotEqual(fast, nominal)
    self.assertBetween(nominal / 1e6, 28.5, 29.1)
