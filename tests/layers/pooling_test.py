import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from layers import pooling


class PoolingTest(tf.test.TestCase, parameterized.TestCase):

  def test_max_pool_matches_numpy(self):
    x = np.random.RandomState(0).rand(1, 4, 4, 2).astype(np.float32)
    y = pooling.MaxPool2D(2, 2, padding="VALID")(x)
    expected = x.reshape(1, 2, 2, 2, 2, 2).max(axis=(2, 4))
    self.assertAllClose(y, expected)

  def test_avg_pool_matches_numpy(self):
    x = np.random.RandomState(0).rand(1, 6, 6, 1).astype(np.float32)
    y = pooling.AvgPool2D(3, 3, padding="VALID")(x)
    expected = x.reshape(1, 2, 3, 2, 3, 1).mean(axis=(2, 4))
    self.assertAllClose(y, expected)

  def test_global_avg_pool(self):
    x = np.random.RandomState(0).rand(2, 3, 5, 4).astype(np.float32)
    self.assertAllClose(pooling.GlobalAvgPool()(x), x.mean(axis=(1, 2)))

  @parameterized.parameters(("SAME", 3, 2, 7, 4), ("SAME", 3, 1, 7, 7),
                            ("VALID", 5, 3, 14, 4), ("VALID", 2, 2, 2, 1))
  def test_out_size_matches_op(self, padding, window, stride, size, expected):
    layer = pooling.MaxPool2D(window, stride, padding=padding)
    self.assertEqual(layer.out_size(size), expected)
    self.assertEqual(layer(tf.ones([1, size, size, 1])).shape[1], expected)

  @parameterized.parameters(pooling.MaxPool2D, pooling.AvgPool2D)
  def test_stride_one_same_pool_of_a_1x1_map_is_skipped(self, kind):
    x = tf.random.normal([2, 1, 1, 3])
    layer = kind(3, 1)
    self.assertAllEqual(layer(x), tf.nn.pool(x, [3, 3], kind.__name__[:3]
                                             .upper(), padding="SAME"))
    graph = tf.function(layer).get_concrete_function(
        tf.TensorSpec([None, 1, 1, 3])).graph
    self.assertNotIn("Pool", " ".join(op.type for op in
                                       graph.get_operations()))

  def test_avg_pool_of_the_whole_map_is_a_mean(self):
    x = tf.random.normal([2, 3, 3, 4])
    layer = pooling.AvgPool2D(3, 1, padding="VALID")
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(x)
      y = layer(x)
      want = tf.nn.avg_pool2d(x, 3, 1, "VALID")
      loss, ref = tf.reduce_sum(y * y), tf.reduce_sum(want * want)
    self.assertAllClose(y, want, atol=1e-6)
    self.assertAllClose(tape.gradient(loss, x), tape.gradient(ref, x),
                        atol=1e-6)
    graph = tf.function(layer).get_concrete_function(
        tf.TensorSpec([None, 3, 3, 4])).graph
    self.assertNotIn("AvgPool", [op.type for op in graph.get_operations()])

  @parameterized.parameters((15, 3, 2), (14, 3, 2), (112, 3, 2), (25, 3, 2),
                            (7, 2, 2), (13, 2, 2), (3, 3, 2))
  def test_ceil_mode_is_pytorchs(self, side, window, stride):
    # PyTorch's MaxPool2d(window, stride, ceil_mode=True), written out:
    # windows start at 0, stride, ...; the last may run past the edge.
    out = -(-(side - window) // stride) + 1
    if (out - 1) * stride >= side:
      out -= 1
    x = np.random.RandomState(side).randn(2, side, side + 1, 3).astype(
        np.float32) - 5.0  # all negative: padding must not be a zero
    out_w = -(-(side + 1 - window) // stride) + 1
    if (out_w - 1) * stride >= side + 1:
      out_w -= 1
    expected = np.stack([np.stack([
        x[:, i * stride:i * stride + window,
          j * stride:j * stride + window].max(axis=(1, 2))
        for j in range(out_w)], axis=1) for i in range(out)], axis=1)
    layer = pooling.MaxPool2D(window, stride, ceil_mode=True)
    y = layer(tf.constant(x))
    self.assertEqual(layer.out_size(side), out)
    self.assertAllEqual(y, expected)
    if side == 15:  # where SAME differs: 8 windows starting at -1
      self.assertEqual(pooling.MaxPool2D(3, 2).out_size(15), 8)
      self.assertEqual(out, 7)

  @parameterized.parameters((14, 4), (12, 4), (2, 4), (7, 4), (5, 1))
  def test_adaptive_average_is_pytorchs(self, side, size):
    # torch.nn.functional.adaptive_avg_pool2d, written out.
    x = np.random.RandomState(side).rand(2, side, side, 3).astype(np.float32)
    def bounds(i):
      return (i * side) // size, -(-((i + 1) * side) // size)
    expected = np.zeros([2, size, size, 3], np.float32)
    for i in range(size):
      for j in range(size):
        (r0, r1), (c0, c1) = bounds(i), bounds(j)
        expected[:, i, j] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
    self.assertAllClose(pooling.AdaptiveAvgPool2D(size)(tf.constant(x)),
                        expected, rtol=1e-6, atol=1e-6)
    if (side, size) == (14, 4):  # windows of 4 at 0, 3, 7, 10
      rows = pooling.AdaptiveAvgPool2D(4).matrix(14)
      self.assertEqual([list(np.flatnonzero(r)) for r in rows],
                       [[0, 1, 2, 3], [3, 4, 5, 6], [7, 8, 9, 10],
                        [10, 11, 12, 13]])

  def test_no_variables(self):
    self.assertEmpty(pooling.MaxPool2D(3, 2).variables)

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, r"`window` must be a positive "
                                r"integer; received window=0"):
      pooling.MaxPool2D(0, 1)
