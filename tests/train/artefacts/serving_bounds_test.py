"""serving_bytes' bounds: the pixels of each image and of a whole request
are checked from the headers before anything is decoded (review of
79d3b92, #4 and #25)."""

import numpy as np
import tensorflow as tf

from core.data import images
from layers.googlenet import GoogLeNet
from tests import helpers
from tests.core.data import image_bytes as made
from train.artefacts import serving

_SIDE = (13, 17)
_LIMIT = _SIDE[0] * _SIDE[1]  # max_image_pixels: one 13 x 17 image


class ServingBoundsTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    model = GoogLeNet(3, 3, 32, blocks=helpers.SMALL_BLOCKS)
    cls.serving = serving.ServingModule(model, (None, None, 3), "abc",
                                       max_image_pixels=_LIMIT)
    cls.png = tf.io.encode_png(np.full([*_SIDE, 3], 90, np.uint8)).numpy()

  def serve(self, encoded):
    return self.serving.serve_bytes(tf.constant(encoded))

  def test_a_request_may_declare_request_images_times_the_limit(self):
    full = [self.png] * images.REQUEST_IMAGES
    self.assertEqual(self.serve(full)["classes"].shape, [len(full)])
    with self.assertRaisesRegex(
        tf.errors.InvalidArgumentError,
        rf"the images of this request declare {5 * _LIMIT} pixels in all, "
        rf"more than the {4 * _LIMIT} \(4 x {_LIMIT}\) this model accepts "
        "per request; send fewer or smaller images"):
      self.serve(full + [self.png])

  def test_a_request_holds_at_most_request_max_images(self):
    # Each image becomes the model's input however small it is: 8,000 PNGs
    # of 1 x 1 (540 KB) cost 3.3 GB before the network ran.
    dot = tf.io.encode_png(np.zeros([1, 1, 3], np.uint8)).numpy()
    self.assertEqual(self.serve([dot] * images.REQUEST_MAX_IMAGES)[
        "classes"].shape, [images.REQUEST_MAX_IMAGES])
    with self.assertRaisesRegex(
        tf.errors.InvalidArgumentError,
        rf"this request holds {images.REQUEST_MAX_IMAGES + 1} images, more "
        rf"than the {images.REQUEST_MAX_IMAGES} this model takes per "
        "request; send them in smaller batches"):
      self.serve([dot] * (images.REQUEST_MAX_IMAGES + 1))

  def test_bombs_and_headers_that_cannot_be_sized_are_refused(self):
    bombs = [made.gif((30, 40), screen=(1, 1)), made.vp8l(16383, 16383)]
    for data in bombs:
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                  f"more than the {_LIMIT} this model "
                                  "accepts"):
        self.serve([data])
    for data in (b"not an image", self.png[:20], made.gif(_SIDE)[:-1]):
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                  "header cannot be sized"):
        self.serve([self.png, data])

  def test_every_format_is_served(self):
    encoded = [self.png, made.gif(_SIDE), made.bmp(np.zeros([*_SIDE, 3],
                                                            np.uint8)),
               made.WEBP_ALPHA]
    self.assertEqual(self.serve(encoded)["classes"].shape, [4])


if __name__ == "__main__":
  tf.test.main()
