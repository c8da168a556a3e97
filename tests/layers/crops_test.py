import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from layers import crops


def ramp(height, width):
  """[1, height, width, 1]: 3 per row plus 5 per column, a plane that
  bilinear sampling reproduces exactly at any point."""
  rows, cols = np.mgrid[:height, :width]
  return tf.constant((3.0 * rows + 5.0 * cols)[None, :, :, None], tf.float32)


def scaled_ramp(height, width, rows, cols, top, left, side, out):
  """What the ramp's `height` x `width` image resized (corners aligned) to
  `rows` x `cols` holds in the `side` square at (top, left), resized to
  `out`: the plane at those points, mapped back to the image's pixels."""
  at = np.arange(out) * (side - 1) / (out - 1)
  y = (top + at)[:, None] * (height - 1) / (rows - 1)
  x = (left + at)[None, :] * (width - 1) / (cols - 1)
  return 3.0 * y + 5.0 * x


class CropsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(("1", 28, 1), ("mirror", 28, 2), ("10", 42, 10),
                            ("144", 42, 144), ("10", 20, 10),
                            ("144", 20, 144))
  def test_views_per_image(self, mode, width, count):
    images = tf.random.uniform([3, 28, width, 2], seed=1)
    self.assertEqual(crops.views(images, mode, 28).shape,
                     [count * 3, 28, 28, 2])
    self.assertEqual(crops.VIEWS[mode], count)
    if mode in ("10", "144"):
      self.assertLen(crops.boxes(mode, 28, width, 28), count // 2)

  def test_mirror_views_are_the_images_then_their_mirror_images(self):
    images = tf.random.uniform([3, 28, 28, 1], seed=2)
    self.assertAllEqual(crops.views(images, "mirror", 28),
                        tf.concat([images, images[:, :, ::-1]], 0))
    self.assertIs(crops.views(images, "1", 28), images)

  @parameterized.parameters((28, 42), (42, 28))
  def test_ten_crop_view_0_is_the_top_left_crop_of_the_256_scale(
      self, height, width):
    # 28 is the model's side, 32 = 28 * 256 / 224 the scale's short side:
    # the image becomes 32 x 48 (or 48 x 32); its centre square starts 8
    # pixels in along the long side.
    rows, cols = (32, 48) if width > height else (48, 32)
    top, left = (0, 8) if width > height else (8, 0)
    got = crops.views(ramp(height, width), "10", 28)
    want = scaled_ramp(height, width, rows, cols, top, left, 28, 28)
    self.assertAllClose(got[0, :, :, 0], want, atol=1e-4)
    self.assertAllClose(got[1, :, :, 0], want[:, ::-1], atol=1e-4)
    # View 8, the centre crop (2 pixels in from the square's corner).
    self.assertAllClose(got[8, :, :, 0], scaled_ramp(
        height, width, rows, cols, top + 2, left + 2, 28, 28), atol=1e-4)

  def test_144_crops_hold_each_square_resized_and_the_far_corners(self):
    got = crops.views(ramp(28, 42), "144", 28)
    # Box 17: the 256 scale's (32 x 48) right square (16 in), resized.
    self.assertAllClose(got[34, :, :, 0], scaled_ramp(
        28, 42, 32, 48, 0, 16, 32, 28), atol=1e-4)
    # Box 71, the last: the 352 scale's (44 x 66) right square, resized;
    # box 69 is its bottom-right crop.
    self.assertAllClose(got[142, :, :, 0], scaled_ramp(
        28, 42, 44, 66, 0, 22, 44, 28), atol=1e-4)
    self.assertAllClose(got[138, :, :, 0], scaled_ramp(
        28, 42, 44, 66, 16, 38, 28, 28), atol=1e-4)

  def test_every_box_lies_in_the_image(self):
    for mode in ("10", "144"):
      table = crops.boxes(mode, 224, 300, 224)
      self.assertTrue(np.all((table >= 0) & (table <= 1 + 1e-6)), mode)
      self.assertTrue(np.all(table[:, 2:] > table[:, :2]), mode)

  def test_the_mean_is_of_probabilities_not_logits(self):
    logits = tf.constant([[4.0, 0.0], [1.0, 3.0],     # view 0 of 2 images
                          [0.0, 0.0], [1.0, 3.0]])    # view 1
    got = crops.mean_probability(tf.nn.log_softmax(logits), 2)
    p = tf.nn.softmax(logits)
    self.assertAllClose(tf.exp(got), (p[:2] + p[2:]) / 2, atol=1e-7)
    self.assertNotAllClose(tf.exp(got),
                           tf.nn.softmax((logits[:2] + logits[2:]) / 2))

  def test_classify_averages_every_view_of_each_image(self):
    # Landscape, and square: there "144" computes each of its 21 distinct
    # boxes once, weighted by how often the protocol takes it.
    kernel = tf.random.normal([28 * 28, 5], seed=4)
    network = lambda x: tf.reshape(x, [-1, 28 * 28]) @ kernel
    for width, mode in ((36, "10"), (36, "144"), (28, "144")):
      images = tf.random.uniform([3, 28, width, 1], seed=3)
      p = tf.nn.softmax(network(crops.views(images, mode, 28)))
      want = tf.reduce_mean(tf.reshape(p, [-1, 3, 5]), axis=0)
      got = tf.function(crops.classify, autograph=False)(network, images,
                                                          mode, 28)
      self.assertAllClose(tf.exp(got), want, atol=1e-6)
    square = crops.boxes("144", 28, 28, 28)
    self.assertLen(square, 72)
    self.assertLen(np.unique(square, axis=0), 21)

  def test_each_distinct_box_is_computed_once(self):
    # A square image's 144 views hold 21 distinct boxes (42 views): the
    # network sees 2 x 21 x N images, not 144 x N.
    images = tf.random.uniform([3, 28, 28, 1], seed=3)
    kernel = tf.random.normal([28 * 28, 5], seed=4)
    seen = tf.Variable(0)
    def network(x):
      with tf.control_dependencies([seen.assign_add(tf.shape(x)[0])]):
        return tf.reshape(x, [-1, 28 * 28]) @ kernel
    tf.function(crops.classify, autograph=False)(network, images, "144", 28)
    self.assertEqual(int(seen.numpy()), 2 * 21 * 3)

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "`crops` must be one of 1, 10, "
                                "144; received crops='mirror'"):
      crops.mode("mirror", False)
    self.assertEqual(crops.mode("1", True), "mirror")
    self.assertEqual(crops.mode("10", True), "10")
    signature = [tf.TensorSpec([None, None, None, 1])]
    with self.assertRaisesRegex(ValueError, r"`images` must have a static "
                                r"height and width for crops='10'; received "
                                r"shape \[None, None, None, 1\]"):
      tf.function(lambda x: crops.views(x, "10", 28),
                  input_signature=signature).get_concrete_function()
