"""Hostile image bytes through the decode path: truncated, bit-flipped,
random and empty files, JPEG and PNG. Each decodes to a valid image or is
flagged (ok == False, a zero image): never an exception, never a crash of the
pipeline."""

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings, strategies as st

from core.data import images

_RNG = np.random.RandomState(0)
_PICTURE = _RNG.randint(0, 256, [13, 17, 3]).astype(np.uint8)
VALID = {"jpeg": tf.io.encode_jpeg(_PICTURE).numpy(),
         "png": tf.io.encode_png(_PICTURE).numpy()}


@st.composite
def mutated(draw):
  data = bytearray(VALID[draw(st.sampled_from(sorted(VALID)))])
  kind = draw(st.sampled_from(["flip", "truncate", "random", "empty",
                               "append", "splice"]))
  if kind == "flip":
    for _ in range(draw(st.integers(1, 8))):
      i = draw(st.integers(0, len(data) - 1))
      data[i] = draw(st.integers(0, 255))
  elif kind == "truncate":
    data = data[:draw(st.integers(0, len(data) - 1))]
  elif kind == "random":
    data = bytearray(draw(st.binary(min_size=1, max_size=300)))
  elif kind == "empty":
    data = bytearray()
  elif kind == "append":
    data += draw(st.binary(min_size=1, max_size=64))
  else:  # a PNG body behind a JPEG header, or the reverse
    other = VALID["png" if data[:2] == b"\xff\xd8" else "jpeg"]
    cut = draw(st.integers(2, 40))
    data = data[:cut] + other[cut:]
  return bytes(data)


def decode(data: bytes, channels: int = 3):
  (element,) = list(images.decoded_or_flagged(
      lambda x: x, tf.constant(data), channels))
  return element


class ImagesFuzzTest(tf.test.TestCase):

  def test_valid_images_decode(self):
    for data in VALID.values():
      out = decode(data)
      self.assertTrue(bool(out["ok"]))
      self.assertEqual(out["image"].shape, (13, 17, 3))
    self.assertAllEqual(decode(VALID["png"])["image"], _PICTURE)
    self.assertEqual(decode(VALID["png"], 1)["image"].shape, (13, 17, 1))

  @settings(max_examples=300, deadline=None,
            suppress_health_check=[HealthCheck.too_slow])
  @given(mutated())
  def test_mutated_bytes_decode_or_are_flagged(self, data):
    out = decode(data)
    image = out["image"].numpy()
    if bool(out["ok"]):
      self.assertEqual(image.ndim, 3)
      self.assertEqual(image.shape[-1], 3)
      self.assertGreater(image.size, 0)
    else:
      self.assertEqual(image.shape, (1, 1, 3))
      self.assertFalse(image.any())

  def test_resize_and_crop_keep_the_channels(self):
    out = images.resize(tf.constant(_PICTURE), 8)
    self.assertEqual((out.shape, out.dtype), ((8, 8, 3), tf.uint8))
    crop = images.central_crop(tf.constant(_PICTURE), 0.5)
    self.assertEqual(crop.shape, (6, 8, 3))
