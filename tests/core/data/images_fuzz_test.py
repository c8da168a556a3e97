"""Hostile image bytes through the decode path: truncated, bit-flipped,
random and empty files, JPEG and PNG, whole or through a crop window. Each
decodes to a valid image or is flagged (ok == False, a zero image, a
problem named): never an exception, never a crash of the pipeline. And the
header's shape, read without decoding, for every format decode_image reads:
the pixel bombs each hides (a GIF frame larger than its screen, a 36-byte
WebP of 16383 x 16383), and what cannot be sized, are refused undecoded."""

import struct

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings, strategies as st

from core.data import headers
from core.data import images
from tests.core.data import image_bytes as made

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
    for name, data in _every_format().items():
      channels = 4 if name == "webp alpha" else 3
      self.assertAllEqual(headers.header_shape(tf.constant(data)),
                          [13, 17, channels], msg=name)
      self.assertAllEqual(images.decode(tf.constant(data), 3).shape,
                          [13, 17, 3], msg=name)
      self.assertTrue(bool(decode(data, max_pixels=13 * 17)["ok"]), name)
    self.assertAllEqual(
        headers.header_shape(tf.constant(made.vp8l(16383, 16383))),
        [16383, 16383, 3])

  def test_every_format_decodes_to_one_channel(self):
    # TF refuses channels=1 for GIF, BMP and WebP (review #14): they are
    # decoded as stored and made grey as tf.image.rgb_to_grayscale does.
    for name, data in _every_format().items():
      grey = images.decode(tf.constant(data), 1)
      self.assertEqual(grey.shape, (13, 17, 1), msg=name)
      if name not in ("jpeg", "png"):  # these TF converts itself
        self.assertAllEqual(grey, tf.image.rgb_to_grayscale(
            images.decode(tf.constant(data), 3)), msg=name)
      self.assertTrue(bool(decode(data, channels=1)["ok"]), name)

  def test_pixel_bombs_are_refused_undecoded(self):
    # What the header declares, what TF would decode to, all above 100 px.
    vp8, vp8x = bytearray(made.WEBP_LOSSY), bytearray(made.WEBP_ALPHA)
    vp8[26:30] = struct.pack("<HH", 3000, 3000)        # VP8 frame size
    vp8x[24:30] = (2999).to_bytes(3, "little") * 2    # VP8X canvas - 1
    bombs = {
        # TF decodes a GIF to its largest frame, whatever its screen says.
        "gif frame past its 1x1 screen": (made.gif((60, 50), screen=(1, 1)),
                                          [60, 50]),
        "gif frames 1x60 and 60x1": (
            made.gif((1, 60), (60, 1), screen=(1, 1)), [60, 60]),
        "webp lossless": (made.vp8l(300, 200), [200, 300]),
        "webp lossy": (bytes(vp8), [3000, 3000]),
        "webp extended": (bytes(vp8x), [3000, 3000]),
    }
    for name, (data, shape) in bombs.items():
      self.assertAllEqual(headers.header_shape(tf.constant(data))[:2], shape,
                          msg=name)
      out = decode(data, max_pixels=100)
      self.assertFalse(bool(out["ok"]), name)
      self.assertEqual(out["problem"].numpy().decode(),
                       f"declares {shape[1]}x{shape[0]} pixels, more than "
                       "--max_image_pixels=100", msg=name)
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                  "more than the 100 this model accepts"):
        images.checked_decode(tf.constant(data), 3, 100)
    # The review's 36-byte file, past the default limit.
    self.assertEqual(decode(made.vp8l(16383, 16383),
                            max_pixels=images.DEFAULT_MAX_PIXELS)["problem"],
                     b"declares 16383x16383 pixels, more than "
                     b"--max_image_pixels=50000000")

  def test_what_cannot_be_sized_is_refused_undecoded(self):
    png, bmp = VALID["png"], bytearray(made.bmp(_PICTURE))
    bmp[18:22] = struct.pack("<i", -17)
    unsized = {"another format": b"neither", "png cut short": png[:20],
               "gif without its trailer": made.gif((13, 17))[:-1],
               "webp of an unknown chunk": made.WEBP_LOSSY[:12] + b"VP8Z"
                                           + made.WEBP_LOSSY[16:],
               "bmp of a negative width": bytes(bmp), "empty": b""}
    for name, data in unsized.items():
      self.assertAllEqual(headers.header_shape(tf.constant(data)),
                          [-1, -1, -1], msg=name)
      out = decode(data)
      self.assertFalse(bool(out["ok"]), name)
      self.assertEqual(out["problem"].numpy().decode(), images.UNREADABLE)
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                  "header cannot be sized"):
        images.checked_decode(tf.constant(data), 3)

  def test_a_request_is_bounded_in_all(self):
    request = tf.constant([VALID["png"]] * images.REQUEST_IMAGES)
    out = images.decode_request(request, 3, 8, 8, max_pixels=13 * 17)
    self.assertEqual(out.shape, (images.REQUEST_IMAGES, 8, 8, 3))
    with self.assertRaisesRegex(
        tf.errors.InvalidArgumentError,
        rf"the images of this request declare {5 * 13 * 17} pixels in all, "
        rf"more than the {4 * 13 * 17} \(4 x {13 * 17}\) this model accepts "
        "per request; send fewer or smaller images"):
      images.decode_request(tf.concat([request, request[:1]], 0), 3, 8, 8,
                            max_pixels=13 * 17)

  def test_channels_are_read_from_the_header_alone(self):
    # IHDR chunks of 20000 x 20000 with no pixels: decoding would fail.
    def png(colour_type):
      ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, colour_type, 0, 0, 0)
      return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
              + ihdr + b"\0" * 4)
    self.assertEqual([headers.channels_of(png(t)) for t in (0, 2, 4, 6)],
                     [1, 3, 2, 4])
    self.assertEqual(headers.channels_of(made.gif((13, 17))), 3)
    self.assertEqual(headers.channels_of(made.WEBP_ALPHA), 4)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "cannot be sized"):
      headers.channels_of(b"neither")

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


def _every_format() -> dict:
  """17 x 13 images in each format decode_image reads."""
  return {"jpeg": VALID["jpeg"], "png": VALID["png"],
          "gif": made.gif((13, 17)), "bmp": made.bmp(_PICTURE),
          "webp lossless": made.vp8l(17, 13), "webp lossy": made.WEBP_LOSSY,
          "webp alpha": made.WEBP_ALPHA}
