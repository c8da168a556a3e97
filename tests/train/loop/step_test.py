from unittest import mock

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from core.data import datasets
from layers import dropout
from layers import normalization
from train.loop import step
from tests import helpers


def make_engine(devices=("/cpu:0", "/cpu:1"), **overrides):
  tf.random.set_seed(0)
  return helpers.parts(list(devices), steps_per_epoch=8,
                       total_steps=100, global_batch_size=16, **overrides)


def losses_over(engine, loops, steps=4, examples=128):
  split = datasets.synthetic(examples)
  it = engine.trainer.iterator(split, 0)
  out = []
  for _ in range(loops):
    sums = engine.trainer.loop.run(it, steps)
    out.append(float(sums["loss/total"] / max(float(sums["examples"]), 1)))
  return out


class TrainStepTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters({}, {"norm": "batch", "norm_group_size": 4})
  def test_non_finite_step_is_skipped_and_counted(self, **norm):
    # With batch normalisation the moving statistics do not move either.
    engine = make_engine(**norm)
    engine.model.classifier.bias.assign(
        tf.fill(engine.model.classifier.bias.shape, np.inf))
    before = [v.numpy() for v in engine.model.variables]
    slots_before = [v.numpy() for v in engine.trainer.step.optimizer.variables]
    history = losses_over(engine, 1, steps=3)
    self.assertEqual(history, [0.0])  # no NaN leaks into the metrics
    for b, v in zip(before, engine.model.variables):
      np.testing.assert_array_equal(b, v.numpy(), err_msg=v.name)
    for b, v in zip(slots_before, engine.trainer.step.optimizer.variables):
      np.testing.assert_array_equal(b, v.numpy(), err_msg=v.name)
    self.assertEqual(int(engine.state.skipped_steps.numpy()), 3)
    self.assertEqual(int(engine.state.consecutive_bad.numpy()), 3)
    self.assertEqual(int(engine.state.last_bad_step.numpy()), 2)
    self.assertEqual(int(engine.trainer.step.optimizer.iterations.numpy()), 0)

  # float16 runs about 30x slower than float32 on CPUs (0.8 s a step here
  # against 0.025): its case, with batch normalisation and the loss scale,
  # takes 8 steps instead of 32 (seen: 3.3 -> 1.3 over them). float16
  # without batch normalisation trains through the same step, loss scale
  # and casts (test_loss_scale_reacts_to_injected_overflow runs it).
  @parameterized.parameters(("float32", "none", 8, 4),
                            ("mixed_bfloat16", "none", 8, 4),
                            ("mixed_float16", "batch", 4, 2))
  def test_trains_with_finite_decreasing_loss(self, precision, norm, loops,
                                              steps):
    # Overfit one fixed batch of 16 (every epoch is the same single step):
    # the loss must fall well below its start (~4.1), not just settle at
    # chance (~1.6 ln 10 = 3.7). Seen: float32 1.5, bfloat16 2.4 after 32.
    engine = make_engine(mixed_precision=precision, norm=norm,
                         norm_group_size=4)
    history = losses_over(engine, loops, steps=steps, examples=16)
    self.assertTrue(all(np.isfinite(history)), history)
    self.assertLess(np.mean(history[-2:]), 0.75 * np.mean(history[:2]),
                    history)
    skipped = int(engine.state.skipped_steps.numpy())
    if engine.trainer.step.loss_scale is None:
      self.assertEqual(skipped, 0)
    else:
      # Only overflow skips a step, and each overflow halves the scale once
      # (no growth within 2000 steps): skipped == number of halvings.
      scale = engine.trainer.step.loss_scale.scale.numpy()
      halvings = np.log2(2.0 ** 15 / float(scale))
      self.assertEqual(skipped, halvings)

  def test_data_in_memory_normalises_without_partitioning(self):
    # Data in memory has no weight-0 training row, so its step normalises
    # whole groups (no DynamicPartition: 15 % of make train's step) and
    # takes the update the partitioning step takes, to rounding (SGD:
    # Adam's first step, lr * sign(g), flips where g is round-off).
    updates = []
    for in_memory in (False, True):
      tf.random.set_seed(0)
      engine = helpers.parts(["/cpu:0", "/cpu:1"], steps_per_epoch=8,
                             total_steps=100, global_batch_size=16,
                             norm="batch", norm_group_size=4,
                             optimizer="sgd", in_memory=in_memory)
      self.assertEqual(engine.trainer.step.options.every_example_counts,
                       in_memory)
      start = [v.numpy() for v in engine.model.trainable_variables]
      given = []  # the weights each traced BatchStatistics received
      real = normalization.BatchStatistics.__init__

      def spy(stats, group_size=None, weight=None, fused=True):
        given.append(weight)
        real(stats, group_size, weight, fused)
      with mock.patch.object(normalization.BatchStatistics, "__init__",
                             spy):
        losses_over(engine, 1, steps=1, examples=16)
      self.assertNotEmpty(given)
      self.assertEqual({w is None for w in given}, {in_memory})
      updates.append([v.numpy() - s for v, s in
                      zip(engine.model.trainable_variables, start)])
    # As a whole: a beta before another normalisation has a round-off
    # gradient (its update 1e-12) that no relative bound holds.
    whole = lambda ts: np.sqrt(sum(np.sum(np.square(t)) for t in ts))
    self.assertGreater(whole(updates[0]), 0)
    self.assertLessEqual(whole([a - b for a, b in zip(*updates)]),
                         1e-4 * whole(updates[0]))

  def test_a_batch_of_unstated_size_takes_the_fused_kernel(self):
    # File pipelines batch without fixing the size: the step states it, so
    # their batch normalisation takes the fused kernel as data in memory
    # does, with or without accumulation (not the weighted formula in one
    # case and the fused kernel in the other).
    engine = make_engine(norm="batch", norm_group_size=4)
    step_ = engine.trainer.step
    sizes = []
    real = normalization.BatchStatistics._fused

    def spy(stats, x, gamma, beta):
      sizes.append(x.shape[0])
      return real(stats, x, gamma, beta)
    spec = {"labels": tf.TensorSpec([None], tf.int32),
            "weight": tf.TensorSpec([None]), "bad": tf.TensorSpec([None])}

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1]), spec])
    def micro(images, batch):
      return step_._micro_step(images, batch, tf.constant([1, 2], tf.int64),
                               0)[0]
    with mock.patch.object(normalization.BatchStatistics, "_fused", spy):
      rows = step_.options.micro_batch
      loss = micro(tf.zeros([rows, 28, 28, 1]),
                   {"labels": tf.zeros([rows], tf.int32),
                    "weight": tf.ones([rows]), "bad": tf.zeros([rows])})
    self.assertTrue(np.isfinite(loss.numpy()))
    self.assertEqual(len(sizes), len(engine.model.norm_layers))
    self.assertEqual(set(sizes), {rows})

  @parameterized.parameters(("float32", 1e-5, 1e-3, 2),
                            ("mixed_bfloat16", 1e-2, 5e-2, 1))
  def test_xla_step_takes_the_step_the_plain_one_takes(self, precision,
                                                       loss_rtol, apart,
                                                       replicas):
    # --jit_compile: XLA compiles the per-replica forward and backward (the
    # usual choice on GPUs; on this CPU 7x slower, docs/experiments/
    # 2026-12-amx-profile.md). One SGD step from the same start: the same
    # loss and update up to the rounding of other kernels (bfloat16's is
    # 8 bits of mantissa). Without dropout: XLA draws other masks from the
    # same seed as TF's kernels (even with alg="philox" named). float32
    # on two replicas: each compiles its own program over its own copy of
    # the variables and its rows' share of the global batch. bfloat16 on
    # one: its casts compiled once (on the AVX2 EPYC 9.0 s instead of 19.3
    # on two).
    runs = []
    devices = ("/cpu:0", "/cpu:1")[:replicas]
    for jit in (False, True):
      parts = make_engine(devices, mixed_precision=precision,
                          jit_compile=jit,
                          optimizer="sgd", momentum=0.0, learning_rate=0.1)
      for layer in parts.model.submodules:
        if isinstance(layer, dropout.Dropout):
          layer.rate = 0.0
      start = [v.numpy() for v in parts.model.trainable_variables]
      loss = losses_over(parts, 1, steps=1, examples=16)[0]
      runs.append((loss, start, [v.numpy() - s for v, s in zip(
          parts.model.trainable_variables, start)]))
    (plain, start, update), (xla, start_xla, update_xla) = runs
    for a, b in zip(start, start_xla):
      np.testing.assert_array_equal(a, b)
    self.assertAllClose(plain, xla, rtol=loss_rtol)
    norm = lambda ts: np.sqrt(sum(np.sum(t.astype(np.float64) ** 2)
                                  for t in ts))
    self.assertGreater(norm(update), 0)
    self.assertLessEqual(norm([a - b for a, b in zip(update, update_xla)]),
                         apart * norm(update))

  def test_clip_norm_bounds_the_reduced_update_and_ema_follows(self):
    # SGD without momentum at rate 1: the update is minus the (clipped)
    # all-reduced gradient, so its global norm is the clip norm. The moving
    # average then moves (1 - d) of the way, d = min(0.9, 2/11) at update 1.
    engine = make_engine(optimizer="sgd", momentum=0.0, learning_rate=1.0,
                         clip_norm=1e-3, ema_decay=0.9)
    params = engine.model.trainable_variables
    before = [v.numpy() for v in params]
    losses_over(engine, 1, steps=1)
    change = [v.numpy() - b for v, b in zip(params, before)]
    norm = np.sqrt(sum(float(np.sum(np.square(c))) for c in change))
    self.assertAllClose(norm, 1e-3, rtol=1e-3)
    d = 2.0 / 11.0
    for avg, b, v in zip(engine.weights.ema.values, before, params):
      self.assertAllClose(avg.numpy(), d * b + (1 - d) * v.numpy(),
                          atol=1e-7)
    self.assertEqual(set(engine.checkpoint_objects()),
                     {"model", "optimizer", "state", "ema"})

  def test_loss_scale_reacts_to_injected_overflow(self):
    engine = make_engine(mixed_precision="mixed_float16")
    self.assertEqual(engine.trainer.step.options.compute_dtype, tf.float16)
    engine.trainer.step.loss_scale.scale.assign(2.0 ** 40)  # overflows float16 at once
    losses_over(engine, 1, steps=3)
    scale = float(engine.trainer.step.loss_scale.scale.numpy())
    self.assertEqual(scale, 2.0 ** 37)  # halved once per overflowing step
    self.assertEqual(int(engine.state.skipped_steps.numpy()), 3)
    engine.trainer.step.loss_scale.scale.assign(2.0 ** 10)
    losses_over(engine, 1, steps=2)
    self.assertEqual(int(engine.state.consecutive_bad.numpy()), 0)
    self.assertEqual(int(engine.trainer.step.optimizer.iterations.numpy()), 2)


class AllFiniteTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(np.nan, np.inf, -np.inf)
  def test_one_bad_element_anywhere_is_caught(self, bad):
    tensors = [tf.ones([3]), tf.zeros([2, 4]), tf.ones([5], tf.float16)]
    self.assertTrue(bool(step.all_finite(tensors)))
    for i, t in enumerate(tensors):
      values = t.numpy().copy().reshape(-1)
      values[-1] = bad
      broken = list(tensors)
      broken[i] = tf.constant(values.reshape(t.shape), t.dtype)
      self.assertFalse(bool(step.all_finite(broken)), (i, bad))

  def test_opposite_infinities_do_not_cancel(self):
    self.assertFalse(bool(step.all_finite([tf.constant([np.inf, -np.inf])])))
