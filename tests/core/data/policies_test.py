"""Policies: every op keeps uint8 and the shape, does what torchvision and
PIL define, and every draw is keyed on its seed, in graph mode."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from core.data import augment
from core.data import policies

POLICIES = {
    "randaugment": lambda x, seed: policies.rand_augment(x, seed, 2, 9),
    "trivialaugment": policies.trivial_augment,
    "colour": policies.distort_colour,
}


def image(h=24, w=20, c=3, seed=0):
  return tf.constant(np.random.RandomState(seed).randint(
      1, 255, [h, w, c]).astype(np.uint8))


def grey(values):
  return tf.constant(np.array(values, np.uint8)[..., None])


class OpsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(name=list(policies.OPS), channels=(1, 3),
                         magnitude=(-0.6, 0.4, 17.0))
  def test_uint8_in_uint8_of_the_same_shape_out(self, name, channels,
                                                 magnitude):
    y = policies.OPS[name].apply(image(c=channels), tf.constant(magnitude))
    self.assertEqual(y.dtype, tf.uint8)
    self.assertEqual(y.shape, (24, 20, channels))

  @parameterized.product(
      name=[n for n in policies.OPS if n not in (
          "Solarize", "AutoContrast", "Equalize")], channels=(1, 3))
  def test_magnitude_zero_leaves_the_image(self, name, channels):
    x = image(c=channels)
    self.assertAllEqual(policies.OPS[name].apply(x, tf.constant(0.0)), x)

  def test_solarize_inverts_levels_at_or_above_the_threshold(self):
    x = grey([[0, 99, 100, 200, 255]])
    self.assertAllEqual(policies.solarize(x, tf.constant(155.0)),
                        grey([[0, 99, 155, 55, 0]]))
    # torchvision's bin 0 (threshold 255) still inverts white
    self.assertAllEqual(policies.solarize(x, tf.constant(0.0)),
                        grey([[0, 99, 100, 200, 0]]))

  def test_posterize_clears_the_low_bits(self):
    x = grey([[0, 7, 8, 127, 255]])
    self.assertAllEqual(policies.posterize(x, tf.constant(3.0)),
                        grey([[0, 0, 8, 120, 248]]))
    self.assertAllEqual(policies.posterize(x, tf.constant(8.0)),
                        grey([[0, 0, 0, 0, 0]]))

  def test_equalize_is_pils(self):
    # 1024 pixels: 512 at 10, 256 at 20, 256 at 30. PIL: step = (1024 -
    # 256) // 255 = 3; level v -> (step // 2 + pixels below v) // step:
    # 10 -> 1 // 3 = 0, 20 -> 513 // 3 = 171, 30 -> 769 // 3 = 256 -> 255.
    x = grey(np.repeat([10, 20, 30], [512, 256, 256]).reshape(32, 32))
    want = grey(np.repeat([0, 171, 255], [512, 256, 256]).reshape(32, 32))
    self.assertAllEqual(policies.equalize(x, 0.0), want)
    # Too few pixels for a step of 1: unchanged, as PIL.
    small = grey([[10, 20], [30, 40]])
    self.assertAllEqual(policies.equalize(small, 0.0), small)

  def test_equalize_treats_each_channel_alone(self):
    x = grey(np.repeat([10, 20, 30], [300, 300, 424]).reshape(32, 32))
    both = tf.concat([x, 255 - x], -1)
    self.assertAllEqual(policies.equalize(both, 0.0)[..., :1],
                        policies.equalize(x, 0.0))
    self.assertAllEqual(policies.equalize(both, 0.0)[..., 1:],
                        policies.equalize(255 - x, 0.0))

  def test_auto_contrast_stretches_each_channel(self):
    x = tf.constant(np.array([[[50, 7], [100, 7]], [[150, 7], [75, 7]]],
                             np.uint8))
    # (v - 50) * 255 / 100, truncated; the flat channel is kept.
    self.assertAllEqual(policies.auto_contrast(x, 0.0),
                        [[[0, 7], [127, 7]], [[255, 7], [63, 7]]])

  def test_brightness_colour_and_contrast_blend_as_torchvision(self):
    x = tf.constant(np.array([[[200, 100, 0]], [[40, 40, 40]]], np.uint8))
    self.assertAllEqual(policies.brightness(x, tf.constant(0.5)),
                        [[[255, 150, 0]], [[60, 60, 60]]])
    # luma 0.2989 * 200 + 0.587 * 100 = 118.48 -> 118; factor 0.5
    # (and a grey 40's luma is 39.996 -> 39: 39.5 -> 39)
    self.assertAllEqual(policies.colour(x, tf.constant(-0.5)),
                        [[[159, 109, 59]], [[39, 39, 39]]])
    # mean luma (118 + 39) / 2 = 78.5, of whole levels
    self.assertAllEqual(policies.contrast(x, tf.constant(-0.5)),
                        [[[139, 89, 39]], [[59, 59, 59]]])
    self.assertAllEqual(policies.contrast(x, tf.constant(-1.0)),
                        tf.fill([2, 1, 3], tf.constant(78, tf.uint8)))

  def test_sharpness_blends_the_inside_with_pils_smooth_kernel(self):
    x = np.zeros([3, 3, 1], np.uint8)
    x[1, 1] = 130
    # the centre smoothed: 130 * 5 / 13 = 50; factor 2: 2 * 130 - 50
    y = policies.sharpness(tf.constant(x), tf.constant(1.0))
    want = x.copy()
    want[1, 1] = 210
    self.assertAllEqual(y, want)

  def test_geometry(self):
    x = tf.constant(np.arange(1, 26, dtype=np.uint8).reshape(5, 5, 1))
    # counter-clockwise about the centre
    self.assertAllEqual(policies.rotate(x, tf.constant(90.0)),
                        np.rot90(x.numpy()))
    # right by int(2.7) = 2 pixels, zeros come in
    shifted = np.zeros([5, 5, 1], np.uint8)
    shifted[:, 2:] = x.numpy()[:, :3]
    self.assertAllEqual(policies.translate_x(x, tf.constant(2.7)), shifted)
    self.assertAllEqual(policies.translate_y(tf.transpose(x, [1, 0, 2]),
                                             tf.constant(2.7)),
                        np.transpose(shifted, [1, 0, 2]))
    # row y takes input column x + 2 (y + 1/2) (about the top edge)
    sheared = np.zeros([5, 5, 1], np.uint8)
    for y in range(5):
      for c in range(5):
        if c + 2 * y + 1 < 5:
          sheared[y, c] = x.numpy()[y, c + 2 * y + 1]
    self.assertAllEqual(policies.shear_x(x, tf.constant(2.0)), sheared)
    self.assertAllEqual(
        policies.shear_y(tf.transpose(x, [1, 0, 2]), tf.constant(2.0)),
        np.transpose(sheared, [1, 0, 2]))


class PolicyTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(policy=list(POLICIES), channels=(1, 3))
  def test_keyed_on_seed_step_and_index(self, policy, channels):
    x = image(c=channels)
    apply = POLICIES[policy]
    a = apply(x, augment.example_seed(3, 10, 5))
    self.assertAllEqual(a, apply(x, augment.example_seed(3, 10, 5)))
    self.assertEqual(a.dtype, tf.uint8)
    self.assertEqual(a.shape, x.shape)
    others = [apply(x, augment.example_seed(3, 10, i)) for i in range(6, 10)]
    self.assertTrue(any(not np.array_equal(a, o) for o in others))

  @parameterized.parameters(*POLICIES)
  def test_graph_draws_what_eager_draws(self, policy):
    x, seed = image(), augment.example_seed(1, 2, 3)
    self.assertAllEqual(tf.function(POLICIES[policy])(x, seed),
                        POLICIES[policy](x, seed))

  def test_draws_each_op_uniformly_signs_at_half_and_every_bin(self):
    names = list(policies.OPS)
    top = tf.constant([op.trivial for op in policies.OPS.values()])
    draws = [policies.draw_op(augment.example_seed(0, 0, i), top)
             for i in range(1400)]
    index = np.array([int(i) for i, _ in draws])
    magnitude = np.array([float(m) for _, m in draws])
    self.assertBetween(min(np.bincount(index, minlength=14)), 65, 100)
    self.assertBetween(max(np.bincount(index)), 100, 135)
    signed = np.array([policies.OPS[n].signed for n in names])[index]
    self.assertFalse((magnitude[~signed] < 0).any())
    self.assertBetween((magnitude[signed] < 0).mean(), 0.4, 0.6)
    tops = top.numpy()[index]
    bins = np.abs(magnitude[tops > 0]) / tops[tops > 0] * 30
    self.assertAllClose(bins, np.round(bins), atol=1e-4)
    self.assertEqual(set(np.round(bins).astype(int)), set(range(31)))

  def test_randaugment_draws_at_its_bin(self):
    top = tf.constant([op.rand for op in policies.OPS.values()])
    for i in range(30):
      index, magnitude = policies.draw_op(augment.example_seed(0, 0, i),
                                          top, 9)
      self.assertAllClose(abs(magnitude), top[index] * 9 / 30)

  def test_randaugment_translates_by_a_fraction_of_the_side(self):
    # 150/331 of the width at bin 30: 0.45 * 40 = 18 pixels on a 40-wide
    # image, so only the first 22 columns stay (moved) or none remain left
    x = tf.ones([8, 40, 1], tf.uint8)
    widths = set()
    for i in range(60):
      y = policies.rand_augment(x, augment.example_seed(0, 0, i), 1, 30)
      widths.add(int(tf.reduce_sum(tf.cast(y[4] > 0, tf.int32))))
    self.assertIn(40 - 18, widths)

  def test_randaugment_without_ops_is_the_image(self):
    x = image()
    self.assertAllEqual(policies.rand_augment(x, tf.constant([1, 2]), 0), x)

  def test_colour_on_grey_moves_the_mean_by_32_and_the_spread_by_half(self):
    # Brightness moves every level by at most 32/255; contrast scales the
    # distances to the mean by 0.5 to 1.5; mid-grey levels never clip.
    x = tf.constant(np.random.RandomState(0).randint(
        100, 156, [16, 16, 1]).astype(np.uint8))
    spreads = []
    for index in range(20):
      y = policies.distort_colour(x, augment.example_seed(0, 0, index))
      y = y.numpy().astype(float)
      self.assertLessEqual(abs(y.mean() - x.numpy().mean()), 32.5)
      spreads.append(y.std() / x.numpy().std())
    self.assertBetween(min(spreads), 0.45, 0.8)
    self.assertBetween(max(spreads), 1.2, 1.55)

  def test_colour_turns_hue_and_saturation_of_photographs(self):
    # A grey image's twin in three channels distorts as it does (hue and
    # saturation leave grey alone). A coloured pixel (saturation 0.7; no
    # contrast in one pixel) turns by up to 0.2 and loses up to half its
    # saturation (brightness alone: at most 0.14 of it).
    x = tf.constant(np.random.RandomState(0).randint(
        100, 156, [16, 16, 1]).astype(np.uint8))
    colourful = tf.constant([[[200, 120, 60]]], tf.uint8)
    hsv = lambda rgb: tf.image.rgb_to_hsv(tf.cast(rgb, tf.float32) / 255)[
        0, 0].numpy()
    turns, saturations = [], []
    for index in range(20):
      seed = augment.example_seed(0, 0, index)
      self.assertAllClose(
          policies.distort_colour(tf.tile(x, [1, 1, 3]), seed)[..., :1],
          policies.distort_colour(x, seed), atol=1)
      (hue, saturation, _), (hue0, saturation0, _) = (
          hsv(policies.distort_colour(colourful, seed)), hsv(colourful))
      turns.append(abs((hue - hue0 + 0.5) % 1 - 0.5))
      saturations.append(saturation / saturation0)
    self.assertBetween(max(turns), 0.12, 0.21)
    self.assertBetween(min(saturations), 0.45, 0.8)

  def test_randaugment_refuses_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, r"`randaugment_magnitude` must "
                                r"be a bin of 0\.\.30; received "
                                r"randaugment_magnitude=31\."):
      policies.rand_augment(image(), tf.constant([1, 2]), 2, 31)
    with self.assertRaisesRegex(ValueError, r"`randaugment_ops` must be 0 "
                                r"or more; received randaugment_ops=-1\."):
      policies.rand_augment(image(), tf.constant([1, 2]), -1, 9)

  @parameterized.parameters(*POLICIES)
  def test_channels_must_be_known(self, policy):
    unknown = tf.TensorSpec([8, 8, None], tf.uint8)
    with self.assertRaisesRegex(ValueError, r"`image` must be \[H, W, C\] "
                                r"with a static C of 1 or 3; received shape "
                                r"\(8, 8, None\)\."):
      tf.function(lambda x: POLICIES[policy](x, tf.constant([1, 2]))
                  ).get_concrete_function(unknown)

  def test_no_python_in_the_graph(self):
    # Everything augment() builds is TensorFlow ops: no py_function, so it
    # runs inside tf.data's graph on its threads.
    ops = ("crop", "randaugment", "trivialaugment", "colour", "flip",
           "erase")
    graph = tf.function(lambda x, s: augment.augment(x, s, ops)
                        ).get_concrete_function(
                            tf.TensorSpec([24, 20, 3], tf.uint8),
                            tf.TensorSpec([2], tf.int64)).graph.as_graph_def()
    kinds = {node.op for node in graph.node}
    for function in graph.library.function:
      kinds |= {node.op for node in function.node_def}
    self.assertIn("ImageProjectiveTransformV3", kinds)
    self.assertTrue(kinds & {"Case", "StatelessCase"})
    self.assertFalse(kinds & {"PyFunc", "EagerPyFunc", "PyFuncStateless"})
    # stateless draws only (Random*, Stateful*: a stateful generator's)
    self.assertFalse([k for k in kinds if k.startswith(("Random",
                                                        "Stateful"))])
