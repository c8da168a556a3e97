"""Hostile image bytes through the decode path: truncated, bit-flipped,
random and empty files, JPEG and PNG, whole or through a crop window. Each
decodes to a valid image or is flagged (ok == False, a zero image, a
problem named): never an exception, never a crash of the pipeline. And the
header's pixel count, read without decoding, for every format we read."""

import struct

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


def decode(data: bytes, channels: int = 3, window=None, max_pixels=10 ** 6):
  (element,) = list(images.read_or_flagged(
      lambda x: (x, {}), tf.constant(data), channels, 8, window=window,
      max_pixels=max_pixels))
  return element


def _corner(height, width):
  return height // 3, width // 4, height // 2, width // 2


class ImagesFuzzTest(tf.test.TestCase):

  def test_valid_images_decode(self):
    for data in VALID.values():
      out = decode(data)
      self.assertTrue(bool(out["ok"]))
      self.assertEqual(out["problem"], b"")
      self.assertEqual(out["image"].shape, (8, 8, 3))
    self.assertAllEqual(decode(VALID["png"])["image"],
                        images.resize(tf.constant(_PICTURE), 8))
    self.assertEqual(decode(VALID["png"], 1)["image"].shape, (8, 8, 1))

  def test_a_window_is_the_crop_of_the_decoded_image(self):
    # PNG is lossless: the window is exactly the slice, resized.
    want = images.resize(tf.constant(_PICTURE[4:10, 4:12]), 8)
    self.assertAllEqual(decode(VALID["png"], window=_corner)["image"], want)
    # A JPEG decodes only its window (decode_and_crop_jpeg): within a few
    # levels of the full decode's slice (chroma upsampling at the edges).
    full = tf.io.decode_jpeg(VALID["jpeg"], channels=3)[4:10, 4:12]
    got = decode(VALID["jpeg"], window=_corner)["image"]
    gap = tf.abs(tf.cast(got, tf.int32) - tf.cast(images.resize(full, 8),
                                                  tf.int32))
    self.assertLess(int(tf.reduce_max(gap)), 40)
    self.assertLess(float(tf.reduce_mean(tf.cast(gap, tf.float32))), 4)

  def test_header_declares_the_shape_without_decoding(self):
    encoded = {"jpeg": VALID["jpeg"], "png": VALID["png"],
               "gif": _gif(13, 17), "bmp": _bmp(_PICTURE)}
    for name, data in encoded.items():
      self.assertAllEqual(images.header_shape(tf.constant(data)), [13, 17],
                          msg=name)
      self.assertAllEqual(images.decode(tf.constant(data), 3).shape[:2],
                          [13, 17], msg=name)
    self.assertAllEqual(images.header_shape(tf.constant(b"neither")),
                        [-1, -1])

  def test_more_pixels_than_allowed_is_flagged_undecoded(self):
    out = decode(VALID["jpeg"], max_pixels=13 * 17 - 1)
    self.assertFalse(bool(out["ok"]))
    self.assertFalse(out["image"].numpy().any())
    self.assertEqual(out["problem"].numpy().decode(),
                     "declares 17x13 pixels, more than "
                     f"--max_image_pixels={13 * 17 - 1}")
    self.assertTrue(bool(decode(VALID["jpeg"], max_pixels=13 * 17)["ok"]))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "more than the 100 this model accepts"):
      images.checked_decode(tf.constant(VALID["png"]), 3, 100)

  @settings(max_examples=60, deadline=None,
            suppress_health_check=[HealthCheck.too_slow])
  @given(mutated(), st.booleans())
  def test_mutated_bytes_decode_or_are_flagged(self, data, cropped):
    out = decode(data, window=_corner if cropped else None)
    image = out["image"].numpy()
    self.assertEqual(image.shape, (8, 8, 3))
    if bool(out["ok"]):
      self.assertEqual(out["problem"], b"")
    else:
      self.assertFalse(image.any())
      self.assertNotEqual(out["problem"], b"")

  def test_resize_and_crop_keep_the_channels(self):
    out = images.resize(tf.constant(_PICTURE), 8)
    self.assertEqual((out.shape, out.dtype), ((8, 8, 3), tf.uint8))
    crop = images.central_crop(tf.constant(_PICTURE), 0.5)
    self.assertEqual(crop.shape, (6, 8, 3))

  def test_resize_of_uint8_equals_the_float_copy(self):
    big = np.random.RandomState(1).randint(0, 256, [301, 405, 3])
    for side in (8, 224, 500):
      want = tf.image.resize(tf.constant(big, tf.float32), [side, side],
                             method="bilinear", antialias=True)
      want = tf.cast(tf.clip_by_value(tf.round(want), 0, 255), tf.uint8)
      self.assertAllEqual(images.resize(tf.constant(big, tf.uint8), side),
                          want)


def _bmp(pixels: np.ndarray) -> bytes:
  """An uncompressed 24-bit BMP (rows bottom-up, BGR, padded to 4 bytes)."""
  height, width, _ = pixels.shape
  row = (width * 3 + 3) // 4 * 4
  body = b"".join(pixels[r, :, ::-1].tobytes().ljust(row, b"\0")
                  for r in range(height - 1, -1, -1))
  info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(body),
                     2835, 2835, 0, 0)
  header = struct.pack("<2sIHHI", b"BM", 54 + len(body), 0, 0, 54)
  return header + info + body


def _gif(height: int, width: int) -> bytes:
  """A one-colour GIF89a (a 2-entry palette, one LZW-coded frame)."""
  pixels = height * width
  # LZW with 2-bit minimum code size: clear (4), then every pixel as code 0
  # (3-bit codes; no dictionary growth past the 8-entry limit is needed as
  # we emit a clear before it fills), then end (5).
  codes, bits = [], []
  codes.append((4, 3))
  emitted = 0
  for _ in range(pixels):
    codes.append((0, 3))
    emitted += 1
    if emitted == 2:  # two codes add two table entries: 6, 7 -> clear
      codes.append((4, 3))
      emitted = 0
  codes.append((5, 3))
  value, count = 0, 0
  for code, width_bits in codes:
    value |= code << count
    count += width_bits
  data = value.to_bytes((count + 7) // 8, "little")
  blocks = b"".join(bytes([len(data[i:i + 255])]) + data[i:i + 255]
                    for i in range(0, len(data), 255)) + b"\0"
  return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
          + b"\x00\x00\x00\xff\xff\xff"
          + b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
          + b"\x02" + blocks + b"\x3b")
