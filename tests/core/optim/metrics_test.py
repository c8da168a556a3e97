import tensorflow as tf

from core.optim import metrics


class MetricsTest(tf.test.TestCase):

  def test_top_k(self):
    logits = tf.constant([[0.1, 0.9, 0.0], [0.8, 0.1, 0.2]])
    self.assertAllEqual(metrics.top_k_correct(logits, tf.constant([1, 2])),
                        [1.0, 0.0])
    self.assertAllEqual(metrics.top_k_correct(logits, tf.constant([1, 2]), 2),
                        [1.0, 1.0])

  def test_confusion_matrix_with_weights(self):
    m = metrics.confusion_matrix(tf.constant([0, 1, 1]),
                                 tf.constant([[1.0, 0], [1, 0], [0, 1]]), 2,
                                 tf.constant([1.0, 1.0, 0.0]))
    self.assertAllEqual(m, [[1, 0], [1, 0]])

  def test_sums_across_replicas(self):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
      sums = metrics.Sums({"n": [], "v": [2]})

    @tf.function
    def step():
      def replica():
        r = tf.cast(tf.distribute.get_replica_context()
                    .replica_id_in_sync_group, tf.float32)
        sums.add({"n": r + 1.0, "v": tf.stack([r, 1.0])})
      strategy.run(replica)

    step()
    step()
    got = sums.read()
    self.assertAllClose(got["n"], 2 * (1 + 2))
    self.assertAllClose(got["v"], [2.0, 4.0])
    sums.reset()
    self.assertAllClose(sums.read()["n"], 0.0)
