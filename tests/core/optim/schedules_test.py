import math

import tensorflow as tf

from core.optim import schedules


class SchedulesTest(tf.test.TestCase):

  def test_constant(self):
    self.assertAllClose(schedules.Constant(0.1)(tf.constant(99)), 0.1)

  def test_paper_step_decay(self):
    s = schedules.StepDecay(0.01, decay_steps=8 * 100)
    self.assertAllClose(s(tf.constant(799)), 0.01)
    self.assertAllClose(s(tf.constant(800)), 0.0096)
    self.assertAllClose(s(tf.constant(8000)), 0.01 * 0.96 ** 10)

  def test_warmup_cosine(self):
    s = schedules.WarmupCosine(1.0, total_steps=110, warmup_steps=10)
    self.assertAllClose(s(tf.constant(0)), 0.1)
    self.assertAllClose(s(tf.constant(9)), 1.0)
    self.assertAllClose(s(tf.constant(10)), 1.0)
    self.assertAllClose(s(tf.constant(60)), 0.5)
    self.assertAllClose(s(tf.constant(110)), 0.0, atol=1e-7)
    self.assertAllClose(s(tf.constant(500)), 0.0, atol=1e-7)

  def test_warmup_in_front_of_constant(self):
    s = schedules.Warmup(schedules.Constant(0.5), warmup_steps=4)
    self.assertAllClose([float(s(tf.constant(k))) for k in range(6)],
                        [0.125, 0.25, 0.375, 0.5, 0.5, 0.5])

  def test_warmup_in_front_of_step_decay(self):
    s = schedules.Warmup(schedules.StepDecay(1.0, decay_steps=2), 2)
    self.assertAllClose([float(s(tf.constant(k))) for k in range(5)],
                        [0.5, 1.0, 0.96, 0.96, 0.96 ** 2])

  def test_warmup_errors(self):
    with self.assertRaisesRegex(ValueError, "`warmup_steps` must be a "
                                "positive finite number; received "
                                "warmup_steps=0"):
      schedules.Warmup(schedules.Constant(1.0), 0)
    with self.assertRaisesRegex(TypeError, "`schedule` must be callable; "
                                "received schedule=0.1"):
      schedules.Warmup(0.1, 5)

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "`rate` must be a positive finite"
                                " number; received rate=0"):
      schedules.Constant(0)
    with self.assertRaisesRegex(ValueError, r"`warmup_steps` must be in "
                                r"\[0, total_steps\)"):
      schedules.WarmupCosine(1.0, total_steps=5, warmup_steps=5)
    with self.assertRaisesRegex(ValueError, r"`decay` must be in \(0, 1\]"):
      schedules.StepDecay(1.0, 10, decay=math.inf)

  def test_scaled_reads_its_variable_at_every_call(self):
    scale = tf.Variable(1.0)
    s = schedules.Scaled(schedules.StepDecay(1.0, decay_steps=2), scale)
    rate = tf.function(s)
    self.assertAllClose(rate(tf.constant(3)), 0.96)
    scale.assign(0.1)  # the plateau schedule's drop
    self.assertAllClose(rate(tf.constant(3)), 0.096)
    self.assertEqual(rate.experimental_get_tracing_count(), 1)

  def test_warmup_in_front_of_scaled(self):
    s = schedules.Warmup(schedules.Scaled(schedules.Constant(0.5),
                                          tf.Variable(0.1)), 2)
    self.assertAllClose([float(s(tf.constant(k))) for k in range(3)],
                        [0.025, 0.05, 0.05])

  def test_scaled_errors(self):
    with self.assertRaisesRegex(TypeError, "`scale` must be a tf.Variable; "
                                "received scale=0.1"):
      schedules.Scaled(schedules.Constant(1.0), 0.1)
    with self.assertRaisesRegex(TypeError, "`schedule` must be callable; "
                                "received schedule=1.0"):
      schedules.Scaled(1.0, tf.Variable(1.0))
