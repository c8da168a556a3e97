import numpy as np
import tensorflow as tf

from layers import initializers, variables


class InitializersTest(tf.test.TestCase):

  def test_he_normal_variance(self):
    w = initializers.he_normal()([3, 3, 64, 128], tf.float32).numpy()
    self.assertNear(w.std(), np.sqrt(2.0 / (3 * 3 * 64)), 0.002)
    self.assertLess(np.abs(w).max(), 2 * np.sqrt(2.0 / 576) / 0.8796 + 1e-6)

  def test_lecun_normal_variance(self):
    w = initializers.lecun_normal()([1024, 256], tf.float32).numpy()
    self.assertNear(w.std(), np.sqrt(1.0 / 1024), 0.001)

  def test_seeded_draws_repeat(self):
    tf.random.set_seed(7)
    a = initializers.he_normal()([4, 4], tf.float32)
    tf.random.set_seed(7)
    self.assertAllEqual(a, initializers.he_normal()([4, 4], tf.float32))

  def test_zeros_and_constant(self):
    self.assertAllEqual(initializers.zeros()([2], tf.float32), [0, 0])
    self.assertAllEqual(initializers.constant(3.0)([2], tf.float32), [3, 3])


class VariablesTest(tf.test.TestCase):

  def test_policy(self):
    v = variables.weight(tf.zeros([2]), name="w")
    self.assertEqual(v.aggregation, tf.VariableAggregation.NONE)
    self.assertEqual(v.synchronization, tf.VariableSynchronization.ON_WRITE)
    self.assertTrue(v.trainable)

  def test_mirrored_under_strategy(self):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
      v = variables.weight(tf.ones([2]), name="w")
    self.assertLen(strategy.experimental_local_results(v), 2)
