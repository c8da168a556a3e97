import numpy as np
import tensorflow as tf

from layers import dropout


class DropoutTest(tf.test.TestCase):

  def test_identity_when_not_training(self):
    x = tf.ones([4, 8])
    self.assertAllEqual(dropout.Dropout(0.5)(x, training=False), x)

  def test_matches_numpy_with_stateless_noise(self):
    seed = tf.constant([3, 4], tf.int64)
    x = tf.ones([6, 10])
    y = dropout.Dropout(0.4)(x, training=True,
                             noise=dropout.DropoutNoise(seed))
    uniform = tf.random.stateless_uniform([6, 10], seed=seed).numpy()
    self.assertAllClose(y, (uniform >= 0.4) / 0.6)

  def test_replica_slices_reassemble_the_global_batch(self):
    # Two replicas taking rows [0, 3) and [3, 6) get exactly the noise one
    # replica gets for all six rows.
    seed = tf.constant([1, 2], tf.int64)
    layer = dropout.Dropout(0.5)
    x = tf.reshape(tf.range(60, dtype=tf.float32) + 1, [6, 10])
    whole = layer(x, training=True, noise=dropout.DropoutNoise(seed, 0, 6))
    halves = [layer(x[r:r + 3], training=True,
                    noise=dropout.DropoutNoise(seed, r, 6)) for r in (0, 3)]
    self.assertAllEqual(tf.concat(halves, 0), whole)

  def test_fold_in_gives_independent_masks(self):
    noise = dropout.DropoutNoise(tf.constant([1, 2], tf.int64))
    layer, x = dropout.Dropout(0.5), tf.ones([8, 64])
    a = layer(x, training=True, noise=noise.fold_in(1))
    b = layer(x, training=True, noise=noise.fold_in(2))
    self.assertNotAllEqual(a, b)

  def test_keeps_expected_fraction(self):
    y = dropout.Dropout(0.7)(tf.ones([200, 100]), training=True)
    self.assertNear(float(np.mean(y.numpy() > 0)), 0.3, 0.02)

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, r"`rate` must be a number in "
                                r"\[0, 1\); received rate=1.0"):
      dropout.Dropout(1.0)
    with self.assertRaisesRegex(TypeError, "`training` must be a Python bool"):
      dropout.Dropout(0.1)(tf.ones([1, 1]), training=tf.constant(True))
