"""Image preprocessing shared by training, evaluation and serving.

It runs where the model runs (inside the step or the serving signature), so
the input pipeline moves compact uint8 images and the device does the maths.
"""

from typing import Optional

import tensorflow as tf


def preprocess(images: tf.Tensor, *, image_size: Optional[int], channels: int,
               dtype: tf.DType = tf.float32) -> tf.Tensor:
  """Maps uint8 images [N, H, W, C] to the model's float input.

  Scales pixels to [-1, 1], resizes bilinearly to `image_size` when it
  differs from H and W, and repeats a single channel to `channels`.

  Args:
    images: uint8 tensor [N, H, W, C].
    image_size: Side of the model's square input; None: the images' own
      size (multi-crop testing takes its crops from them, layers/crops.py).
    channels: Channels the model expects (C, or any number when C == 1).
    dtype: Compute dtype of the model (float16/bfloat16 for mixed precision).

  Returns:
    Tensor [N, image_size, image_size, channels] of `dtype` (N, H, W,
    channels without an image_size).

  Raises:
    ValueError: If the channels cannot be matched.
  """
  source = images.shape[-1]
  if source != channels and source != 1:
    raise ValueError(
        f"`images` must have 1 or {channels} channels; received {source}.")
  x = tf.cast(images, tf.float32) * (2.0 / 255.0) - 1.0
  if image_size is not None and (images.shape[1] != image_size
                                 or images.shape[2] != image_size):
    x = tf.image.resize(x, [image_size, image_size], method="bilinear")
  if source != channels:
    x = tf.repeat(x, channels, axis=-1)
  return tf.cast(x, dtype)
