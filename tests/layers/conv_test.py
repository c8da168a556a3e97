import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from layers import conv
from layers import formulations


def numpy_conv(x, k, stride, padding):
  """Direct NumPy convolution (cross-correlation), NHWC / HWIO."""
  kh = k.shape[0]
  if padding == "SAME":
    out = -(-x.shape[1] // stride)
    total = max((out - 1) * stride + kh - x.shape[1], 0)
    lo = total // 2
    x = np.pad(x, [(0, 0), (lo, total - lo), (lo, total - lo), (0, 0)])
  else:
    out = (x.shape[1] - kh) // stride + 1
  y = np.zeros([x.shape[0], out, out, k.shape[-1]])
  for i in range(out):
    for j in range(out):
      patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kh, :]
      y[:, i, j, :] = np.tensordot(patch, k, axes=([1, 2, 3], [0, 1, 2]))
  return y


class Conv2DTest(tf.test.TestCase, parameterized.TestCase):

  def test_variables_named_and_shaped(self):
    layer = conv.Conv2D(3, 8, 5, name="c")
    self.assertEqual([v.name for v in layer.trainable_variables],
                     ["c/bias:0", "c/kernel:0"])
    self.assertEqual(layer.kernel.shape, [5, 5, 3, 8])
    self.assertEqual(layer.kernel.dtype, tf.float32)

  @parameterized.parameters(("SAME", 1), ("SAME", 2), ("VALID", 1),
                            ("VALID", 3))
  def test_matches_numpy(self, padding, stride):
    layer = conv.Conv2D(2, 3, 3, stride=stride, padding=padding)
    layer.bias.assign([0.5, -1.0, 2.0])
    x = np.random.RandomState(0).rand(2, 7, 7, 2).astype(np.float32)
    expected = numpy_conv(x, layer.kernel.numpy(), stride, padding) + [
        0.5, -1.0, 2.0]
    self.assertAllClose(layer(x), expected, atol=1e-5)
    self.assertEqual(layer(x).shape[1], layer.out_size(7))

  @parameterized.parameters((224, 7, 2, 3), (15, 7, 2, 3), (9, 3, 1, 1),
                            (5, 1, 1, 2))
  def test_explicit_padding_is_symmetric(self, side, k, stride, pad):
    # PyTorch's Conv2d(padding=pad): `pad` zeros on every side, where TF's
    # SAME puts the odd one after.
    layer = conv.Conv2D(2, 3, k, stride=stride, padding=pad)
    x = tf.random.normal([1, side, side, 2], seed=3)
    padded = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    expected = tf.nn.conv2d(padded, layer.kernel, stride, "VALID") + \
        layer.bias
    y = layer(x)
    self.assertEqual(layer.out_size(side), expected.shape[1])
    self.assertAllClose(y, expected, rtol=1e-5, atol=1e-5)
    self.assertAllClose(layer(x, reference=True), expected, rtol=1e-5,
                        atol=1e-5)

  def test_activation_applied(self):
    # Kernels of both signs, so the pre-activations are of both signs for
    # any draw: the output must be the ReLU of the convolution, exactly
    # (a negative value, or a positive one changed, fails).
    layer = conv.Conv2D(1, 4, 1, activation=tf.nn.relu)
    layer.kernel.assign([[[[1.0, -1.0, 2.0, -0.5]]]])
    layer.bias.assign([0.0, 0.0, -3.0, 0.25])
    x = tf.constant([[[[-1.0], [2.0]], [[0.5], [-4.0]]]])
    pre = tf.nn.conv2d(x, layer.kernel, 1, "SAME") + layer.bias
    self.assertLess(float(tf.reduce_min(pre)), 0.0)
    self.assertGreater(float(tf.reduce_max(pre)), 0.0)
    self.assertAllEqual(layer(x), tf.nn.relu(pre))

  @parameterized.parameters((1, 3), (1, 5), (2, 5), (2, 3), (3, 7), (4, 5))
  def test_small_maps_crop_the_kernel_exactly(self, size, k):
    layer = conv.Conv2D(3, 4, k)
    layer.bias.assign([0.1, 0.2, 0.3, 0.4])
    x = tf.random.normal([2, size, size, 3], seed=5)
    with tf.GradientTape(persistent=True) as tape:
      y = layer(x)
      ref = tf.nn.conv2d(x, layer.kernel, 1, "SAME") + layer.bias
      loss, ref_loss = tf.reduce_sum(y ** 2), tf.reduce_sum(ref ** 2)
    self.assertAllClose(y, ref, atol=1e-5)
    self.assertAllClose(tape.gradient(loss, layer.kernel),
                        tape.gradient(ref_loss, layer.kernel), atol=1e-4)
    cropped = formulations.crop_to_map(layer.kernel, size, size)
    self.assertEqual(cropped.shape[0], min(k, 2 * size - 1))

  def test_reference_argument_runs_the_textbook_convolution(self):
    layer = conv.Conv2D(3, 4, 3)
    x = tf.random.normal([2, 2, 2, 3], seed=7)
    ops = lambda **kw: {op.type for op in tf.function(
        lambda z: layer(z, **kw)).get_concrete_function(
            tf.TensorSpec([None, 2, 2, 3])).graph.get_operations()}
    self.assertNotIn("Conv2D", ops())
    self.assertIn("Conv2D", ops(reference=True))
    self.assertAllClose(layer(x), layer(x, reference=True), atol=1e-5)

  @parameterized.parameters((1, 1), (2, 3), (1, 5))
  def test_fast_paths_keep_static_shapes(self, size, k):
    layer = conv.Conv2D(4, 6, k)
    fn = tf.function(layer).get_concrete_function(
        tf.TensorSpec([None, size, size, 4]))
    self.assertEqual(fn.structured_outputs.shape.as_list(),
                     [None, size, size, 6])

  def test_function_equals_eager(self):
    layer = conv.Conv2D(2, 4, 3)
    x = tf.random.normal([2, 5, 5, 2])
    self.assertAllClose(tf.function(layer)(x), layer(x))

  def test_unknown_batch_size(self):
    layer = conv.Conv2D(2, 4, 3)
    fn = tf.function(layer).get_concrete_function(
        tf.TensorSpec([None, 5, 5, 2]))
    self.assertEqual(fn.structured_outputs.shape.as_list(), [None, 5, 5, 4])

  def test_runs_in_input_dtype(self):
    layer = conv.Conv2D(2, 4, 3)
    self.assertEqual(layer(tf.ones([1, 4, 4, 2], tf.float16)).dtype,
                     tf.float16)

  def test_errors(self):
    for bad in ("same", -1, True):
      with self.assertRaisesRegex(ValueError, r"`padding` must be 'SAME' or "
                                  r"'VALID' or a non-negative integer; "
                                  rf"received padding={bad!r}"):
        conv.Conv2D(1, 1, 1, padding=bad)
    with self.assertRaisesRegex(ValueError, r"`kernel_size` must be a "
                                r"positive integer; received kernel_size=0"):
      conv.Conv2D(1, 1, 0)
    with self.assertRaisesRegex(ValueError, r"expects inputs with 3 channels"
                                r".*received an input with 2"):
      conv.Conv2D(3, 1, 1)(tf.ones([1, 2, 2, 2]))


class SideBySideTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.convs = [conv.Conv2D(5, width, 1, activation=tf.nn.relu,
                              name=f"c{width}") for width in (2, 3, 4)]
    for c in self.convs:
      c.bias.assign(tf.random.normal(c.bias.shape, seed=4))

  @parameterized.parameters(tf.float32, tf.bfloat16)
  def test_equals_each_layer_and_its_gradients(self, dtype):
    x = tf.cast(tf.random.normal([2, 3, 3, 5], seed=1), dtype)
    variables = [v for c in self.convs for v in c.trainable_variables]

    def run(fused):
      with tf.GradientTape() as tape:
        tape.watch(x)
        ys = (conv.side_by_side(self.convs, x) if fused
              else [c(x) for c in self.convs])
        loss = tf.add_n([tf.reduce_sum(tf.cast(y, tf.float32) * (i + 1.0))
                         for i, y in enumerate(ys)])
      return ys + tape.gradient(loss, [x] + variables)

    tol = 1e-5 if dtype == tf.float32 else 2e-2
    for got, want in zip(run(True), run(False)):
      self.assertEqual(got.shape, want.shape)
      self.assertAllClose(tf.cast(got, tf.float32), tf.cast(want, tf.float32),
                          rtol=tol, atol=tol)

  def test_refuses_layers_that_differ(self):
    for odd in (conv.Conv2D(5, 2, 3, activation=tf.nn.relu, name="k3"),
                conv.Conv2D(5, 2, 1, name="linear"),
                conv.Conv2D(5, 2, 1, activation=tf.nn.relu, batch_norm=True,
                            name="bn")):
      with self.assertRaisesRegex(
          ValueError, r"`convs` must share input width, kernel size, stride, "
          r"padding and activation and each have a bias and no batch "
          rf"normalisation; received convs=\['c2', '{odd.name}'\]"):
        conv.side_by_side([self.convs[0], odd], tf.ones([1, 2, 2, 5]))
