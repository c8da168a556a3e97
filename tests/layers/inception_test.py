import tensorflow as tf
from absl.testing import parameterized

from layers import inception

SPEC = inception.InceptionSpec(4, 3, 5, 2, 3, 2)


def reference(block, x):
  """The block as the paper draws it: four separate branches (tf.nn)."""
  def conv(c, y):
    y = tf.nn.conv2d(y, c.kernel, 1, "SAME") + c.bias
    return tf.nn.relu(y)
  b1 = conv(block.branch1x1, x)
  b3 = conv(block.branch3x3, conv(block.branch3x3_reduce, x))
  b5 = conv(block.branch5x5, conv(block.branch5x5_reduce, x))
  bp = conv(block.branch_pool, tf.nn.max_pool2d(x, 3, 1, "SAME"))
  return tf.concat([b1, b3, b5, bp], -1)


class InceptionTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.block = inception.Inception(6, SPEC, name="inception_4a")
    for v in self.block.trainable_variables:
      if "bias" in v.name:
        v.assign(tf.random.normal(v.shape, seed=1) * 0.1)

  def test_forward_equals_reference(self):
    x = tf.random.normal([2, 5, 5, 6], seed=2)
    self.assertAllClose(self.block(x), reference(self.block, x), atol=1e-5)

  def test_true_3x3_and_5x5_kernels(self):
    self.assertEqual(self.block.branch3x3.kernel.shape, [3, 3, 3, 5])
    self.assertEqual(self.block.branch5x5.kernel.shape, [5, 5, 2, 3])

  def test_variable_names(self):
    names = {v.name for v in self.block.trainable_variables}
    self.assertIn("inception_4a/branch3x3/kernel:0", names)
    self.assertIn("inception_4a/branch_pool/bias:0", names)
    self.assertLen(names, 12)

  def test_out_channels(self):
    self.assertEqual(self.block.out_channels, 4 + 5 + 3 + 2)
    self.assertEqual(self.block(tf.ones([1, 3, 3, 6])).shape, [1, 3, 3, 14])

  @parameterized.parameters(1, 2, 4, 7)  # every map side of a 28x28 input
  def test_outputs_and_gradients_match_reference(self, size):
    # On 1x1 maps the pool is skipped; on 1x1 and 2x2 maps the convolutions
    # are matrix products (layers/conv.py); the reference is raw tf.nn.
    x = tf.random.normal([2, size, size, 6], seed=3)
    variables = self.block.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(x)
      out, want = self.block(x), reference(self.block, x)
      loss = tf.reduce_sum(out ** 2)
      ref = tf.reduce_sum(want ** 2)
    self.assertAllClose(out, want, atol=1e-5)
    for a, b in zip(tape.gradient(loss, variables + (x,)),
                    tape.gradient(ref, variables + (x,))):
      self.assertAllClose(a, b, atol=1e-4, rtol=1e-4)

  def test_bfloat16_matches_reference_with_one_pointwise_product(self):
    # In bfloat16 the three 1x1 convolutions on the input run as one.
    x = tf.cast(tf.random.normal([2, 7, 7, 6], seed=3), tf.bfloat16)
    variables = self.block.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(x)
      out = self.block(x)
      want = self.block(x, reference=True)
      loss = tf.reduce_sum(tf.cast(out, tf.float32) ** 2)
      ref = tf.reduce_sum(tf.cast(want, tf.float32) ** 2)
    self.assertEqual(out.dtype, tf.bfloat16)
    for a, b in zip([out, *tape.gradient(loss, variables + (x,))],
                    [want, *tape.gradient(ref, variables + (x,))]):
      self.assertAllClose(tf.cast(a, tf.float32), tf.cast(b, tf.float32),
                          atol=5e-2, rtol=5e-2)
    graph = tf.function(self.block).get_concrete_function(
        tf.TensorSpec([None, 7, 7, 6], tf.bfloat16)).graph
    pointwise = [op for op in graph.get_operations()
                 if op.type == "Conv2D" and op.inputs[1].shape[:2] == [1, 1]]
    self.assertLen(pointwise, 2)  # the three on the input, branch_pool

  def test_function_equals_eager(self):
    x = tf.random.normal([1, 4, 4, 6])
    self.assertAllClose(tf.function(self.block)(x), self.block(x))

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, r"`spec.conv5x5` must be a "
                                r"positive integer; received spec.conv5x5=0"):
      inception.Inception(6, SPEC._replace(conv5x5=0))
