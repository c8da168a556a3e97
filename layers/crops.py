"""Test-time views of a batch (the mirror image, 10 crops, the paper's 144)
and the mean of their class probabilities.

Szegedy et al. 2014, sec. 7: the image is resized to 4 scales whose shorter
side is 256, 288, 320 and 352; each gives its left, centre and right squares
(top, centre and bottom for a portrait image); each square its 4 corner and
its centre 224x224 crops and itself resized to 224; and each of those is
seen as it is and mirrored: 4 x 3 x 6 x 2 = 144 views. "10" is AlexNet's:
the 4 corners and the centre of the 256 scale's centre square, and their
mirror images. Every side scales with the model's image size (256 becomes
size * 256 / 224).

A crop is one box of tf.image.crop_and_resize over the image as it came:
bilinear with the corners aligned, which samples the points that resizing
the image to the scale (corners aligned) and slicing the crop would, without
building the scaled image; the square resized to the model's size is one
more box.
"""

from typing import Callable, List, Optional

import numpy as np
import tensorflow as tf

# TEST_CROPS is what classify's `crops` takes (the config's --test_crops).
from layers.choices import TEST_CROPS

# Views of each image per mode: "mirror" is "1" with --test_mirror.
VIEWS = {"1": 1, "mirror": 2, "10": 10, "144": 144}
PAPER_SIZE = 224  # the crop side the scales below are given for
TEN_CROP_SCALE = 256
PAPER_SCALES = (256, 288, 320, 352)


def mode(crops: str, mirror: bool) -> str:
  """The views `crops` (one of TEST_CROPS) and `mirror` ask for: a key of
  VIEWS ("10" and "144" hold their mirror images already).

  Raises:
    ValueError: If `crops` is not one of TEST_CROPS.
  """
  if crops not in TEST_CROPS:
    raise ValueError(f"`crops` must be one of {', '.join(TEST_CROPS)}; "
                     f"received crops={crops!r}.")
  return "mirror" if crops == "1" and mirror else crops


