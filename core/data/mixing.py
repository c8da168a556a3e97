"""Mixup and CutMix of a training batch, on the device, replica-invariant.

Mixup (Zhang et al. 2018) blends an image with a partner's,
x' = lam x + (1 - lam) x_partner; CutMix (Yun et al. 2019) pastes a box of
the partner's image, lam then being the share of the image left. Either way
the target is mixed by the same lam: the loss is lam CE(y) + (1 - lam)
CE(y_partner) (core/optim/losses.py), which is the cross-entropy with the
mixed (and smoothed) target, since it is linear in the target.

What makes it exact: every draw (each example's lam from Beta(alpha, alpha),
mixup or CutMix, the box) is stateless and keyed on the step's seed and the
example's row in the *global* batch, drawn for all rows and sliced to the
replica's (as dropout's masks are), and partners pair up inside fixed groups
of `group_size` consecutive rows of the global batch (the i-th with the
(g-1-i)-th, timm's "pair" flip), the groups `--norm_group_size` also makes
for batch normalisation. So neither a draw nor a partner depends on the
number of replicas or workers, or on the micro-batches of gradient
accumulation, as long as the group size divides a replica's micro-batch; a
resumed run draws what an uninterrupted one would (the seed is the step's).
An example whose partner is a skipped image (weight 0) is left unmixed.
"""

import dataclasses
from typing import NamedTuple

import tensorflow as tf

_SALT = 0x41C5  # separates these draws from dropout's, which share the seed


@dataclasses.dataclass(frozen=True)
class Mixing:
  """What to mix with.

  Attributes:
    mixup_alpha: Beta(alpha, alpha) of mixup's lam; 0: no mixup.
    cutmix_alpha: Beta(alpha, alpha) of CutMix's lam; 0: no CutMix.
    switch_prob: With both on, each example's chance of CutMix.
    group_size: Rows per partner group of the global batch.
  """
  mixup_alpha: float = 0.0
  cutmix_alpha: float = 0.0
  switch_prob: float = 0.5
  group_size: int = 32

  def __bool__(self) -> bool:
    return bool(self.mixup_alpha or self.cutmix_alpha)


class Mixed(NamedTuple):
  """A mixed batch: its images, each example's partner label and the share
  `lam` [N] float32 of its own label in the target."""
  images: tf.Tensor
  partner_labels: tf.Tensor
  lam: tf.Tensor


def partners(rows, group_size: int) -> tf.Tensor:
  """Each row's partner in groups of `group_size` consecutive rows: the
  group reversed, which pairs every row with another (the size is even).
  `rows` may be a tensor (a batch whose size the graph does not know; the
  assembler has checked that the groups divide it).

  Raises:
    ValueError: If `group_size` is odd (a middle row would be its own
      partner) or does not divide a known `rows`.
  """
  if group_size % 2 or (isinstance(rows, int) and rows % group_size):
    raise ValueError(f"`group_size` must be even and divide the rows mixed "
                     f"({rows}); received group_size={group_size}.")
  return tf.reshape(tf.reverse(tf.reshape(tf.range(rows), [-1, group_size]),
                               axis=[1]), [-1])


def mix(images: tf.Tensor, labels: tf.Tensor, weight: tf.Tensor,
        mixing: Mixing, seed: tf.Tensor, row_offset, total_rows) -> Mixed:
  """Mixes a replica's (micro-)batch.

  Args:
    images: [N, H, W, C] float images (the model's input).
    labels: int labels [N].
    weight: [N]; 0 marks a skipped image, which is nobody's partner.
    mixing: What to mix with (truthy).
    seed: The step's [2] stateless seed.
    row_offset: The first row's index in the global batch.
    total_rows: Rows in the global batch.

  Returns:
    Mixed.
  """
  # A file pipeline's batches have no static size; the sides are static.
  rows = images.shape[0] or tf.shape(images)[0]
  height, width = images.shape[1], images.shape[2]
  seed = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64),
                                                  _SALT)
  keys = tf.random.experimental.stateless_split(seed, 5)

  def mine(draw):  # this replica's rows of a draw for every row (last axis)
    return draw[..., row_offset:row_offset + rows]

  def beta(alpha, key_a, key_b):
    if not alpha:
      return tf.ones([rows])
    a = tf.random.stateless_gamma([total_rows], key_a, alpha=alpha)
    b = tf.random.stateless_gamma([total_rows], key_b, alpha=alpha)
    return mine(a / tf.maximum(a + b, 1e-30))

  pair = partners(rows, mixing.group_size)
  other = tf.gather(images, pair)
  blend = beta(mixing.mixup_alpha, keys[0], keys[1])
  uniform = mine(tf.random.stateless_uniform([3, total_rows], keys[2]))
  if mixing.mixup_alpha and mixing.cutmix_alpha:
    use_cut = uniform[0] < mixing.switch_prob
  else:
    use_cut = tf.fill([rows], bool(mixing.cutmix_alpha))
  inside, kept = _boxes(beta(mixing.cutmix_alpha, keys[3], keys[4]),
                        uniform[1], uniform[2], height, width)
  # Blended in float32 by the lam the target gets (in bfloat16 a rounded
  # lam would mix the pixels by another share than the labels).
  mixed_up = tf.cast(
      tf.cast(images, tf.float32) * blend[:, None, None, None]
      + tf.cast(other, tf.float32) * (1 - blend)[:, None, None, None],
      images.dtype)
  cut = tf.where(inside[..., None], other, images)
  lam = tf.where(use_cut, kept, blend)
  out = tf.where(use_cut[:, None, None, None], cut, mixed_up)
  real = tf.gather(weight, pair) > 0
  return Mixed(tf.where(real[:, None, None, None], out, images),
               tf.gather(labels, pair), tf.where(real, lam, 1.0))


def _boxes(lam, centre_y, centre_x, height: int, width: int):
  """CutMix's boxes: each of side sqrt(1 - lam) times the image's, centred
  at the uniform draws, clipped to the image (timm's rand_bbox). Returns
  the [N, H, W] mask of the pasted pixels and the share kept, 1 - area."""
  ratio = tf.sqrt(1.0 - lam)
  half_h = tf.floor(height * ratio) // 2
  half_w = tf.floor(width * ratio) // 2
  cy, cx = tf.floor(centre_y * height), tf.floor(centre_x * width)
  y0, y1 = (tf.clip_by_value(cy - half_h, 0, height),
            tf.clip_by_value(cy + half_h, 0, height))
  x0, x1 = (tf.clip_by_value(cx - half_w, 0, width),
            tf.clip_by_value(cx + half_w, 0, width))
  ys = tf.range(height, dtype=tf.float32)[None, :, None]
  xs = tf.range(width, dtype=tf.float32)[None, None, :]
  inside = ((ys >= y0[:, None, None]) & (ys < y1[:, None, None])
            & (xs >= x0[:, None, None]) & (xs < x1[:, None, None]))
  kept = 1.0 - (y1 - y0) * (x1 - x0) / float(height * width)
  return inside, kept
