import numpy as np
import tensorflow as tf

from layers import normalization
from layers.normalization import BatchNorm, BatchStatistics

EPS = normalization.EPSILON


def images(n=8, seed=0):
  return tf.random.stateless_normal([n, 3, 3, 2], [seed, 1]) * 3.0 + 1.5


class BatchNormTest(tf.test.TestCase):

  def test_each_group_is_normalised_by_its_own_statistics(self):
    layer, x = BatchNorm(2), images()
    y = layer(x, BatchStatistics(4)).numpy().reshape(2, 4 * 3 * 3, 2)
    self.assertAllClose(y.mean(axis=1), np.zeros([2, 2]), atol=1e-5)
    groups = x.numpy().reshape(2, 36, 2)
    want = (groups - groups.mean(1, keepdims=True)) / np.sqrt(
        groups.var(1, keepdims=True) + EPS)
    self.assertAllClose(y, want, atol=1e-5)

  def test_a_group_does_not_see_the_others(self):
    layer, x = BatchNorm(2), images()
    changed = tf.concat([x[:4], images(seed=7)[4:] * 10.0], axis=0)
    first = layer(x, BatchStatistics(4))[:4]
    self.assertAllClose(first, layer(changed, BatchStatistics(4))[:4])
    # One group of 8 instead: the first four now depend on the last four.
    self.assertNotAllClose(layer(x, BatchStatistics())[:4],
                           layer(changed, BatchStatistics())[:4])

  def test_weight_zero_examples_do_not_count(self):
    layer, x = BatchNorm(2), images()
    weight = tf.constant([1.0, 1.0, 0.0, 1.0] * 2)
    garbage = tf.tensor_scatter_nd_update(x, [[2], [6]],
                                          tf.fill([2, 3, 3, 2], 1e4))
    kept = [0, 1, 3, 4, 5, 7]
    a = tf.gather(layer(x, BatchStatistics(4, weight)), kept)
    b = tf.gather(layer(garbage, BatchStatistics(4, weight)), kept)
    self.assertAllClose(a, b, atol=1e-5)
    stats = BatchStatistics(4, weight)
    layer(garbage, stats)
    self.assertEqual(float(stats.total_weight()), 6.0)

  def test_gradient_is_that_of_the_textbook_formula(self):
    layer, x = BatchNorm(2), images()
    layer.gamma.assign([1.5, 0.5])
    layer.beta.assign([0.1, -0.2])
    target = tf.random.stateless_normal(x.shape, [3, 4])

    def textbook(v):
      mean, var = tf.nn.moments(v, axes=[0, 1, 2])
      return tf.nn.batch_normalization(v, mean, var, layer.beta, layer.gamma,
                                       EPS)
    grads = []
    for forward in (lambda v: layer(v, BatchStatistics()), textbook):
      with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.square(forward(x) - target))
      grads.append(tape.gradient(loss, [x, layer.gamma, layer.beta]))
    for got, want in zip(*grads):
      self.assertAllClose(got, want, rtol=1e-4, atol=1e-4)

  def test_a_batch_of_unknown_size_is_grouped_the_same(self):
    # Pipelines that do not fix the batch dimension (traced with None).
    layer, x = BatchNorm(2), images()
    weight = tf.constant([1.0, 0.0, 1.0, 1.0] * 2)

    @tf.function(input_signature=[tf.TensorSpec([None, 3, 3, 2]),
                                  tf.TensorSpec([None])])
    def dynamic(v, w):
      stats = BatchStatistics(4, w)
      return layer(v, stats), stats.sums()[0]
    got, sums = dynamic(x, weight)
    stats = BatchStatistics(4, weight)
    self.assertAllClose(got, layer(x, stats), atol=1e-6)
    self.assertAllClose(sums, stats.sums()[0], atol=1e-6)

  def _ops(self, weight, batch=8, fused=True):
    """The op types of a traced training pass (4 examples a group)."""
    layer = BatchNorm(2)
    fn = tf.function(lambda v, w: layer(v, BatchStatistics(4, w, fused)))
    spec = None if weight is None else tf.TensorSpec([batch])
    graph = fn.get_concrete_function(tf.TensorSpec([batch, 3, 3, 2]),
                                     spec).graph
    return {op.type for op in graph.get_operations()}

  def test_a_batch_of_known_size_takes_the_fused_kernel(self):
    # The fused kernel is what makes the step fast (2.5x per layer): with
    # or without weights (the counted rows partitioned out), no control
    # flow (a tf.cond per layer doubled the step's tracing time).
    for weight in (None, tf.ones([8])):
      ops = self._ops(weight)
      self.assertIn("FusedBatchNormV3", ops)
      self.assertNotIn("Square", ops)  # the weighted formula's
      self.assertNotIn("If", ops)
      self.assertNotIn("StatelessIf", ops)
    # Unknown size, or fused=False (XLA, whose lowering of the fused
    # kernel takes E[x^2] - E[x]^2): the weighted formula.
    for ops in (self._ops(tf.ones([8]), batch=None),
                self._ops(tf.ones([8]), fused=False)):
      self.assertNotIn("FusedBatchNormV3", ops)
      self.assertIn("Square", ops)

  def test_the_next_layer_takes_the_fused_kernel_too(self):
    # Stitching the counted rows back loses the static batch size; without
    # it restored every later layer fell back to the weighted formula, and
    # one replica's (two groups cut apart) and two replicas' layers took
    # different formulas: their bfloat16 steps parted by 40 % of an update.
    first, second = BatchNorm(2), BatchNorm(2)

    def two_layers(v, w):
      stats = BatchStatistics(4, w)
      return second(first(v, stats), stats)
    graph = tf.function(two_layers).get_concrete_function(
        tf.TensorSpec([8, 3, 3, 2]), tf.TensorSpec([8])).graph
    kernels = [op for op in graph.get_operations()
               if op.type == "FusedBatchNormV3"]
    self.assertLen(kernels, 4)  # 2 layers x 2 groups
    self.assertEqual(kernels[-1].outputs[0].shape.as_list()[1:], [3, 3, 2])

  def test_under_xla_the_variance_keeps_its_precision(self):
    # Maps whose mean is 300 times their spread: one-pass variance
    # cancels (a negative variance, NaN outputs, was seen); the step
    # passes fused=False under --jit_compile.
    layer, x = BatchNorm(2), images() * 0.01 + 300.0

    @tf.function(jit_compile=True)
    def compiled(v):
      stats = BatchStatistics(4, tf.ones([8]), fused=False)
      return layer(v, stats), stats.sums()[1]
    y, var_sum = compiled(x)
    groups = x.numpy().reshape(2, 36, 2)
    want = (groups - groups.mean(1, keepdims=True)) / np.sqrt(
        groups.var(1, keepdims=True) + EPS)
    self.assertAllClose(y.numpy().reshape(2, 36, 2), want, atol=1e-3)
    self.assertAllClose(var_sum, groups.var(1).sum(0) * 4, rtol=1e-3)

  def test_fused_and_weighted_paths_agree(self):
    # The fused kernel (over the counted rows) against the weighted
    # formula (fused=False: XLA's and an unknown batch size's path), with
    # and without a skipped row: outputs of the counted rows, gradients to
    # x, gamma and beta, and the recorded statistics.
    target = tf.random.stateless_normal([8, 3, 3, 2], [3, 4])
    # Each within `tol` of the largest entry of its tensor: beta's and
    # gamma's gradients are sums of 72 terms whose small entries cancel
    # (seen 1.6e-5 of the largest in float32).
    for dtype, tol in ((tf.float32, 1e-4), (tf.bfloat16, 3e-2)):
      for weight in (None, tf.ones([8]),
                     tf.constant([1.0] * 6 + [0.0, 1.0])):
        layer, x = BatchNorm(2), tf.cast(images() + 3.0, dtype)
        layer.gamma.assign([1.5, 0.5])
        layer.beta.assign([0.1, -0.2])
        mask = 1.0 if weight is None else tf.reshape(weight, [8, 1, 1, 1])
        results = []
        for fused in (True, False):
          stats = BatchStatistics(4, weight, fused)
          with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.cast(layer(x, stats), tf.float32) * mask
            loss = tf.reduce_sum(tf.square(y - target))
          grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
          # In bfloat16 only the outputs and statistics: the weighted
          # formula's gradients there are bfloat16 sums (beta's seen
          # [0.50, -1.59] against the fused kernel's [0.06, -1.96] and
          # float32's [0.11, -1.96]).
          results.append([y, *stats.sums(), stats.total_weight()] + (
              [tf.cast(grads[0], tf.float32), *grads[1:]]
              if dtype == tf.float32 else []))
        for a, b in zip(*results):
          scale = max(float(tf.reduce_max(tf.abs(b))), 1.0)
          self.assertAllClose(a, b, rtol=tol, atol=tol * scale,
                              msg=f"{dtype.name} {weight}")

  def test_a_group_gives_the_same_bits_alone_or_beside_others(self):
    # One replica's two groups and two replicas' one group each: the
    # fused kernel sees the same rows either way, with a skipped image in
    # the other group or not (at one thread count: the kernel's blocking
    # follows the threads, so runs on other core counts agree to rounding).
    layer, x = BatchNorm(2), images()
    for weight in (tf.ones([8]), tf.constant([1.0] * 6 + [0.0, 1.0])):
      together = BatchStatistics(4, weight)
      y = layer(x, together)
      sums = []
      for half in (slice(0, 4), slice(4, 8)):
        alone = BatchStatistics(4, weight[half])
        self.assertAllEqual(y[half], layer(x[half], alone))
        sums.append(alone.sums())
      for got, a, b in zip(together.sums(), *sums):
        self.assertAllEqual(got, a + b)

  def test_an_all_skipped_group_counts_nowhere_and_stays_finite(self):
    layer, x = BatchNorm(2), images()
    weight = tf.constant([0.0] * 4 + [1.0] * 4)
    stats = BatchStatistics(4, weight)
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = layer(x, stats)
      loss = tf.reduce_sum(y * tf.reshape(weight, [8, 1, 1, 1]))
    grad = tape.gradient(loss, x)
    self.assertTrue(np.isfinite(y.numpy()).all())
    self.assertAllEqual(grad[:4], tf.zeros_like(grad[:4]))
    alone = BatchStatistics(4)
    layer(x[4:], alone)
    for got, want in zip(stats.sums(), alone.sums()):
      self.assertAllClose(got, want, rtol=1e-6)
    self.assertEqual(float(stats.total_weight()), 4.0)

  def test_bfloat16_training_keeps_the_dtype_and_the_values(self):
    # The fused kernel computes in float32 inside and rounds once: the
    # outputs within bfloat16's rounding of float32's.
    layer, x = BatchNorm(2), images() + 10.0
    layer.gamma.assign([1.5, 0.5])
    half = tf.cast(x, tf.bfloat16)
    with tf.GradientTape() as tape:
      tape.watch(half)
      y = layer(half, BatchStatistics(4, tf.ones([8])))
      loss = tf.reduce_sum(tf.cast(y, tf.float32) * images(seed=5))
    self.assertEqual(y.dtype, tf.bfloat16)
    self.assertEqual(tape.gradient(loss, half).dtype, tf.bfloat16)
    want = layer(tf.cast(half, tf.float32), BatchStatistics(4))
    self.assertAllClose(tf.cast(y, tf.float32), want, atol=0.02)

  def test_inference_uses_the_moving_statistics(self):
    layer, x = BatchNorm(2), images()
    layer.moving_mean.assign([1.0, -2.0])
    layer.moving_variance.assign([4.0, 0.25])
    layer.gamma.assign([2.0, 1.0])
    layer.beta.assign([0.5, 0.0])
    want = (x.numpy() - [1.0, -2.0]) / np.sqrt(np.array([4.0, 0.25]) + EPS)
    self.assertAllClose(layer(x), want * [2.0, 1.0] + [0.5, 0.0], atol=1e-5)

  def test_inference_keeps_a_low_precision_input_dtype(self):
    y = BatchNorm(2)(tf.cast(images(), tf.bfloat16))
    self.assertEqual(y.dtype, tf.bfloat16)

  def test_moving_statistics_follow_at_the_averaging_rate(self):
    layer = BatchNorm(2)
    layer.update(tf.constant([4.0, 4.0]), tf.constant([3.0, 3.0]), 1)
    rate = 1 - 2 / 11  # min(0.99, (1 + n) / (10 + n)) at n = 1
    self.assertAllClose(layer.moving_mean, [4 * rate] * 2)
    self.assertAllClose(layer.moving_variance, [1 + 2 * rate] * 2)
    layer.update(tf.constant([0.0, 0.0]), tf.constant([1.0, 1.0]), 10_000)
    self.assertAllClose(layer.moving_mean, [4 * rate * 0.99] * 2)

  def test_a_batch_that_groups_do_not_divide_is_refused(self):
    with self.assertRaisesRegex(
        ValueError, "groups of 3 examples need a batch that is a "
        "multiple of 3; received a batch of 8"):
      BatchNorm(2)(images(), BatchStatistics(3))
    with self.assertRaisesRegex(ValueError, "`group_size` must be a positive"):
      BatchStatistics(0)


if __name__ == "__main__":
  tf.test.main()