def boxes(crops: str, height: int, width: int, size: int) -> np.ndarray:
  """The crop boxes of "10" or "144" for a `height` x `width` image.

  Returns:
    float32 [B, 4]: (y1, x1, y2, x2) as tf.image.crop_and_resize takes them
    (0 and 1 are the first and last pixel's centres), in view order: by
    scale, then square, then the crops top-left, top-right, bottom-left,
    bottom-right, centre (and for "144" the whole square). Each box is two
    views: its crop, then that crop mirrored.
  """
  scales = (TEN_CROP_SCALE,) if crops == "10" else PAPER_SCALES
  table = []
  for paper_scale in scales:
    short = round(size * paper_scale / PAPER_SIZE)
    rows, cols = ((short, round(width * short / height)) if height <= width
                  else (round(height * short / width), short))
    long_side = max(rows, cols)
    offsets = ((long_side - short) // 2,) if crops == "10" else (
        0, (long_side - short) // 2, long_side - short)
    far, mid = short - size, (short - size) // 2
    inside = [(0, 0, size), (0, far, size), (far, 0, size),
              (far, far, size), (mid, mid, size)]
    if crops == "144":
      inside.append((0, 0, short))
    for offset in offsets:
      top, left = (0, offset) if rows <= cols else (offset, 0)
      table += [((top + y) / (rows - 1), (left + x) / (cols - 1),
                 (top + y + side - 1) / (rows - 1),
                 (left + x + side - 1) / (cols - 1))
                for y, x, side in inside]
  return np.array(table, np.float32)


def views(images: tf.Tensor, crops: str, size: int) -> tf.Tensor:
  """Every view of every image, view-major.

  Args:
    images: float [N, H, W, C]; H and W static, and `size` for "1" and
      "mirror" (which neither crop nor resize).
    crops: A key of VIEWS.
    size: The side of a crop (the model's image size).

  Returns:
    [VIEWS[crops] * N, size, size, C] of the images' dtype; row v * N + n is
    view v of image n.
  """
  if crops == "1":
    return images
  if crops == "mirror":
    return _with_mirrors(images[None])
  return _box_views(images, boxes(crops, *_sides(images, crops), size), size)


def _sides(images: tf.Tensor, crops: str) -> List[int]:
  """The static height and width of `images` (the boxes are numbers)."""
  sides = images.shape[1:3].as_list()
  if None in sides:
    raise ValueError(f"`images` must have a static height and width for "
                     f"crops={crops!r}; received shape "
                     f"{images.shape.as_list()}.")
  return sides


def _box_views(images: tf.Tensor, table, size: int) -> tf.Tensor:
  """The crops of every image in every box of `table` [B, 4], each then
  mirrored: [2 * B * N, size, size, C], view-major."""
  n, count = tf.shape(images)[0], tf.shape(table)[0]
  crops = tf.image.crop_and_resize(
      tf.cast(images, tf.float32), tf.repeat(table, n, axis=0),
      tf.tile(tf.range(n), [count]), [size, size])  # box-major
  crops = tf.reshape(crops, [count, n, size, size, images.shape[-1]])
  return _with_mirrors(tf.cast(crops, images.dtype))


def _with_mirrors(x: tf.Tensor) -> tf.Tensor:
  """[B, N, H, W, C] -> [2 * B * N, H, W, C]: each group's images, then
  their left-right mirror images."""
  both = tf.stack([x, tf.reverse(x, axis=[3])], axis=1)
  return tf.reshape(both, [-1] + x.shape[2:].as_list())


def mean_probability(log_p: tf.Tensor, count: int,
                     log_weights: Optional[np.ndarray] = None) -> tf.Tensor:
  """The log of each image's mean probability over its `count` views.

  Args:
    log_p: float32 [V * N, classes] log-probabilities, view-major.
    count: Views per image the mean is over.
    log_weights: [V] the log of how many of the `count` views each row
      block stands for (distinct views computed once); None: V = count,
      each once.

  Returns:
    float32 [N, classes].
  """
  blocks = count if log_weights is None else len(log_weights)
  per_view = tf.reshape(log_p, [blocks, -1, log_p.shape[-1]])
  if log_weights is not None:
    per_view += tf.constant(log_weights, tf.float32)[:, None, None]
  return tf.reduce_logsumexp(per_view, axis=0) - tf.math.log(float(count))


def classify(logits_of: Callable[[tf.Tensor], tf.Tensor], images: tf.Tensor,
             crops: str, size: int) -> tf.Tensor:
  """The network's answer over the views `crops` of each image.

  Args:
    logits_of: The network: [M, size, size, C] -> logits [M, classes].
    images: As `views` takes them.
    crops: A key of VIEWS.
    size: The network's image side.

  Returns:
    [N, classes]: the logits for "1"; otherwise the log of the mean
    probability over the views, float32.
  """
  if crops == "1":
    return logits_of(images)
  log_p = lambda x: tf.nn.log_softmax(tf.cast(logits_of(x), tf.float32))
  if crops == "mirror":
    return mean_probability(log_p(views(images, crops, size)), 2)
  # Each distinct box once, weighted by how often the protocol takes it: on
  # a square image (what the pipeline delivers) the three squares of a
  # scale coincide and the whole square recurs at every scale, so "144"
  # has 21 distinct boxes (42 views to compute), "10" all 5 (10 views).
  table, counts = np.unique(boxes(crops, *_sides(images, crops), size),
                            axis=0, return_counts=True)
  # One box at a time, its crop and mirror image of every image (2N, the
  # batch --test_mirror runs), in order: 144 views of a batch of 64 at 224
  # would be 9,216 images (5.5 GB) at once.
  per_box = tf.map_fn(lambda box: log_p(_box_views(images, box[None], size)),
                      tf.constant(table), fn_output_signature=tf.float32,
                      parallel_iterations=1)  # [B, 2N, classes]
  # [B, 2N, classes] -> [2B * N, classes]: each box's crop and mirror views.
  return mean_probability(tf.reshape(per_box, [-1, per_box.shape[-1]]),
                          VIEWS[crops], np.repeat(np.log(counts), 2))
