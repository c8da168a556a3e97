import numpy as np
import tensorflow as tf

from core.data import preprocessing


class PreprocessingTest(tf.test.TestCase):

  def test_scales_to_minus_one_one(self):
    x = tf.reshape(tf.constant([0, 255, 51, 204], tf.uint8), [1, 2, 2, 1])
    y = preprocessing.preprocess(x, image_size=2, channels=1)
    self.assertAllClose(tf.reshape(y, [-1]), [-1.0, 1.0, -0.6, 0.6])

  def test_resize_and_repeat(self):
    x = tf.constant(np.random.RandomState(0).randint(0, 256, [2, 28, 28, 1]),
                    tf.uint8)
    y = preprocessing.preprocess(x, image_size=56, channels=3)
    self.assertEqual(y.shape, [2, 56, 56, 3])
    self.assertAllEqual(y[..., 0], y[..., 2])
    expected = tf.image.resize(tf.cast(x, tf.float32) / 127.5 - 1, [56, 56])
    self.assertAllClose(y[..., :1], expected, atol=1e-5)

  def test_compute_dtype(self):
    y = preprocessing.preprocess(tf.zeros([1, 4, 4, 1], tf.uint8),
                                 image_size=4, channels=1, dtype=tf.bfloat16)
    self.assertEqual(y.dtype, tf.bfloat16)

  def test_channel_mismatch(self):
    with self.assertRaisesRegex(ValueError, "`images` must have 1 or 3 "
                                "channels; received 2"):
      preprocessing.preprocess(tf.zeros([1, 4, 4, 2], tf.uint8),
                               image_size=4, channels=3)
