import os

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from core.optim import optimizers
from core.optim import schedules
from core.optim.choices import OPTIMIZERS


def params():
  return [tf.Variable([1.0, -2.0, 3.0], name="a"),
          tf.Variable([[0.5, 0.25]], name="b")]


GRADS = [[np.array([0.1, -0.2, 0.3]), np.array([[1.0, -1.0]])],
         [np.array([0.3, 0.0, -0.1]), np.array([[0.5, 2.0]])],
         [np.array([-0.2, 0.4, 0.0]), np.array([[-1.0, 0.1]])]]


def numpy_adam(values, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7, wd=0.0):
  values = [np.array(v, np.float64) for v in values]
  m = [np.zeros_like(v) for v in values]
  s = [np.zeros_like(v) for v in values]
  for t, grads in enumerate(GRADS, start=1):
    for i, g in enumerate(grads):
      if values[i].ndim >= 2:  # AdamW: kernels decay, vectors do not
        values[i] -= lr * wd * values[i]
      m[i] = b1 * m[i] + (1 - b1) * g
      s[i] = b2 * s[i] + (1 - b2) * g * g
      alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
      values[i] -= alpha * m[i] / (np.sqrt(s[i]) + eps)
  return values, m, s


def numpy_momentum(values, lr, momentum, nesterov, wd=0.0):
  values = [np.array(v, np.float64) for v in values]
  acc = [np.zeros_like(v) for v in values]
  for grads in GRADS:
    for i, g in enumerate(grads):
      if values[i].ndim >= 2:
        values[i] -= lr * wd * values[i]
      acc[i] = momentum * acc[i] - lr * g
      values[i] += momentum * acc[i] - lr * g if nesterov else acc[i]
  return values, acc


