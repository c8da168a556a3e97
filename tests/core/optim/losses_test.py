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
