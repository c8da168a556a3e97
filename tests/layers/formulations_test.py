"""The exact fast formulations of a convolution against the textbook one."""

from unittest import mock

import tensorflow as tf
from absl.testing import parameterized

from layers import formulations
from tests import helpers


class FormulationsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      # (map height, width, kernel, the op that must be absent afterwards)
      ("pointwise_1x1_map", 1, 1, 1, "Conv2D"),
      ("pointwise_4x4_map", 4, 4, 1, "Conv2D"),
      ("cropped_to_pointwise", 1, 1, 5, "Conv2D"),
      ("dense_2x2_3x3", 2, 2, 3, "Conv2D"),
      ("cropped_then_dense", 2, 2, 5, "Conv2D"),
      ("convolution_4x4_3x3", 4, 4, 3, "MatMul"),
      ("convolution_rectangular", 1, 2, 3, "MatMul"),
  )
  def test_fast_paths_equal_the_textbook_convolution(self, h, w, k, absent):
    x = tf.random.normal([3, h, w, 5], seed=1)
    kernel = tf.random.normal([k, k, 5, 7], seed=2)
    bias = tf.random.normal([7], seed=3)

    def run(reference):
      with tf.GradientTape() as tape:
        tape.watch([x, kernel, bias])
        y = formulations.conv2d(x, kernel, bias, tf.nn.relu,
                                reference=reference)
        loss = tf.reduce_sum(y * tf.range(7, dtype=tf.float32))
      return [y] + tape.gradient(loss, [x, kernel, bias])

    for got, want in zip(run(False), run(True)):
      self.assertAllClose(got, want, rtol=1e-5, atol=1e-5)
    ops = {op.type for op in tf.function(
        lambda z: formulations.conv2d(z, kernel, bias, tf.nn.relu)
    ).get_concrete_function(tf.TensorSpec([None, h, w, 5])).graph
           .get_operations()}
    self.assertNotIn(absent, ops)
    self.assertIn("Conv2D", {op.type for op in tf.function(
        lambda z: formulations.conv2d(z, kernel, reference=True)
    ).get_concrete_function(tf.TensorSpec([None, h, w, 5])).graph
                             .get_operations()})

  @parameterized.named_parameters(
      ("bias_relu", True, tf.nn.relu),
      ("relu", False, tf.nn.relu),
      ("bias", True, None),
  )
  def test_bfloat16_pointwise_runs_forward_as_a_convolution(self, use_bias,
                                                           activation):
    x = tf.cast(tf.random.normal([2, 7, 7, 8], seed=1), tf.bfloat16)
    kernel = tf.random.normal([1, 1, 8, 6], seed=2)
    bias = tf.random.normal([6], seed=3) if use_bias else None
    weights = tf.range(6, dtype=tf.bfloat16)

    def run(x, kernel, bias, weights, reference):
      with tf.GradientTape() as tape:
        tape.watch([x, kernel] + ([bias] if use_bias else []))
        y = formulations.conv2d(x, kernel, bias, activation,
                                reference=reference)
        loss = tf.reduce_sum(tf.cast(y * weights, tf.float32))
      return [y] + tape.gradient(loss, [x, kernel] + (
          [bias] if use_bias else []))

    # The reference runs in float32 on the same bfloat16 values: TF's
    # bfloat16 Conv2DBackpropFilter is its own kernel where oneDNN has no
    # native bfloat16 (AVX2), and its kernel gradient came out up to 4 % off
    # the float64 one (-98.5 for -101.3; the products', -101.0).
    rounded = lambda t: tf.cast(tf.cast(t, tf.bfloat16), tf.float32)
    got = run(x, kernel, bias, weights, reference=False)
    want = run(tf.cast(x, tf.float32), rounded(kernel),
               rounded(bias) if use_bias else None,
               tf.cast(weights, tf.float32), reference=True)
    self.assertEqual([t.dtype for t in got],
                     [tf.bfloat16] * 2 + [tf.float32] * (len(got) - 2))
    for output, expected in zip(got, want):
      self.assertAllClose(tf.cast(output, tf.float32), expected, rtol=2e-2,
                          atol=2e-2)

    def op_types(reference):
      def loss(z):
        with tf.GradientTape() as tape:
          tape.watch(z)
          y = formulations.conv2d(z, kernel, bias, activation,
                                  reference=reference)
        return tape.gradient(y, [z, kernel])
      return {op.type for op in tf.function(loss).get_concrete_function(
          tf.TensorSpec([None, 7, 7, 8], tf.bfloat16)).graph.get_operations()}
    ops = op_types(False)
    self.assertIn("Conv2D", ops)
    self.assertIn("MatMul", ops)  # the gradients: matrix products
    self.assertNotIn("Conv2DBackpropFilter", ops)
    self.assertIn("Conv2DBackpropFilter", op_types(True))

  @parameterized.parameters((tf.float32, 7), (tf.bfloat16, 6))
  def test_pointwise_in_float32_or_on_small_maps_is_a_product(self, dtype,
                                                              side):
    x = tf.TensorSpec([None, side, side, 8], dtype)
    kernel = tf.random.normal([1, 1, 8, 6])
    plain = tf.function(lambda z: formulations.conv2d(z, kernel))
    relu = tf.function(lambda z: formulations.conv2d(z, kernel, None,
                                                     tf.nn.relu))
    for fn in (plain, relu):
      ops = {op.type for op in fn.get_concrete_function(x).graph
             .get_operations()}
      self.assertIn("MatMul", ops)
      self.assertNotIn("Conv2D", ops)

  @parameterized.parameters(
      # (kernel, map side, stride, padding, reference, formulation)
      (1, 7, 1, "SAME", False, "pointwise"),
      (1, 7, 1, "VALID", False, "pointwise"),
      (1, 7, 2, "SAME", False, "convolution"),
      (5, 1, 1, "SAME", False, "pointwise"),
      (3, 2, 1, "SAME", False, "whole_map"),
      (5, 2, 1, "SAME", False, "whole_map"),
      (3, 4, 1, "SAME", False, "convolution"),
      (3, None, 1, "SAME", False, "convolution"),
      (7, 28, 2, "SAME", False, "convolution"),
      (3, 2, 1, "SAME", True, "reference"),
      (1, 7, 1, "SAME", True, "reference"),
  )
  def test_choice(self, k, side, stride, padding, reference, expected):
    self.assertEqual(formulations.choose(
        [k, k, 4, 4], side, side, stride=stride, padding=padding,
        reference=reference), expected)

  @parameterized.named_parameters(
      # (map side, kernel side, dtype): each path a bias goes through.
      ("convolution_3x3", 16, 3, tf.bfloat16),
      ("pointwise_as_convolution", 16, 1, tf.bfloat16),   # large_bfloat16
      ("pointwise_product", 4, 1, tf.bfloat16),
      ("whole_map_product", 2, 3, tf.bfloat16),
      # float16 keeps TF's gradient, which sums in float32.
      ("float16_convolution", 16, 3, tf.float16),
  )
  def test_16_bit_bias_gradient_is_summed_in_float32(self, side, k, dtype):
    self.check_bias_sum(side, k, dtype)

  def test_the_float32_sum_where_the_product_truncates(self):
    # The branch a CPU without AVX-512 (or oneDNN off) takes, on any CPU.
    self.check_bias_sum(16, 3, tf.bfloat16, product=lambda: False)

  def check_bias_sum(self, side, k, dtype, product=None):
    # TF's CPU BiasAddGrad (and oneDNN's backward with the bias fused) sum
    # bfloat16 in bfloat16: over 50,176 rows its bias gradients came out
    # 20-40 % off. The gradient must be the float64 sum of the
    # 16-bit upstream gradient under the forward's own ReLU mask, rounded
    # once.
    images = 4096 // (side * side)  # 4,096 rows of pixels
    x = tf.cast(tf.random.stateless_normal([images, side, side, 8], [1, 2]),
                dtype)
    kernel = tf.random.stateless_normal([k, k, 8, 16], [3, 4]) * 0.3
    bias = tf.Variable(tf.fill([16], 0.1))
    up = tf.cast(tf.random.stateless_normal([images, side, side, 16],
                                            [5, 6]),
                 dtype)

    @tf.function
    def gradient_and_exact():
      with tf.GradientTape() as tape:
        y = formulations.conv2d(x, kernel, bias, tf.nn.relu)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * tf.cast(up,
                                                              tf.float32))
      mask = formulations.conv2d(x, kernel, bias) > 0
      exact = tf.reduce_sum(tf.cast(tf.where(mask, up, tf.zeros_like(up)),
                                    tf.float64), [0, 1, 2])
      return tape.gradient(loss, bias), exact

    with mock.patch.object(formulations, "_product_rounds_once",
                           product or formulations._product_rounds_once):
      got, exact = gradient_and_exact()
    self.assertEqual(got.dtype, tf.float32)
    # bfloat16 rounds the float32-accumulated sum once (2^-8 relative).
    self.assertAllClose(got, tf.cast(exact, tf.float32), rtol=4e-3,
                        atol=1e-2)

  def test_tfs_own_bfloat16_product_is_found_to_truncate(self):
    # With oneDNN off TensorFlow's own kernel runs, which truncates its
    # float32 sum to bfloat16 on every CPU.
    done = helpers.python("-c", "from layers import formulations; "
                          "print(formulations._product_rounds_once())",
                          env={"TF_ENABLE_ONEDNN_OPTS": "0"})
    self.assertEqual(done.stdout.strip().splitlines()[-1], "False",
                     done.stderr[-2000:])

  @parameterized.named_parameters(
      ("relu", tf.nn.relu), ("none", None), ("relu6", tf.nn.relu6))
  def test_bias_add_gradients_are_tfs_but_the_bias_sum(self, activation):
    # The input's gradient is TF's to the bit (ReLU's at exactly 0
    # included); the bias's is TF's summed in float32: on a few rows, where
    # bfloat16 sums are exact, the same.
    y = tf.constant([[-1.0, 2.0, 0.0], [3.0, -0.5, 7.0]], tf.bfloat16)
    bias = tf.constant([0.0, 0.5, 0.0])
    up = tf.constant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], tf.bfloat16)

    def gradients(f):
      with tf.GradientTape() as tape:
        tape.watch([y, bias])
        out = f(y, bias)
      return tape.gradient(out, [y, bias], output_gradients=up), out

    def tfs(y, bias):
      out = tf.nn.bias_add(y, tf.cast(bias, y.dtype))
      return activation(out) if activation else out

    (dy, db), out = gradients(
        lambda y, b: formulations.bias_add(y, b, activation))
    (want_dy, want_db), want = gradients(tfs)
    self.assertAllEqual(out, want)
    self.assertEqual((dy.dtype, db.dtype), (tf.bfloat16, tf.float32))
    self.assertAllEqual(dy, want_dy)
    self.assertAllEqual(db, want_db)

  def test_crop_keeps_even_kernels(self):
    kernel = tf.ones([4, 4, 1, 1])
    self.assertIs(formulations.crop_to_map(kernel, 1, 1), kernel)