class OptimizersTest(tf.test.TestCase, parameterized.TestCase):

  def run_steps(self, opt, variables):
    for grads in GRADS:
      opt.apply([tf.constant(g, tf.float32) for g in grads])

  def test_adam_matches_numpy(self):
    variables = params()
    start = [v.numpy() for v in variables]
    opt = optimizers.Adam(variables)
    self.run_steps(opt, variables)
    want, m, s = numpy_adam(start)
    for v, w in zip(variables, want):
      self.assertAllClose(v, w, rtol=1e-5)
    self.assertAllClose(opt.slots["a"]["m"], m[0], rtol=1e-5)
    self.assertAllClose(opt.slots["b"]["v"], s[1], rtol=1e-5)
    self.assertEqual(int(opt.iterations), 3)

  @parameterized.parameters(False, True)
  def test_sgd_momentum_matches_numpy(self, nesterov):
    variables = params()
    start = [v.numpy() for v in variables]
    opt = optimizers.SGD(variables, 0.1, momentum=0.9, nesterov=nesterov)
    self.run_steps(opt, variables)
    want, acc = numpy_momentum(start, 0.1, 0.9, nesterov)
    for v, w in zip(variables, want):
      self.assertAllClose(v, w, rtol=1e-5)
    self.assertAllClose(opt.slots["a"]["momentum"], acc[0], rtol=1e-5)

  def test_adamw_decays_kernels_not_biases(self):
    variables = params()
    start = [v.numpy() for v in variables]
    opt = optimizers.Adam(variables, 0.01, weight_decay=0.5)
    self.run_steps(opt, variables)
    want, _, _ = numpy_adam(start, lr=0.01, wd=0.5)
    for v, w in zip(variables, want):
      self.assertAllClose(v, w, rtol=1e-5)
    plain = params()
    self.run_steps(optimizers.Adam(plain, 0.01), plain)
    self.assertAllClose(variables[0], plain[0])           # the vector: as Adam
    self.assertNotAllClose(variables[1], plain[1])        # the kernel: decayed

  def test_decay_is_decoupled_from_the_gradient(self):
    # Zero gradients: Adam moves nothing, the kernel only shrinks by
    # lr * wd per step, and the moments stay zero.
    variables = params()
    opt = optimizers.Adam(variables, 0.1, weight_decay=0.2)
    for _ in range(3):
      opt.apply([tf.zeros_like(v) for v in variables])
    self.assertAllClose(variables[1], np.array([[0.5, 0.25]]) * 0.98 ** 3)
    self.assertAllClose(variables[0], [1.0, -2.0, 3.0])
    self.assertAllEqual(opt.slots["b"]["m"], np.zeros([1, 2]))

  @parameterized.parameters(False, True)
  def test_sgd_weight_decay(self, nesterov):
    variables = params()
    start = [v.numpy() for v in variables]
    opt = optimizers.SGD(variables, 0.1, momentum=0.9, nesterov=nesterov,
                         weight_decay=0.3)
    self.run_steps(opt, variables)
    want, _ = numpy_momentum(start, 0.1, 0.9, nesterov, wd=0.3)
    for v, w in zip(variables, want):
      self.assertAllClose(v, w, rtol=1e-5)

  def test_slots_exist_before_any_update(self):
    opt = optimizers.Adam(params())
    self.assertLen(opt.variables, 1 + 2 * 2)
    self.assertEqual(opt.slots["b"]["m"].shape, [1, 2])
    self.assertEqual(opt.slots["a"]["m"].name, "adam/a/m:0")

  def test_schedule_drives_the_rate(self):
    opt = optimizers.SGD(params(), schedules.StepDecay(1.0, decay_steps=2,
                                                       decay=0.5))
    rates = []
    for grads in GRADS:
      rates.append(float(opt.learning_rate()))
      opt.apply([tf.constant(g, tf.float32) for g in grads])
    self.assertAllClose(rates, [1.0, 1.0, 0.5])

  def test_state_restored_exactly(self):
    variables = params()
    opt = optimizers.Adam(variables)
    self.run_steps(opt, variables)
    path = tf.train.Checkpoint(v=variables, opt=opt).save(
        os.path.join(self.get_temp_dir(), "ckpt"))
    fresh = params()
    fresh_opt = optimizers.Adam(fresh)
    tf.train.Checkpoint(v=fresh, opt=fresh_opt).restore(
        path).assert_consumed()
    self.assertEqual(int(fresh_opt.iterations), 3)
    for key in ("a", "b"):
      for slot in ("m", "v"):
        self.assertAllEqual(fresh_opt.slots[key][slot],
                            opt.slots[key][slot])
    # The next update is identical too.
    g = [tf.constant(x, tf.float32) for x in GRADS[0]]
    opt.apply(g)
    fresh_opt.apply(g)
    for a, b in zip(variables, fresh):
      self.assertAllEqual(a, b)

  def test_function_equals_eager(self):
    a, b = params(), params()
    opt_a, opt_b = optimizers.Adam(a), optimizers.Adam(b)
    step = tf.function(opt_b.apply)
    for grads in GRADS:
      g = [tf.constant(x, tf.float32) for x in grads]
      opt_a.apply(g)
      step(g)
    for x, y in zip(a, b):
      self.assertAllClose(x, y)

  @parameterized.parameters(*OPTIMIZERS)
  def test_every_name_the_flags_offer_builds_its_optimizer(self, name):
    self.assertEqual(type(optimizers.create(name, params(), 0.1)).__name__
                     .lower(), name)

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "`optimizer` must be one of adam, "
                                "sgd; received optimizer='rmsprop'"):
      optimizers.create("rmsprop", params(), 0.1)
    with self.assertRaisesRegex(ValueError, r"`momentum` must be in \[0, 1\)"):
      optimizers.SGD(params(), momentum=1.5)
    with self.assertRaisesRegex(ValueError, "`grads` must have one entry per "
                                r"variable \(2\); received 1"):
      optimizers.Adam(params()).apply([tf.zeros([3])])
    with self.assertRaisesRegex(ValueError, "`params` must hold at least one"):
      optimizers.Adam([])
