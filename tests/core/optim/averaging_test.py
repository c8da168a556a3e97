"""The moving average and the best weights (core/optim/averaging.py)."""

import numpy as np
import tensorflow as tf

from core.optim import averaging


def params():
  return [tf.Variable([1.0, 2.0], name="w"), tf.Variable([[3.0]], name="k")]


def mirrored_weight(strategy):
  """A weight made as layers/variables.py makes them, in `strategy`'s
  scope."""
  with strategy.scope():
    return tf.Variable([0.0, 4.0], name="w",
                       synchronization=tf.VariableSynchronization.ON_WRITE,
                       aggregation=tf.VariableAggregation.NONE)


class MovingAverageTest(tf.test.TestCase):

  def test_update_follows_the_formula_with_the_warm_start(self):
    variables = params()
    ema = averaging.ExponentialMovingAverage(variables, 0.99)
    self.assertAllEqual(ema.values[0], [1.0, 2.0])  # starts at the weights
    want = np.array([1.0, 2.0])
    for n in range(1, 6):
      variables[0].assign_add([1.0, -1.0])
      ema.update(tf.constant(n, tf.int64))
      d = min(0.99, (1 + n) / (10 + n))
      want = d * want + (1 - d) * variables[0].numpy()
      self.assertAllClose(ema.values[0], want)
    self.assertAllClose(ema.rate(tf.constant(10 ** 6)), 0.99)

  def test_in_a_function_under_two_replicas(self):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    w = mirrored_weight(strategy)
    with strategy.scope():
      ema = averaging.ExponentialMovingAverage([w], 0.5)

    @tf.function
    def step():
      def replica():
        w.assign_add([2.0, 2.0])
        ema.update(tf.constant(100, tf.int64))
      strategy.run(replica)

    step()
    for copy in ema.values[0].values:  # every replica's copy
      self.assertAllClose(copy, [1.0, 5.0])

  def test_swapped_in_restores_the_trained_weights_even_on_error(self):
    variables = params()
    ema = averaging.ExponentialMovingAverage(variables, 0.9)
    ema.values[1].assign([[7.0]])
    with ema.swapped_in():
      self.assertAllEqual(variables[1], [[7.0]])
    self.assertAllEqual(variables[1], [[3.0]])
    with self.assertRaises(RuntimeError):
      with ema.swapped_in():
        raise RuntimeError("evaluation failed")
    self.assertAllEqual(variables[1], [[3.0]])
    self.assertAllEqual(ema.values[1], [[7.0]])  # the copy is intact too

  def test_swap_and_copy_act_on_each_replicas_own_values(self):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    w = mirrored_weight(strategy)
    with strategy.scope():
      ema = averaging.ExponentialMovingAverage([w], 0.5)
      best = averaging.BestWeights([w])
    local = strategy.experimental_local_results
    # Replicas that differ show which component went where.
    for i, (param, value) in enumerate(zip(local(w), local(ema.values[0]))):
      param.assign([float(i), 1.0])
      value.assign([10.0 + i, 2.0])
    with ema.swapped_in():
      self.assertAllEqual([v.numpy() for v in local(w)],
                          [[10.0, 2.0], [11.0, 2.0]])
    self.assertAllEqual([v.numpy() for v in local(w)],
                        [[0.0, 1.0], [1.0, 1.0]])
    self.assertAllEqual([v.numpy() for v in local(ema.values[0])],
                        [[10.0, 2.0], [11.0, 2.0]])
    self.assertTrue(best.offer(0.5, 3))
    self.assertAllEqual([v.numpy() for v in local(best.values[0])],
                        [[0.0, 1.0], [1.0, 1.0]])

  def test_a_copy_made_outside_the_parameters_scope_is_refused(self):
    w = mirrored_weight(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    with self.assertRaisesRegex(
        ValueError, r"w:0 has 2 replica\(s\) and its copy 1: make the copy "
        "in the strategy's scope"):
      averaging.ExponentialMovingAverage([w], 0.5)

  def test_checkpointed_with_its_values(self):
    variables = params()
    ema = averaging.ExponentialMovingAverage(variables, 0.9)
    ema.values[0].assign([5.0, 6.0])
    path = tf.train.Checkpoint(ema=ema).save(self.get_temp_dir() + "/c")
    # Only the values: the compiled swap is not part of the object graph.
    children = ema._trackable_children()  # pylint: disable=protected-access
    self.assertEqual(list(children), ["values"])
    other = averaging.ExponentialMovingAverage(params(), 0.9)
    tf.train.Checkpoint(ema=other).restore(path).assert_consumed()
    self.assertAllEqual(other.values[0], [5.0, 6.0])

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, r"`decay` must be in \(0, 1\)"):
      averaging.ExponentialMovingAverage(params(), 1.0)
    with self.assertRaisesRegex(ValueError, "at least one variable"):
      averaging.WeightCopy([], name="x")


class BestWeightsTest(tf.test.TestCase):

  def test_keeps_only_improvements_and_the_earlier_of_ties(self):
    variables = params()
    best = averaging.BestWeights(variables)
    self.assertFalse(best.found)
    self.assertTrue(best.offer(0.5, 10))
    variables[1].assign([[9.0]])
    self.assertFalse(best.offer(0.5, 20))  # a tie
    self.assertFalse(best.offer(0.4, 30))
    self.assertAllEqual(best.values[1], [[3.0]])
    self.assertEqual(int(best.step.numpy()), 10)
    self.assertTrue(best.offer(0.6, 40))
    self.assertAllEqual(best.values[1], [[9.0]])
    self.assertEqual((int(best.step.numpy()), float(best.accuracy.numpy())),
                     (40, 0.6))
