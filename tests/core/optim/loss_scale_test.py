import tensorflow as tf

from core.optim.loss_scale import DynamicLossScale


class LossScaleTest(tf.test.TestCase):

  def test_scale_and_unscale(self):
    ls = DynamicLossScale(8.0)
    self.assertAllClose(ls.scale_loss(tf.constant(2.0)), 16.0)
    self.assertAllClose(ls.unscale([tf.constant([16.0, 8.0])])[0], [2.0, 1.0])

  def test_halves_on_overflow_and_resets_counter(self):
    ls = DynamicLossScale(1024.0, growth_interval=3)
    ls.update(tf.constant(True))
    ls.update(tf.constant(False))
    self.assertAllClose(ls.scale, 512.0)
    self.assertEqual(int(ls.good_steps), 0)

  def test_grows_after_interval(self):
    ls = DynamicLossScale(4.0, growth_interval=3)
    for _ in range(3):
      ls.update(tf.constant(True))
    self.assertAllClose(ls.scale, 8.0)
    self.assertEqual(int(ls.good_steps), 0)

  def test_never_below_minimum(self):
    ls = DynamicLossScale(2.0)
    for _ in range(5):
      ls.update(tf.constant(False))
    self.assertAllClose(ls.scale, 1.0)

  def test_float16_gradient_overflow_detected(self):
    ls = DynamicLossScale(2.0 ** 15)
    x = tf.Variable(tf.constant(3.0))
    with tf.GradientTape() as tape:
      loss = tf.cast(x, tf.float16) * tf.constant(1000.0, tf.float16)
      scaled = ls.scale_loss(loss)
    grads = ls.unscale(tape.gradient(scaled, [x]))
    # 1000 * 32768 overflows float16: the step must be flagged.
    finite = tf.reduce_all(tf.math.is_finite(grads[0]))
    self.assertFalse(bool(finite))
    ls.update(finite)
    self.assertAllClose(ls.scale, 2.0 ** 14)

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "`growth_interval` must be a "
                                "positive integer"):
      DynamicLossScale(growth_interval=0)
