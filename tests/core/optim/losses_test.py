import collections

import numpy as np
import tensorflow as tf

from core.optim import losses
from layers.googlenet import GoogLeNetOutputs


def softmax_xent(logits, label):
  logits = np.asarray(logits, np.float64)
  return float(np.log(np.exp(logits).sum()) - logits[label])


class LossesTest(tf.test.TestCase):

  def test_hand_computed_weighted_loss(self):
    main = [[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]]
    aux1 = [[0.0, 1.0, 0.0], [1.0, 2.0, 3.0]]
    aux2 = [[1.0, 1.0, 1.0], [0.0, 0.0, 5.0]]
    labels = [0, 2]
    out = losses.googlenet_loss(GoogLeNetOutputs(
        tf.constant(main), tf.constant(aux1), tf.constant(aux2)),
                                tf.constant(labels))
    for i, y in enumerate(labels):
      m, a1, a2 = (softmax_xent(h[i], y) for h in (main, aux1, aux2))
      self.assertAllClose(out.main[i], m)
      self.assertAllClose(out.total[i], m + 0.3 * a1 + 0.3 * a2)
    # e.g. row 0: main = log(e^2 + 1 + e^-1) - 2 = 0.1698...
    self.assertAllClose(out.main[0], 0.16984, atol=1e-5)

  def test_configurable_weights(self):
    o = GoogLeNetOutputs(tf.zeros([1, 2]), tf.zeros([1, 2]), tf.zeros([1, 2]))
    out = losses.googlenet_loss(o, tf.constant([1]), (1.0, 0.0))
    self.assertAllClose(out.total, [2 * np.log(2.0)])

  def test_stable_for_huge_logits(self):
    out = losses.cross_entropy(tf.constant([[1e4, -1e4]]), tf.constant([1]))
    self.assertAllClose(out, [2e4])

  def test_global_batch_mean_sums_to_the_mean(self):
    per_example = tf.constant([1.0, 2.0, 3.0, 4.0])
    halves = [losses.global_batch_mean(per_example[i:i + 2], 4)
              for i in (0, 2)]
    self.assertAllClose(sum(halves), 2.5)
    self.assertAllClose(losses.global_batch_mean(
        per_example, 8, weights=tf.constant([1.0, 1, 0, 0])), 3.0 / 8)

  def test_errors(self):
    o = GoogLeNetOutputs(tf.zeros([1, 2]))
    with self.assertRaisesRegex(ValueError, "needs the aux heads' logits"):
      losses.googlenet_loss(o, tf.constant([0]))
    with self.assertRaisesRegex(ValueError, "`aux_weights` must have two"):
      losses.googlenet_loss(o, tf.constant([0]), (0.3,))

  def test_label_smoothing_is_cross_entropy_with_the_smoothed_target(self):
    logits = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]], np.float32)
    labels = np.array([2, 1])
    e, k = 0.3, 3
    target = np.eye(k)[labels] * (1 - e) + e / k
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    want = -(target * log_p).sum(axis=1)
    self.assertAllClose(losses.cross_entropy(logits, labels, e), want)
    self.assertAllClose(losses.cross_entropy(logits, labels, 0.0),
                        -log_p[np.arange(2), labels])
    # Every head smooths: the total is the weighted sum of smoothed heads.
    out = GoogLeNetOutputs(logits, logits[:, ::-1], logits * 2)
    head = losses.googlenet_loss(out, labels, (0.3, 0.3), label_smoothing=e)
    self.assertAllClose(head.aux1, losses.cross_entropy(logits[:, ::-1],
                                                        labels, e))
    self.assertAllClose(head.total, head.main + 0.3 * head.aux1
                        + 0.3 * head.aux2)
    # Smoothing keeps the loss above zero even for a confident right answer.
    sure = np.array([[50.0, 0.0, 0.0]], np.float32)
    self.assertGreater(float(losses.cross_entropy(sure, [0], e)[0]), 0.5)


class TargetsTest(tf.test.TestCase):
  """Mixed targets and class weights (core/optim/losses.Targets)."""

  def test_mixed_loss_is_the_cross_entropy_of_the_mixed_smoothed_target(self):
    logits = tf.constant([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]])
    targets = losses.Targets(tf.constant([0, 2]), tf.constant([1, 0]),
                             tf.constant([0.7, 0.25]))
    e, k = 0.1, 3
    smooth = lambda y: tf.one_hot(y, k) * (1 - e) + e / k
    mixed = (0.7 * smooth(0) + 0.3 * smooth(1),
             0.25 * smooth(2) + 0.75 * smooth(0))
    expected = tf.nn.softmax_cross_entropy_with_logits(
        labels=tf.stack(mixed), logits=logits)
    self.assertAllClose(losses.target_loss(logits, targets, e), expected,
                        rtol=1e-6)

  def test_class_weights_scale_each_label_term(self):
    logits = tf.constant([[2.0, -1.0], [0.1, 0.2]])
    plain = losses.cross_entropy(logits, tf.constant([0, 1]))
    weights = tf.constant([0.5, 4.0])
    weighted = losses.target_loss(logits, losses.Targets(
        tf.constant([0, 1]), class_weights=weights))
    self.assertAllClose(weighted, plain * weights)
    mixed = losses.target_loss(logits, losses.Targets(
        tf.constant([0, 1]), tf.constant([1, 0]), tf.constant([0.6, 0.6]),
        weights))
    cross = losses.cross_entropy(logits, tf.constant([1, 0]))
    self.assertAllClose(mixed, 0.6 * plain * weights
                        + 0.4 * cross * tf.constant([4.0, 0.5]))

  def test_balanced_weights_on_a_ten_to_one_split(self):
    labels = np.array([0] * 100 + [1] * 10)
    weights = losses.balanced_class_weights(labels, 3)
    # 110 / (3 * 100), 110 / (3 * 10); the absent class 1.
    self.assertAllClose(weights, [110 / 300, 110 / 30, 1.0])
    # Each present class then weighs the same in the loss.
    self.assertAllClose(100 * weights[0], 10 * weights[1])

  def test_the_heads_share_the_targets(self):
    outputs = collections.namedtuple("O", "logits aux1 aux2")(
        tf.constant([[1.0, 0.0]]), tf.constant([[0.0, 1.0]]),
        tf.constant([[0.5, 0.5]]))
    targets = losses.Targets(tf.constant([0]), tf.constant([1]),
                             tf.constant([0.5]))
    head = losses.googlenet_loss(outputs, targets)
    self.assertAllClose(head.main, head.aux1)  # the mix is symmetric here
    self.assertAllClose(head.total, head.main + 0.3 * head.aux1
                        + 0.3 * head.aux2)
