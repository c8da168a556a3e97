"""Training augmentation: random crop, policies, horizontal flip, random
erasing.

Every draw is stateless and keyed on (the run's seed, the global step, the
example's index in the data set), so an example is augmented the same way
whichever replica or worker reads it, and a resumed run draws exactly what an
uninterrupted run would (exact resume holds with augmentation on).

- "crop": images that are small and all of one size (the IDX sets) are padded
  by an eighth of their side (4 pixels at 28x28; zeros), or by the padding
  given, and cropped back at a random offset, as the CIFAR and Fashion-MNIST
  recipes do. Images read from
  files get Inception's random-resized crop instead (Szegedy et al. 2015: 8 %
  to 100 % of the area, aspect ratio 3/4 to 4/3; `crop_window`), which the
  decoder applies (core/data/images.read_or_flagged) before the resize.
- "randaugment", "trivialaugment": RandAugment (N ops at magnitude bin M of
  0..30) or TrivialAugment (wide), torchvision's policies; "colour":
  Inception's photometric distortions (core/data/policies.py).
- "flip": a horizontal flip with probability 1/2.
- "erase": random erasing (Zhong et al. 2017) with probability 1/2: a
  rectangle of 2 % to 40 % of the area, aspect ratio 0.3 to 3.3, filled with
  uniform noise.
They apply in that order: crop, randaugment or trivialaugment, colour, flip,
erase. Evaluation never augments (core/data/pipeline.py uses the
deterministic path).
"""

import math
from typing import Sequence, Tuple

import tensorflow as tf

from core.data import policies
from core.data.choices import AUGMENTATIONS

_SALT = 0xA06  # separates these draws from dropout's, which use the same step
# Separates the policies' draws from crop's, flip's and erase's (`seeds`,
# left as they were, so those draw what they drew before policies came).
_POLICY_SALT = 0x9011C7


def check(ops: Sequence[str]) -> Tuple[str, ...]:
  """The augmentation list, validated.

  Raises:
    ValueError: If an entry is not one of AUGMENTATIONS or repeats.
  """
  ops = tuple(ops)
  unknown = [op for op in ops if op not in AUGMENTATIONS]
  if unknown or len(set(ops)) != len(ops):
    raise ValueError(f"`augment` must list distinct entries of "
                     f"{', '.join(AUGMENTATIONS)}; "
                     f"received augment={','.join(ops)!r}.")
  return ops


def example_seed(run_seed, step, index) -> tf.Tensor:
  """The [2] int64 seed of one example's draws at one step."""
  key = tf.stack([tf.cast(run_seed, tf.int64), tf.constant(_SALT, tf.int64)])
  key = tf.random.experimental.stateless_fold_in(key, tf.cast(step, tf.int64))
  return tf.random.experimental.stateless_fold_in(key,
                                                  tf.cast(index, tf.int64))


def pad_and_crop(image: tf.Tensor, seed: tf.Tensor,
                 padding: int = 0) -> tf.Tensor:
  """A same-size random crop of the image padded with zeros by `padding`
  pixels (0: side/8)."""
  height, width, channels = image.shape
  pad = padding or max(1, (height + 4) // 8)
  padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
  return tf.image.stateless_random_crop(padded, [height, width, channels],
                                        seed=seed)


def crop_window(height: tf.Tensor, width: tf.Tensor, seed: tf.Tensor):
  """Inception's crop of a height x width image (Szegedy et al. 2015: 8 %
  to 100 % of the area, aspect ratio 3/4 to 4/3), as int32 scalars (top,
  left, crop height, crop width). Needs only the shape, so a JPEG decodes
  only the crop (core/data/images.read_or_flagged)."""
  begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
      tf.stack([height, width, 1]), tf.zeros([1, 0, 4], tf.float32),
      seed=seed, min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3),
      area_range=(0.08, 1.0), max_attempts=10,
      use_image_if_no_bounding_boxes=True)
  return begin[0], begin[1], extent[0], extent[1]


def random_erase(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """With probability 1/2, noise over a random rectangle of the image."""
  draws = tf.random.stateless_uniform([5], seed=seed)
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  area = tf.cast(height * width, tf.float32) * (0.02 + 0.38 * draws[0])
  ratio = tf.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * draws[1])
  rows = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area * ratio)), tf.int32),
                          1, height)
  cols = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area / ratio)), tf.int32),
                          1, width)
  top = tf.cast(draws[2] * tf.cast(height - rows + 1, tf.float32), tf.int32)
  left = tf.cast(draws[3] * tf.cast(width - cols + 1, tf.float32), tf.int32)
  r = tf.range(height)[:, None, None]
  c = tf.range(width)[None, :, None]
  inside = (r >= top) & (r < top + rows) & (c >= left) & (c < left + cols)
  noise = tf.cast(tf.random.stateless_uniform(
      tf.shape(image), seed=seed + 1, maxval=256, dtype=tf.int32), tf.uint8)
  erased = tf.where(inside, noise, image)
  return tf.cond(draws[4] < 0.5, lambda: erased, lambda: image)


def seeds(seed: tf.Tensor):
  """The (crop, flip, erase) seeds of one example's draws."""
  return tf.unstack(tf.random.experimental.stateless_split(seed, 3))


def policy_seeds(seed: tf.Tensor):
  """The (randaugment or trivialaugment, colour) seeds of one example's
  draws, independent of `seeds`."""
  salted = tf.random.experimental.stateless_fold_in(seed, _POLICY_SALT)
  return tf.unstack(tf.random.experimental.stateless_split(salted, 2))


def augment(image: tf.Tensor, seed: tf.Tensor, ops: Sequence[str], *,
            padding: int = 0, cropped: bool = False, randaugment_ops: int = 2,
            randaugment_magnitude: int = 9) -> tf.Tensor:
  """Applies `ops` in the order crop, randaugment or trivialaugment, colour,
  flip, erase.

  Args:
    image: uint8 [H, W, C], C 1 or 3 (static); static H, W for the
      pad-and-crop of small sets.
    seed: This example's seed (`example_seed`).
    ops: Entries of AUGMENTATIONS.
    padding: Pixels pad-and-crop pads by (0: an eighth of the side).
    cropped: The image is a file's, already cropped (Inception's crop,
      `crop_window` with this seed's crop draw) and resized while it was
      decoded (core/data/images.read_or_flagged): the rest remains.
    randaugment_ops: RandAugment's N, ops per image.
    randaugment_magnitude: RandAugment's M, a magnitude bin of 0..30.

  Returns:
    uint8, the shape of `image`.
  """
  crop, flip, erase = seeds(seed)
  if "crop" in ops and not cropped:
    image = pad_and_crop(image, crop, padding)
  if {"randaugment", "trivialaugment", "colour"} & set(ops):
    policy, colour = policy_seeds(seed)
    if "randaugment" in ops:
      image = policies.rand_augment(image, policy, randaugment_ops,
                                    randaugment_magnitude)
    if "trivialaugment" in ops:
      image = policies.trivial_augment(image, policy)
    if "colour" in ops:
      image = policies.distort_colour(image, colour)
  if "flip" in ops:
    image = tf.image.stateless_random_flip_left_right(image, flip)
  if "erase" in ops:
    image = random_erase(image, erase)
  return image
