"""Augmentation policies on uint8 images: RandAugment, TrivialAugment (wide)
and Inception's colour distortion, in raw TensorFlow.

The ops, their magnitude tables and signs are torchvision's
(torchvision/transforms/autoaugment.py: `_apply_op`, `RandAugment`,
`TrivialAugmentWide`), each op as torchvision defines it on uint8 tensors:
geometry by nearest neighbour with 0 outside (shears about the top-left
corner, rotation about the centre); brightness, colour, contrast and
sharpness blend with a degenerate image and truncate to uint8; Equalize is
PIL's. The colour distortion is TF-slim's `distort_color` (not its fast
mode): brightness (+-32/255), saturation (0.5 to 1.5), hue (+-0.2) and
contrast (0.5 to 1.5) in one of four orders; grey images take brightness
and contrast only.

Each op takes (image, magnitude) as torchvision's `_apply_op` does; images
are uint8 [H, W, C], C 1 or 3 (static). Every draw is stateless,
from the seed given (core/data/augment.py keys it on (seed, step, index));
the op is chosen by tf.switch_case, so a policy runs inside tf.data's graph
with no Python per image.
"""

import math
from typing import Callable, NamedTuple

import tensorflow as tf

BINS = 31  # torchvision's magnitude bins: RandAugment's magnitude is 0..30


def _transform(image: tf.Tensor, a0, a1, a2, b0, b1, b2) -> tf.Tensor:
  """Output pixel (x, y) takes input pixel (a0 x + a1 y + a2,
  b0 x + b1 y + b2), the nearest one; 0 outside the image."""
  matrix = tf.cast(tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0]), tf.float32)
  out = tf.raw_ops.ImageProjectiveTransformV3(
      images=image[None], transforms=matrix[None],
      output_shape=tf.shape(image)[:2], fill_value=0.0,
      interpolation="NEAREST", fill_mode="CONSTANT")[0]
  out.set_shape(image.shape)
  return out


