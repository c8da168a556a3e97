"""Mixup and CutMix (core/data/mixing.py): what is mixed with what, by how
much, and that neither depends on how the global batch is cut."""

import numpy as np
import tensorflow as tf

from core.data import mixing

SEED = tf.constant([3, 7], tf.int64)


def _batch(rows=8, side=6):
  images = tf.reshape(tf.range(rows * side * side * 1, dtype=tf.float32),
                      [rows, side, side, 1]) / 100.0
  return images, tf.range(rows), tf.ones([rows])


class MixingTest(tf.test.TestCase):

  def test_partners_reverse_each_group(self):
    self.assertAllEqual(mixing.partners(8, 4), [3, 2, 1, 0, 7, 6, 5, 4])
    self.assertAllEqual(mixing.partners(4, 2), [1, 0, 3, 2])
    for rows, size in ((6, 4), (4, 1), (6, 3)):  # odd: a row alone
      with self.assertRaisesRegex(ValueError, "`group_size` must be even "
                                  "and divide"):
        mixing.partners(rows, size)

  def test_off_is_falsy(self):
    self.assertFalse(mixing.Mixing())
    self.assertTrue(mixing.Mixing(mixup_alpha=0.2))
    self.assertTrue(mixing.Mixing(cutmix_alpha=1.0))

  def test_mixup_blends_images_and_targets_by_the_same_lam(self):
    images, labels, weight = _batch()
    out = mixing.mix(images, labels, weight, mixing.Mixing(
        mixup_alpha=0.4, group_size=4), SEED, 0, 8)
    pair = [3, 2, 1, 0, 7, 6, 5, 4]
    self.assertAllEqual(out.partner_labels, pair)
    lam = out.lam.numpy()
    self.assertTrue(np.all((lam >= 0) & (lam <= 1)))
    self.assertGreater(np.std(lam), 0)  # one draw per example
    expected = (lam[:, None, None, None] * images.numpy()
                + (1 - lam[:, None, None, None]) * images.numpy()[pair])
    self.assertAllClose(out.images, expected, rtol=1e-6, atol=1e-6)

  def test_cutmix_pastes_a_box_whose_area_is_one_minus_lam(self):
    images, labels, weight = _batch(side=16)
    out = mixing.mix(images, labels, weight, mixing.Mixing(
        cutmix_alpha=1.0, group_size=8), SEED, 0, 8)
    pair = mixing.partners(8, 8).numpy()
    source = images.numpy()
    for i in range(8):
      pasted = out.images[i].numpy() != source[i]
      # Every changed pixel came from the partner; unchanged ones are own.
      self.assertAllEqual(out.images[i].numpy()[pasted], source[pair[i]][pasted])
      self.assertAllClose(1 - pasted.mean(), out.lam[i], atol=1e-6)
    self.assertLess(np.min(out.lam), 1.0)  # some boxes were cut

  def test_a_skipped_partner_leaves_the_example_unmixed(self):
    images, labels, _ = _batch()
    weight = tf.constant([1, 1, 1, 0, 1, 1, 1, 1], tf.float32)
    out = mixing.mix(images, labels, weight, mixing.Mixing(
        mixup_alpha=1.0, group_size=4), SEED, 0, 8)
    self.assertEqual(out.lam[0], 1.0)  # row 0's partner is row 3
    self.assertAllEqual(out.images[0], images[0])
    self.assertLess(out.lam[1], 1.0)

  def test_slices_mix_as_the_whole_batch_does(self):
    # Two replicas' (or micro-batches') slices of 4 rows, each at its
    # offset of the global batch of 8, mix exactly as the whole batch.
    images, labels, weight = _batch()
    config = mixing.Mixing(mixup_alpha=0.4, cutmix_alpha=1.0, group_size=4)
    whole = mixing.mix(images, labels, weight, config, SEED, 0, 8)
    parts = [mixing.mix(images[o:o + 4], labels[o:o + 4], weight[o:o + 4],
                        config, SEED, o, 8) for o in (0, 4)]
    for field in ("images", "partner_labels", "lam"):
      self.assertAllEqual(getattr(whole, field),
                          tf.concat([getattr(p, field) for p in parts], 0))

  def test_bfloat16_pixels_are_mixed_by_the_targets_lam(self):
    images, labels, weight = _batch()
    images = tf.cast(images, tf.bfloat16)
    out = mixing.mix(images, labels, weight,
                     mixing.Mixing(mixup_alpha=0.4, group_size=4), SEED, 0, 8)
    lam = out.lam.numpy()[:, None, None, None]
    pair = mixing.partners(8, 4).numpy()
    pixels = tf.cast(images, tf.float32).numpy()
    exact = lam * pixels + (1 - lam) * pixels[pair]
    # One bfloat16 rounding of the float32 blend by the float32 lam.
    self.assertEqual(out.images.dtype, tf.bfloat16)
    self.assertAllClose(tf.cast(out.images, tf.float32), exact, rtol=2 ** -8,
                        atol=0)

  def test_a_batch_of_unknown_size_mixes_as_a_known_one(self):
    # File pipelines' batches have no static size in the graph.
    images, labels, weight = _batch()
    config = mixing.Mixing(mixup_alpha=0.4, cutmix_alpha=1.0, group_size=4)
    known = mixing.mix(images, labels, weight, config, SEED, 0, 8)
    unknown = tf.function(lambda x, y, w: mixing.mix(x, y, w, config, SEED,
                                                     0, 8), input_signature=[
        tf.TensorSpec([None, 6, 6, 1]), tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([None])])(images, labels, weight)
    for field in ("images", "partner_labels", "lam"):
      self.assertAllEqual(getattr(known, field), getattr(unknown, field))

  def test_draws_follow_the_seed(self):
    images, labels, weight = _batch()
    config = mixing.Mixing(mixup_alpha=0.4, cutmix_alpha=1.0, group_size=4)
    a = mixing.mix(images, labels, weight, config, SEED, 0, 8)
    b = mixing.mix(images, labels, weight, config, SEED, 0, 8)
    c = mixing.mix(images, labels, weight, config, SEED + 1, 0, 8)
    self.assertAllEqual(a.lam, b.lam)
    self.assertNotAllEqual(a.lam, c.lam)


if __name__ == "__main__":
  tf.test.main()
