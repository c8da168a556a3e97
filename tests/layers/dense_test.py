import numpy as np
import tensorflow as tf

from layers import dense


class DenseTest(tf.test.TestCase):

  def test_variables(self):
    layer = dense.Dense(4, 3, name="fc")
    self.assertEqual([v.name for v in layer.trainable_variables],
                     ["fc/bias:0", "fc/kernel:0"])
    self.assertEqual(layer.kernel.shape, [4, 3])

  def test_matches_numpy(self):
    layer = dense.Dense(4, 3, activation=tf.nn.relu)
    layer.bias.assign([1.0, -2.0, 0.0])
    x = np.random.RandomState(0).randn(5, 4).astype(np.float32)
    expected = np.maximum(x @ layer.kernel.numpy() + [1.0, -2.0, 0.0], 0)
    self.assertAllClose(layer(x), expected, atol=1e-6)

  def test_function_equals_eager(self):
    layer = dense.Dense(4, 3)
    x = tf.random.normal([2, 4])
    self.assertAllClose(tf.function(layer)(x), layer(x))

  def test_bfloat16_bias_gradient_is_the_float32_sum(self):
    # TF's BiasAddGrad sums bfloat16 in bfloat16 on the CPU: 4,096 ones
    # would sum to 256 (layers/formulations.bias_add).
    layer = dense.Dense(4, 3)
    x = tf.ones([4096, 4], tf.bfloat16)
    with tf.GradientTape() as tape:
      y = layer(x)
    self.assertEqual(y.dtype, tf.bfloat16)
    self.assertAllEqual(tape.gradient(y, layer.bias), [4096.0] * 3)

  def test_no_bias(self):
    self.assertLen(dense.Dense(2, 2, use_bias=False).trainable_variables, 1)

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, r"`out_features` must be a "
                                r"positive integer; received out_features=-1"):
      dense.Dense(2, -1)
    with self.assertRaisesRegex(ValueError, "expects inputs with 2 channels"):
      dense.Dense(2, 2)(tf.ones([1, 3]))
