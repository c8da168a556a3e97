import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from layers import crops as crops_lib
from layers import googlenet
from layers import normalization
from layers.dropout import DropoutNoise


def count(variables):
  return sum(int(np.prod(v.shape)) for v in variables)


class GoogLeNetTest(tf.test.TestCase, parameterized.TestCase):

  # GOOGLENET.md's reference counts (conv and linear layers with bias).
  @parameterized.parameters(
      (1000, 3, 224, 6_998_552, 13_378_280),
      (10, 1, 224, 5_977_530, 10_327_758),
      (10, 1, 28, 5_977_530, 6_395_598))
  def test_parameter_counts(self, classes, channels, size, trunk, total):
    model = googlenet.GoogLeNet(classes, channels, size)
    self.assertEqual(count(model.trunk_variables), trunk)
    self.assertEqual(count(model.trainable_variables), total)

  # torchvision's googlenet: 6,624,904 parameters without the auxiliary
  # heads (its weights' documented num_params), 13,004,888 with them; the
  # slim variant, one class more in each of the three heads.
  @parameterized.parameters(("torchvision", 1000, 6_624_904, 13_004_888),
                            ("slim", 1001, 6_625_929, 13_007_963))
  def test_published_variants_have_their_counts(self, variant, classes,
                                                trunk, total):
    model = googlenet.GoogLeNet(classes, 3, 224, norm="batch",
                                variant=variant)
    self.assertEqual(count(model.trunk_variables), trunk)
    self.assertEqual(count(model.trainable_variables), total)
    self.assertEqual(model.blocks["4a"].branch5x5.kernel.shape[:2], [3, 3])
    self.assertEqual((model.pool4.window, model.pool1.ceil_mode),
                     (2, variant == "torchvision"))
    self.assertEqual(model.conv1.padding,
                     3 if variant == "torchvision" else "SAME")
    logits = model(tf.zeros([1, 224, 224, 3]), training=False).logits
    self.assertEqual(logits.shape, [1, classes])

  def test_variants_need_batch_norm_and_the_paper_stem(self):
    for kwargs in (dict(norm="none"), dict(norm="batch", stem="small")):
      with self.assertRaisesRegex(ValueError, "variant='slim' is a published "
                                  "ImageNet GoogLeNet.*needs stem='paper' and "
                                  "norm='batch'"):
        googlenet.GoogLeNet(10, 3, 224, variant="slim", **kwargs)
    with self.assertRaisesRegex(ValueError, "`variant` must be one of paper, "
                                "torchvision, slim"):
      googlenet.GoogLeNet(10, 3, 224, variant="keras")

  def test_counts_follow_the_table(self):
    model = googlenet.GoogLeNet(10, 1, 28)
    for key, spec in googlenet.BLOCKS.items():
      self.assertEqual(model.blocks[key].out_channels, spec.out_channels)
    self.assertEqual(model.classifier.in_features,
                     googlenet.BLOCKS["5b"].out_channels)

  def test_aux_variables_live_under_aux(self):
    model = googlenet.GoogLeNet(10, 1, 28)
    aux = [v.name for v in model.trainable_variables if "aux" in v.name]
    self.assertLen(aux, 12)
    self.assertTrue(all(n.startswith(("googlenet/aux1/", "googlenet/aux2/"))
                        for n in aux))
    self.assertIn("googlenet/inception_4a/branch3x3/kernel:0",
                  [v.name for v in model.trainable_variables])

  @parameterized.parameters(28, 32, 96)
  def test_same_structure_in_every_mode(self, size):
    model = googlenet.GoogLeNet(10, 1, size)
    x = tf.zeros([2, size, size, 1])
    train = model(x, training=True)
    evaluation = model(x, training=False)
    self.assertIsInstance(train, googlenet.GoogLeNetOutputs)
    self.assertIsInstance(evaluation, googlenet.GoogLeNetOutputs)
    for logits in train:
      self.assertEqual(logits.shape, [2, 10])
    self.assertIsNone(evaluation.aux1)
    self.assertIsNone(evaluation.aux2)

  def test_eval_is_deterministic_and_matches_function(self):
    model = googlenet.GoogLeNet(10, 1, 28)
    x = tf.random.uniform([2, 28, 28, 1], seed=1)
    eager = model(x, training=False).logits
    self.assertAllClose(tf.function(
        lambda y: model(y, training=False).logits)(x), eager, atol=1e-5)

  def test_small_map_shortcuts_leave_the_network_unchanged(self):
    # At 28x28 the 4x and 5x blocks run on 2x2 and 1x1 maps, where
    # layers/formulations.py swaps convolutions for matrix products and skips 1x1
    # pools: all three heads and every gradient must match the textbook net.
    model = googlenet.GoogLeNet(10, 1, 28)
    x = tf.random.uniform([4, 28, 28, 1], -1, 1, seed=1)
    noise = DropoutNoise(tf.constant([5, 6], tf.int64))

    def run(reference):
      with tf.GradientTape() as tape:
        out = model(x, training=True, noise=noise, reference=reference)
        loss = sum(tf.reduce_sum(o * o) for o in out)
      return list(out) + list(tape.gradient(loss, model.trainable_variables))

    fast, reference = run(False), run(True)
    for got, want, v in zip(fast, reference,
                            [None] * 3 + list(model.trainable_variables)):
      scale = float(tf.reduce_max(tf.abs(want))) + 1e-6
      self.assertAllClose(got / scale, want / scale, atol=1e-5,
                          msg=v.name if v is not None else "logits")

  def test_training_with_noise_is_reproducible(self):
    model = googlenet.GoogLeNet(10, 1, 28)
    x = tf.random.uniform([2, 28, 28, 1], seed=1)
    noise = DropoutNoise(tf.constant([5, 6], tf.int64))
    a = model(x, training=True, noise=noise)
    b = model(x, training=True, noise=noise)
    for u, v in zip(a, b):
      self.assertAllEqual(u, v)

  def test_small_stem_keeps_larger_maps_for_three_fewer_thousand_weights(self):
    # stem="small": a 3x3 stride-1 conv1 and no pool1. At 28x28, block 4a
    # sees 7x7 maps instead of 2x2; conv1 has 9 instead of 49 taps per
    # channel: 40 * 64 = 2,560 fewer weights, nothing else changes.
    paper = googlenet.GoogLeNet(10, 1, 28)
    small = googlenet.GoogLeNet(10, 1, 28, stem="small")
    self.assertEqual(count(small.trainable_variables),
                     count(paper.trainable_variables) - 2_560)
    # The aux heads read the 4a map: 2x2 is pooled whole, 7x7 by 5x5 windows.
    self.assertEqual((paper.aux1.pool.window, small.aux1.pool.window), (2, 5))
    self.assertIsNone(small.pool1)
    x = tf.random.uniform([2, 28, 28, 1], seed=2)
    for logits in small(x, training=True):
      self.assertEqual(logits.shape, [2, 10])
    with self.assertRaisesRegex(ValueError, "`stem` must be one of paper, "
                                "medium, small; received stem='tiny'"):
      googlenet.GoogLeNet(10, 1, 28, stem="tiny")

  def test_medium_stem_halves_the_small_stems_maps_with_the_same_weights(self):
    # stem="medium": the small stem's 3x3 stride-1 conv1, then the paper's
    # pool1. At 28x28 the maps entering 3a, 4a and 5a are 7x7, 4x4 and 2x2
    # (paper: 4x4, 2x2, 1x1; small: 14x14, 7x7, 4x4). Pools hold no weights,
    # so the variables are exactly the small stem's.
    small = googlenet.GoogLeNet(10, 1, 28, stem="small")
    medium = googlenet.GoogLeNet(10, 1, 28, stem="medium")
    self.assertEqual([(v.name, v.shape) for v in medium.trainable_variables],
                     [(v.name, v.shape) for v in small.trainable_variables])
    self.assertEqual((medium.pool1.window, medium.pool1.stride), (3, 2))
    self.assertEqual(medium.aux1.pool.window, 4)  # the 4x4 map, pooled whole
    seen = {}

    def spy(key, block):
      def call(x, **kwargs):
        seen[key] = x.shape[1:3].as_list()
        return block(x, **kwargs)
      return call

    for key in ("3a", "4a", "5a"):
      medium.blocks[key] = spy(key, medium.blocks[key])
    x = tf.random.uniform([2, 28, 28, 1], seed=3)
    for logits in medium(x, training=True):
      self.assertEqual(logits.shape, [2, 10])
    self.assertEqual(seen, {"3a": [7, 7], "4a": [4, 4], "5a": [2, 2]})

  def test_batch_norm_replaces_each_convolution_bias_by_beta_and_gamma(self):
    # 59 convolutions (57 in the trunk and blocks, one per aux head): each
    # bias becomes beta, each gets a gamma (+7,536 trainable) and two
    # moving statistics of its width (15,072, not trainable).
    plain = googlenet.GoogLeNet(10, 1, 28, stem="medium")
    model = googlenet.GoogLeNet(10, 1, 28, stem="medium", norm="batch")
    self.assertLen(model.norm_layers, 59)
    self.assertEqual(count(model.trainable_variables),
                     count(plain.trainable_variables) + 7_536)
    self.assertEqual(count(model.weights_and_statistics),
                     count(model.trainable_variables) + 2 * 7_536)
    self.assertIsNone(model.conv1.bias)
    self.assertEqual(plain.norm_layers, ())
    self.assertEqual(plain.weights_and_statistics, plain.trainable_variables)
    # What inference reads: the trunk and its statistics, no aux variable.
    names = [v.name for v in model.inference_variables]
    self.assertFalse([n for n in names if "aux" in n])
    self.assertEqual(count(model.inference_variables),
                     count(model.trunk_variables) + 2 * (7_536 - 2 * 128))

  def test_norm_layers_are_listed_in_call_order(self):
    # update_statistics pairs BatchStatistics.sums() with norm_layers by
    # position: the order a training pass records must be the listed one.
    model = googlenet.GoogLeNet(10, 1, 28, stem="medium", norm="batch")
    stats = normalization.BatchStatistics(2)
    model(tf.random.uniform([4, 28, 28, 1], seed=1), training=True,
          stats=stats)
    self.assertEqual(stats.layers, list(model.norm_layers))
    self.assertLen(stats.sums(), 2 * 59)
    with self.assertRaisesRegex(ValueError, "`sums` must hold 2 tensors per "
                                "normalisation layer \\(118\\); received 2"):
      model.update_statistics(stats.sums()[:2], stats.total_weight(), 1)
    model.update_statistics(stats.sums(), stats.total_weight(), 1)
    self.assertNotAllClose(model.conv1.norm.moving_mean, tf.zeros([64]))

  def test_batch_norm_inference_needs_no_batch(self):
    # Inference reads the moving statistics: an image's logits do not
    # depend on the other images of its batch; training's do.
    model = googlenet.GoogLeNet(10, 1, 28, stem="medium", norm="batch")
    x = tf.random.uniform([4, 28, 28, 1], seed=2)
    alone = model(x[:1], training=False).logits
    self.assertAllClose(alone, model(x, training=False).logits[:1],
                        atol=1e-5)
    noise = DropoutNoise(tf.constant([1, 2], tf.int64), 0, 4)
    train = lambda v: model(v, training=True, noise=noise).logits[:1]
    self.assertNotAllClose(train(x), train(tf.concat([x[:1], 1 - x[1:]], 0)))

  def test_classify_with_mirror_averages_the_two_probabilities(self):
    model = googlenet.GoogLeNet(10, 1, 28, stem="medium")
    x = tf.random.uniform([3, 28, 28, 1], seed=4)
    plain = model(x, training=False).logits
    mirrored = model(tf.reverse(x, axis=[2]), training=False).logits
    want = (tf.nn.softmax(plain) + tf.nn.softmax(mirrored)) / 2
    got = model.classify(x, mirror=True)
    self.assertAllClose(tf.exp(got), want, atol=1e-6)
    self.assertAllClose(model.classify(x), plain)
    symmetric = tf.concat([x[:, :, :14], tf.reverse(x[:, :, :14], [2])], 2)
    self.assertAllClose(model.classify(symmetric, mirror=True),
                        tf.nn.log_softmax(model.classify(symmetric)),
                        atol=1e-5)

  def test_classify_mirror_is_the_one_batch_of_both(self):
    # What classify(mirror=True) computed before crops.py: bitwise the same.
    model = googlenet.GoogLeNet(10, 1, 28, blocks=("4a", "4d"))
    x = tf.random.uniform([3, 28, 28, 1], seed=5)
    both = model(tf.concat([x, tf.reverse(x, axis=[2])], axis=0),
                 training=False).logits
    log_p = tf.nn.log_softmax(both)
    want = tf.reduce_logsumexp(tf.stack([log_p[:3], log_p[3:]]),
                               axis=0) - tf.math.log(2.0)
    self.assertAllEqual(model.classify(x, mirror=True), want)

  @parameterized.parameters(("1", True), ("10", False), ("144", False),
                            ("144", True))
  def test_crops_of_an_image_whose_crops_are_all_alike_change_nothing(
      self, crops, mirror):
    # A constant image: every crop, scale and mirror image is the same
    # 28x28 image, so every mode's mean is the single view's probability.
    model = googlenet.GoogLeNet(10, 1, 28, blocks=("4a", "4d"))
    images = tf.constant([0.3, -0.6])[:, None, None, None] * tf.ones(
        [2, 28, 40, 1])
    single = tf.nn.softmax(model.classify(images[:, :, :28]))
    if crops == "1":
      images = images[:, :, :28]
    got = tf.exp(model.classify(images, crops=crops, mirror=mirror))
    self.assertAllClose(got, single, atol=1e-6, rtol=0)
    self.assertNotAllClose(single[0], single[1], atol=1e-3)

  def test_classify_crops_average_the_probabilities_of_the_views(self):
    model = googlenet.GoogLeNet(10, 1, 28, blocks=("4a", "4d"))
    x = tf.random.uniform([2, 30, 40, 1], seed=6)
    p = tf.nn.softmax(model(crops_lib.views(x, "10", 28),
                            training=False).logits)
    want = tf.reduce_mean(tf.reshape(p, [10, 2, 10]), axis=0)
    got = tf.function(lambda x: model.classify(x, crops="10"))(x)
    self.assertAllClose(tf.exp(got), want, atol=1e-6)
    with self.assertRaisesRegex(ValueError, "`crops` must be one of 1, 10, "
                                "144; received crops='5'"):
      model.classify(x, crops="5")

  def test_fewer_blocks_build_the_same_layers_minus_the_blocks_left_out(self):
    full = googlenet.GoogLeNet(10, 1, 28, stem="medium", norm="batch")
    small = googlenet.GoogLeNet(10, 1, 28, stem="medium", norm="batch",
                                blocks=("4a", "4d"))
    self.assertEqual(small.block_names, ("4a", "4d"))
    # 4a's input is conv2's 192 channels (pool2, pool3 between), 4d's is
    # 4a's 512; everything else is the full model's, names included.
    self.assertEqual(small.blocks["4a"].branch1x1.kernel.shape[2], 192)
    self.assertEqual(small.blocks["4d"].branch1x1.kernel.shape[2], 512)
    names = {v.name for v in full.variables}
    kept = {v.name for v in small.variables}
    self.assertTrue(kept < names)
    self.assertEqual({n.split("/")[1] for n in names - kept
                      if n.startswith("googlenet/inception_")},
                     {f"inception_{k}" for k in googlenet.BLOCKS
                      if k not in ("4a", "4d")})
    self.assertLen(small.norm_layers, 3 + 2 * 6 + 2)  # stem, blocks, aux
    x = tf.zeros([4, 28, 28, 1])
    out = small(x, training=True)
    self.assertEqual([o.shape for o in out], [[4, 10]] * 3)
    self.assertEqual(small(x, training=False).logits.shape, [4, 10])
    # With stage 5 kept, pool4 runs before its first block.
    five = googlenet.GoogLeNet(10, 1, 28, blocks=("4a", "4d", "5b"))
    self.assertEqual(five(x, training=False).logits.shape, [4, 10])
    self.assertEqual(five.blocks["5b"].branch1x1.kernel.shape[2], 528)

  def test_errors(self):
    model = googlenet.GoogLeNet(10, 1, 28)
    with self.assertRaisesRegex(ValueError, "`norm` must be one of none, "
                                "batch; received norm='layer'"):
      googlenet.GoogLeNet(10, 1, 28, norm="layer")
    with self.assertRaisesRegex(ValueError, r"`images` must have shape "
                                r"\[N, 28, 28, 1\]; received shape "
                                r"\[2, 32, 32, 1\]"):
      model(tf.zeros([2, 32, 32, 1]), training=False)
    with self.assertRaisesRegex(TypeError, "`training` must be a Python bool"):
      model(tf.zeros([1, 28, 28, 1]), training=1)
    with self.assertRaisesRegex(ValueError, "`image_size` must be a positive"):
      googlenet.GoogLeNet(10, 1, 0)
