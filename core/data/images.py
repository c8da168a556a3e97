"""Encoded images (JPEG, PNG, GIF, BMP) to uint8 tensors, on the host.

Decoding never raises inside the input pipeline: `decoded_or_flagged` turns a
file that cannot be read or decoded into a zero image with `ok == False`, so
the pipeline can stop with one line naming the file, or skip it and count it
(--skip_bad_images), instead of dying with an op error that names nothing.
"""

import tensorflow as tf


def resize(image: tf.Tensor, height: int, width: int = 0) -> tf.Tensor:
  """A uint8 [H, W, C] image, or a batch [N, H, W, C], resized (bilinear,
  antialiased, rounded) to uint8 [..., height, width, C]; width defaults to
  height. The input pipeline and the serving signatures both use it, so a
  served image is brought to the training size as training brought it."""
  resized = tf.image.resize(tf.cast(image, tf.float32),
                            [height, width or height],
                            method="bilinear", antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def central_crop(image: tf.Tensor, fraction: float) -> tf.Tensor:
  """The central `fraction` of each side of an [H, W, C] image."""
  shape = tf.shape(image)
  height = tf.maximum(tf.cast(tf.cast(shape[0], tf.float32) * fraction,
                              tf.int32), 1)
  width = tf.maximum(tf.cast(tf.cast(shape[1], tf.float32) * fraction,
                             tf.int32), 1)
  top, left = (shape[0] - height) // 2, (shape[1] - width) // 2
  return tf.slice(image, [top, left, 0], [height, width, -1])


def decode(contents: tf.Tensor, channels: int) -> tf.Tensor:
  """uint8 [H, W, channels] from encoded bytes (raises on bad data)."""
  image = tf.io.decode_image(contents, channels=channels,
                             expand_animations=False, dtype=tf.uint8)
  image.set_shape([None, None, channels])
  return image


def decoded_or_flagged(load, key: tf.Tensor,
                       channels: int) -> tf.data.Dataset:
  """One element {"image": uint8 [H, W, C], "ok": bool} for the item `key`,
  never raising.

  `load(key)` returns the item's encoded bytes (reading a file or a record).
  It and the decode run in a one-element dataset whose errors are dropped;
  an item that failed yields the fallback instead: a 1x1 zero image and
  `ok == False`. Used inside an order-preserving `interleave`.
  """
  good = tf.data.Dataset.from_tensors(key).map(
      lambda k: {"image": decode(load(k), channels),
                 "ok": tf.constant(True)}).ignore_errors()
  bad = tf.data.Dataset.from_tensors(
      {"image": tf.zeros([1, 1, channels], tf.uint8),
       "ok": tf.constant(False)})
  return good.concatenate(bad).take(1)


def channels_of(contents) -> int:
  """Channels an encoded image (bytes or a string tensor) holds: 1 grey,
  3 colour, 4 with alpha. Raises on bad data."""
  return int(tf.io.decode_image(contents, expand_animations=False).shape[-1])
