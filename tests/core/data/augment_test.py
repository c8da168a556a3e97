"""Augmentation: each draw keyed on (seed, step, index), shapes kept, each
operation does what it says, in the documented order."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from core.data import augment
from core.data import images
from core.data import policies
from core.data.choices import AUGMENTATIONS


def image(h=28, w=28, c=1, seed=0):
  return tf.constant(np.random.RandomState(seed).randint(
      1, 256, [h, w, c]).astype(np.uint8))


class AugmentTest(tf.test.TestCase, parameterized.TestCase):

  def test_same_key_same_draw_other_key_other_draw(self):
    x = image()
    ops = AUGMENTATIONS
    a = augment.augment(x, augment.example_seed(3, 10, 5), ops)
    b = augment.augment(x, augment.example_seed(3, 10, 5), ops)
    self.assertAllEqual(a, b)
    others = [augment.augment(x, augment.example_seed(*key), ops)
              for key in ((4, 10, 5), (3, 11, 5), (3, 10, 6))]
    for other in others:
      self.assertNotAllEqual(a, other)

  @parameterized.parameters((0, 4), (2, 2), (1, 1))
  def test_pad_and_crop_is_a_shifted_copy(self, padding, most):
    # Every non-zero pixel of a crop is the original shifted by at most
    # `most` pixels (the rest is zero padding: side/8 = 4 when padding is
    # 0); over 40 draws the largest shift seen is `most`.
    x = image()
    largest = 0
    for step in range(40):
      y = augment.pad_and_crop(x, augment.example_seed(0, step, 0),
                               padding).numpy()
      self.assertEqual(y.shape, (28, 28, 1))
      shifts = [max(abs(dy), abs(dx))
                for dy in range(-most, most + 1)
                for dx in range(-most, most + 1)
                if np.array_equal(y[y > 0], np.roll(
                    x.numpy(), (dy, dx), axis=(0, 1))[y > 0])]
      self.assertTrue(shifts, step)
      largest = max(largest, min(shifts))
    self.assertEqual(largest, most)

  def test_flip_is_a_mirror_or_nothing(self):
    x = image()
    flips = 0
    for index in range(20):
      y = augment.augment(x, augment.example_seed(0, 0, index), ["flip"])
      if np.array_equal(y, x[:, ::-1]):
        flips += 1
      else:
        self.assertAllEqual(y, x)
    self.assertBetween(flips, 3, 17)

  def test_erase_changes_one_rectangle_or_nothing(self):
    x = image()
    erased = 0
    for index in range(20):
      y = augment.random_erase(x, augment.example_seed(0, 0, index)).numpy()
      rows, cols = np.nonzero((y != x.numpy())[..., 0])
      if rows.size:
        erased += 1
        # all changes lie inside one rectangle of at most 40 % of the area
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        self.assertLessEqual(box, 0.45 * 28 * 28)
    self.assertBetween(erased, 3, 17)

  @parameterized.parameters("randaugment", "trivialaugment")
  def test_order_is_crop_policy_colour_flip_erase(self, policy):
    # Each op draws from its own seed: a policy's draws leave crop's,
    # flip's and erase's as they were without it.
    x, seed = image(c=3), augment.example_seed(2, 7, 4)
    crop, flip, erase = augment.seeds(seed)
    drawn, colour = augment.policy_seeds(seed)
    want = augment.pad_and_crop(x, crop)
    want = (policies.rand_augment(want, drawn, 3, 12)
            if policy == "randaugment" else
            policies.trivial_augment(want, drawn))
    want = policies.distort_colour(want, colour)
    want = augment.random_erase(
        tf.image.stateless_random_flip_left_right(want, flip), erase)
    ops = ("erase", "flip", "colour", policy, "crop")
    self.assertAllEqual(augment.augment(x, seed, ops, randaugment_ops=3,
                                        randaugment_magnitude=12), want)

  @parameterized.parameters((60, 45), (224, 300), (20, 20))
  def test_files_come_out_at_the_training_size(self, h, w):
    # A file is cropped (Inception's window) and resized while decoded,
    # then flipped and erased.
    encoded = tf.io.encode_png(image(h, w, 3))
    seed = augment.example_seed(0, 1, 2)
    for ops in ((), ("crop",), AUGMENTATIONS):
      window = ((lambda a, b: augment.crop_window(a, b, augment.seeds(seed)[0]))
                if "crop" in ops else None)
      (read,) = list(images.read_or_flagged(
          lambda e: (e, {}), encoded, 3, 32, window=window))
      self.assertTrue(bool(read["ok"]))
      y = augment.augment(read["image"], seed, ops, cropped=True)
      self.assertEqual(y.shape, (32, 32, 3))
      self.assertEqual(y.dtype, tf.uint8)

  def test_check(self):
    self.assertEqual(augment.check(["flip", "crop"]), ("flip", "crop"))
    with self.assertRaisesRegex(ValueError, "`augment` must list distinct "
                                "entries of crop, flip, erase, randaugment, "
                                "trivialaugment, colour; received "
                                "augment='rotate'"):
      augment.check(["rotate"])
    with self.assertRaisesRegex(ValueError, "received augment='flip,flip'"):
      augment.check(["flip", "flip"])