def identity(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
  """The image as it is (a policy's draw may be to do nothing)."""
  del magnitude
  return image


def shear_x(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
  """x + magnitude * y, about the top edge (torchvision's center=[0, 0])."""
  return _transform(image, 1.0, magnitude, magnitude / 2, 0.0, 1.0, 0.0)


def shear_y(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
  """y + magnitude * x, about the left edge."""
  return _transform(image, 1.0, 0.0, 0.0, magnitude, 1.0, magnitude / 2)


def _pixels(magnitude: tf.Tensor) -> tf.Tensor:
  """Whole pixels, truncated (torchvision's int(magnitude))."""
  return tf.cast(tf.cast(magnitude, tf.int32), tf.float32)


def translate_x(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
  """Moved right by `magnitude` pixels (left when negative)."""
  return _transform(image, 1.0, 0.0, -_pixels(magnitude), 0.0, 1.0, 0.0)


def translate_y(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
  """Moved down by `magnitude` pixels (up when negative)."""
  return _transform(image, 1.0, 0.0, 0.0, 0.0, 1.0, -_pixels(magnitude))


def rotate(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
  """Turned `magnitude` degrees counter-clockwise about the centre."""
  angle = magnitude * (math.pi / 180)
  cos, sin = tf.cos(angle), tf.sin(angle)
  size = tf.cast(tf.shape(image)[:2], tf.float32)
  cy, cx = (size[0] - 1) / 2, (size[1] - 1) / 2
  return _transform(image, cos, -sin, cx - cos * cx + sin * cy,
                    sin, cos, cy - sin * cx - cos * cy)


def _blend(image: tf.Tensor, other, factor) -> tf.Tensor:
  """factor * image + (1 - factor) * other, clipped to 0..255 and truncated
  (torchvision's _blend)."""
  mixed = factor * tf.cast(image, tf.float32) + (1 - factor) * other
  return tf.cast(tf.clip_by_value(mixed, 0.0, 255.0), tf.uint8)


def _grey(image: tf.Tensor) -> tf.Tensor:
  """ITU-R 601 luma, truncated to whole levels: float [H, W, 1]."""
  weights = tf.constant([0.2989, 0.587, 0.114])
  luma = tf.reduce_sum(tf.cast(image, tf.float32) * weights, -1,
                       keepdims=True)
  return tf.floor(luma)


def brightness(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
  """Levels scaled by 1 + magnitude (the blends' factor, as torchvision)."""
  return _blend(image, 0.0, 1 + magnitude)


def colour(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
  """Saturation; a grey image has none to change."""
  if image.shape[-1] == 1:
    return image
  return _blend(image, _grey(image), 1 + magnitude)


def contrast(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
  """Blended with the mean grey level."""
  grey = _grey(image) if image.shape[-1] == 3 else tf.cast(image, tf.float32)
  return _blend(image, tf.reduce_mean(grey), 1 + magnitude)


def sharpness(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
  """Blended with a smoothed copy (PIL's 3x3 SMOOTH kernel, the border
  kept)."""
  x = tf.cast(image, tf.float32)
  channels = image.shape[-1]
  kernel = tf.constant([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13
  kernel = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
  smooth = tf.round(tf.nn.depthwise_conv2d(x[None], kernel, [1, 1, 1, 1],
                                           "SAME")[0])
  rows = tf.range(tf.shape(image)[0])[:, None, None]
  cols = tf.range(tf.shape(image)[1])[None, :, None]
  inner = ((rows > 0) & (rows < tf.shape(image)[0] - 1)
           & (cols > 0) & (cols < tf.shape(image)[1] - 1))
  return _blend(image, tf.where(inner, smooth, x), 1 + magnitude)


def posterize(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
  """The lowest round(magnitude) bits cleared."""
  dropped = tf.cast(tf.round(magnitude), tf.int32)
  mask = tf.cast(256 - tf.bitwise.left_shift(1, dropped), tf.uint8)
  return tf.bitwise.bitwise_and(image, mask)


def solarize(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
  """Levels at or above 255 - magnitude inverted."""
  above = tf.cast(image, tf.float32) >= 255 - magnitude
  return tf.where(above, 255 - image, image)


def auto_contrast(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
  """Each channel stretched to 0..255 (left alone when flat)."""
  del magnitude
  x = tf.cast(image, tf.float32)
  low = tf.reduce_min(x, [0, 1])
  high = tf.reduce_max(x, [0, 1])
  flat = high == low
  scale = tf.where(flat, 1.0, 255 / tf.where(flat, 1.0, high - low))
  low = tf.where(flat, 0.0, low)
  return tf.cast(tf.clip_by_value((x - low) * scale, 0.0, 255.0), tf.uint8)


def equalize(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
  """Each channel's histogram equalised as PIL's ImageOps.equalize: with
  step = (pixels - the top level's count) // 255, level v maps to
  (step // 2 + pixels below v) // step; a channel with step 0 is kept."""
  del magnitude
  channels = image.shape[-1]
  levels = (tf.reshape(tf.cast(image, tf.int32), [-1, channels])
            + 256 * tf.range(channels))  # each channel its own 256 bins
  counts = tf.reshape(tf.math.bincount(levels, minlength=256 * channels,
                                       maxlength=256 * channels),
                      [channels, 256])
  top = tf.reduce_max(tf.where(counts > 0, tf.range(256), -1), 1)
  step = (tf.reduce_sum(counts, 1)
          - tf.gather(counts, top, batch_dims=1)) // 255
  below = tf.cumsum(counts, 1, exclusive=True)
  lut = tf.where(step[:, None] > 0,
                 (step[:, None] // 2 + below) // tf.maximum(step, 1)[:, None],
                 tf.range(256))
  lut = tf.cast(tf.minimum(lut, 255), tf.uint8)
  return tf.reshape(tf.gather(tf.reshape(lut, [-1]), levels),
                    tf.shape(image))


def _check(image: tf.Tensor) -> None:
  if image.shape.rank != 3 or image.shape[-1] not in (1, 3):
    raise ValueError(f"`image` must be [H, W, C] with a static C of 1 or 3; "
                     f"received shape {image.shape}.")


class Op(NamedTuple):
  """An op and its magnitude at the top bin (30) in each policy."""
  apply: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
  rand: float  # RandAugment (translations: a fraction of the side)
  trivial: float  # TrivialAugmentWide
  signed: bool  # negated with probability 1/2


# torchvision's tables: each magnitude is linspace(0, top, 31)[bin]
# (Posterize: bits dropped; Solarize: how far the threshold is below 255).
OPS = {
    "Identity": Op(identity, 0.0, 0.0, False),
    "ShearX": Op(shear_x, 0.3, 0.99, True),
    "ShearY": Op(shear_y, 0.3, 0.99, True),
    "TranslateX": Op(translate_x, 150 / 331, 32.0, True),
    "TranslateY": Op(translate_y, 150 / 331, 32.0, True),
    "Rotate": Op(rotate, 30.0, 135.0, True),
    "Brightness": Op(brightness, 0.9, 0.99, True),
    "Color": Op(colour, 0.9, 0.99, True),
    "Contrast": Op(contrast, 0.9, 0.99, True),
    "Sharpness": Op(sharpness, 0.9, 0.99, True),
    "Posterize": Op(posterize, 4.0, 6.0, False),
    "Solarize": Op(solarize, 255.0, 255.0, False),
    "AutoContrast": Op(auto_contrast, 0.0, 0.0, False),
    "Equalize": Op(equalize, 0.0, 0.0, False),
}


def draw_op(seed: tf.Tensor, top: tf.Tensor, magnitude_bin=None):
  """An op of OPS drawn uniformly and its magnitude: bin `magnitude_bin`
  (or a bin drawn uniformly) of its top magnitude in `top` [len(OPS)],
  negated with probability 1/2 when the op is signed.

  Returns:
    The op's index in OPS (int32) and its magnitude (float32).
  """
  draws = tf.random.stateless_uniform([3], seed=seed)
  index = tf.cast(draws[0] * len(OPS), tf.int32)
  if magnitude_bin is None:
    magnitude_bin = tf.floor(draws[1] * BINS)
  signed = tf.constant([op.signed for op in OPS.values()])
  magnitude = tf.gather(top, index) * tf.cast(magnitude_bin,
                                              tf.float32) / (BINS - 1)
  return index, tf.where(tf.gather(signed, index) & (draws[2] < 0.5),
                         -magnitude, magnitude)


def _random_op(image: tf.Tensor, seed: tf.Tensor, top: tf.Tensor,
               magnitude_bin=None) -> tf.Tensor:
  """`image` through the op `draw_op` draws."""
  index, magnitude = draw_op(seed, top, magnitude_bin)
  branches = [lambda apply=op.apply: apply(image, magnitude)
              for op in OPS.values()]
  out = tf.switch_case(index, branches)
  out.set_shape(image.shape)
  return out


def rand_augment(image: tf.Tensor, seed: tf.Tensor, num_ops: int = 2,
                 magnitude: int = 9) -> tf.Tensor:
  """RandAugment (Cubuk et al. 2019): `num_ops` ops drawn uniformly with
  replacement, each at magnitude bin `magnitude`.

  Args:
    image: uint8 [H, W, C], C 1 or 3.
    seed: [2] int seed of this image's draws.
    num_ops: Ops applied in turn (torchvision's N, default 2).
    magnitude: The bin, 0..30 (torchvision's M, default 9).

  Returns:
    uint8, the shape of `image`.

  Raises:
    ValueError: If `num_ops` is negative, `magnitude` not in 0..30 or the
      image's channels are not a static 1 or 3.
  """
  _check(image)
  if num_ops < 0:
    raise ValueError(f"`randaugment_ops` must be 0 or more; received "
                     f"randaugment_ops={num_ops}.")
  if not 0 <= magnitude < BINS:
    raise ValueError(f"`randaugment_magnitude` must be a bin of 0..{BINS - 1}"
                     f"; received randaugment_magnitude={magnitude}.")
  size = tf.cast(tf.shape(image)[:2], tf.float32)
  side = {"TranslateX": size[1], "TranslateY": size[0]}
  top = tf.stack([op.rand * side.get(name, 1.0)
                  for name, op in OPS.items()])
  for op_seed in tf.unstack(
      tf.random.experimental.stateless_split(seed, num_ops)):
    image = _random_op(image, op_seed, top, magnitude)
  return image


def trivial_augment(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """TrivialAugment, wide (Mueller and Hutter 2021): one op drawn uniformly
  at a magnitude bin drawn uniformly. Takes and returns uint8 [H, W, C],
  C a static 1 or 3."""
  _check(image)
  top = tf.constant([op.trivial for op in OPS.values()])
  return _random_op(image, seed, top)


_BRIGHTNESS, _SATURATION, _HUE, _CONTRAST = range(4)
# TF-slim's distort_color orderings 0 to 3.
_ORDERS = ((_BRIGHTNESS, _SATURATION, _HUE, _CONTRAST),
           (_SATURATION, _BRIGHTNESS, _CONTRAST, _HUE),
           (_CONTRAST, _HUE, _BRIGHTNESS, _SATURATION),
           (_HUE, _SATURATION, _CONTRAST, _BRIGHTNESS))


def distort_colour(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """Inception's photometric distortions (TF-slim's distort_color):
  brightness, saturation, hue and contrast, each drawn, in one of four
  orders drawn; on [0, 1] floats, clipped once at the end. A grey image
  takes brightness and contrast only. Takes and returns uint8 [H, W, C],
  C a static 1 or 3."""
  _check(image)
  order_seed, *seeds = tf.unstack(
      tf.random.experimental.stateless_split(seed, 5))
  distortions = {
      _BRIGHTNESS: lambda x: tf.image.stateless_random_brightness(
          x, 32 / 255, seeds[_BRIGHTNESS]),
      _SATURATION: lambda x: tf.image.stateless_random_saturation(
          x, 0.5, 1.5, seeds[_SATURATION]),
      _HUE: lambda x: tf.image.stateless_random_hue(x, 0.2, seeds[_HUE]),
      _CONTRAST: lambda x: tf.image.stateless_random_contrast(
          x, 0.5, 1.5, seeds[_CONTRAST]),
  }
  if image.shape[-1] == 1:
    del distortions[_SATURATION], distortions[_HUE]
  x = tf.cast(image, tf.float32) / 255

  def distort(order):
    y = x
    for kind in order:
      if kind in distortions:
        y = distortions[kind](y)
    return y

  order = tf.random.stateless_uniform([], order_seed, maxval=len(_ORDERS),
                                      dtype=tf.int32)
  y = tf.switch_case(order, [lambda o=o: distort(o) for o in _ORDERS])
  out = tf.cast(tf.round(tf.clip_by_value(y, 0.0, 1.0) * 255), tf.uint8)
  out.set_shape(image.shape)
  return out
