import tensorflow as tf
from absl.testing import parameterized

from layers import aux_head


class AuxHeadTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((14, 4), (6, 1), (5, 1), (4, 1), (2, 1), (1, 1))
  def test_pool_adapts_to_small_maps(self, size, pooled):
    head = aux_head.AuxHead(8, size, 10)
    self.assertEqual(head.pool.out_size(size), pooled)
    self.assertEqual(head.fc.in_features, pooled * pooled * 128)
    out = head(tf.ones([3, size, size, 8]), training=False)
    self.assertEqual(out.shape, [3, 10])

  def test_paper_layout_at_14x14(self):
    head = aux_head.AuxHead(512, 14, 1000, name="aux1")
    self.assertEqual((head.pool.window, head.pool.stride), (5, 3))
    self.assertEqual(head.conv.kernel.shape, [1, 1, 512, 128])
    self.assertEqual(head.fc.kernel.shape, [2048, 1024])
    self.assertEqual(head.classifier.kernel.shape, [1024, 1000])
    self.assertAllClose(head.dropout.rate, 0.7)

  def test_matches_tf_nn_reference(self):
    head = aux_head.AuxHead(4, 8, 3)
    x = tf.random.normal([2, 8, 8, 4], seed=0)
    y = tf.nn.avg_pool2d(x, 5, 3, "VALID")
    y = tf.nn.relu(tf.nn.conv2d(y, head.conv.kernel, 1, "SAME")
                   + head.conv.bias)
    y = tf.nn.relu(tf.reshape(y, [2, -1]) @ head.fc.kernel + head.fc.bias)
    y = y @ head.classifier.kernel + head.classifier.bias
    self.assertAllClose(head(x, training=False), y, atol=1e-5)
