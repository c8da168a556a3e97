"""Encoded images (JPEG, PNG, GIF, BMP) to uint8 tensors, on the host.

Reading never raises inside the input pipeline: `read_or_flagged` turns an
item that cannot be read, parsed or decoded, or whose header declares more
than `max_pixels` pixels, into a zero image with `ok == False` and a
`problem` naming why, so the pipeline can stop with one line naming the file,
or skip it and count it (--skip_bad_images), instead of dying with an op error
that names nothing (or with the memory a 100-megapixel upload takes).

The bytes in flight per image are bounded: the pixel count is read from the
header before anything is decoded; a JPEG decodes only the window it is
cropped to (`decode_and_crop_jpeg`, as TF-slim's and Model Garden's Inception
pipelines do); the resize reads the uint8 pixels directly (no float32 copy of
the full image: 144 MB for a 12-megapixel photo).
"""

import tensorflow as tf


def resize(image: tf.Tensor, height: int, width: int = 0) -> tf.Tensor:
  """A uint8 [H, W, C] image, or a batch [N, H, W, C], resized (bilinear,
  antialiased, rounded) to uint8 [..., height, width, C]; width defaults to
  height. The input pipeline and the serving signatures both use it, so a
  served image is brought to the training size as training brought it."""
  # uint8 in: the kernel reads the pixels as they are (the same result as
  # a float32 copy, without the copy).
  resized = tf.image.resize(image, [height, width or height],
                            method="bilinear", antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def central_window(fraction: float):
  """The window function (core/data/images.read_or_flagged) of the central
  `fraction` of each side."""
  def window(height, width):
    crop_height = tf.maximum(tf.cast(tf.cast(height, tf.float32) * fraction,
                                     tf.int32), 1)
    crop_width = tf.maximum(tf.cast(tf.cast(width, tf.float32) * fraction,
                                    tf.int32), 1)
    return ((height - crop_height) // 2, (width - crop_width) // 2,
            crop_height, crop_width)
  return window


def central_crop(image: tf.Tensor, fraction: float) -> tf.Tensor:
  """The central `fraction` of each side of an [H, W, C] image."""
  shape = tf.shape(image)
  top, left, height, width = central_window(fraction)(shape[0], shape[1])
  return tf.slice(image, [top, left, 0], [height, width, -1])


def decode(contents: tf.Tensor, channels: int) -> tf.Tensor:
  """uint8 [H, W, channels] from encoded bytes (raises on bad data)."""
  image = tf.io.decode_image(contents, channels=channels,
                             expand_animations=False, dtype=tf.uint8)
  image.set_shape([None, None, channels])
  return image


DEFAULT_MAX_PIXELS = 50_000_000  # above 48-megapixel phone photos
UNREADABLE = "cannot be read or decoded as an image"


def _number(contents: tf.Tensor, offset: int, length: int,
            big_endian: bool) -> tf.Tensor:
  """The unsigned integer of `length` bytes at `offset` (raises when the
  bytes are not there)."""
  raw = tf.cast(tf.io.decode_raw(tf.strings.substr(contents, offset, length),
                                 tf.uint8), tf.int64)
  raw = tf.reshape(raw, [length])
  weights = [256 ** i for i in range(length)]
  if big_endian:
    weights.reverse()
  return tf.reduce_sum(raw * tf.constant(weights, tf.int64))


def header_shape(contents: tf.Tensor) -> tf.Tensor:
  """int64 [height, width] as the image's header declares it, read without
  decoding (JPEG, PNG, GIF, BMP); [-1, -1] for another format. Raises on a
  header that is cut short or not a JPEG's."""
  magic = tf.strings.substr(contents, 0, 4)
  branches = [
      (tf.io.is_jpeg(contents),
       lambda: tf.cast(tf.io.extract_jpeg_shape(contents)[:2], tf.int64)),
      (tf.equal(magic, b"\x89PNG"),
       lambda: tf.stack([_number(contents, 20, 4, True),
                         _number(contents, 16, 4, True)])),
      (tf.equal(tf.strings.substr(contents, 0, 3), b"GIF"),
       lambda: tf.stack([_number(contents, 8, 2, False),
                         _number(contents, 6, 2, False)])),
      (tf.equal(tf.strings.substr(contents, 0, 2), b"BM"),
       lambda: tf.stack([tf.abs(_signed32(_number(contents, 22, 4, False))),
                         _number(contents, 18, 4, False)])),
  ]
  return tf.case(branches, default=lambda: tf.constant([-1, -1], tf.int64))


def _signed32(value: tf.Tensor) -> tf.Tensor:
  return tf.where(value >= 2 ** 31, value - 2 ** 32, value)


def read_or_flagged(load, key: tf.Tensor, channels: int, size: int, *,
                    window=None, max_pixels: int = DEFAULT_MAX_PIXELS,
                    unreadable: str = UNREADABLE) -> tf.data.Dataset:
  """One element {"image": uint8 [size, size, C], "ok": bool, "problem":
  string ("" when ok), "extra": what `load` returned beside the bytes} for
  the item `key`, never raising.

  Args:
    load: key -> (encoded bytes, extra): reads a file or parses a record;
      `extra` (a dict of tensors, e.g. the record's label) comes back as
      it is. Only ok elements carry it; others carry `extra_default`.
    key: What `load` takes.
    channels: Channels to decode to.
    size: The side the image (or its window) is resized to.
    window: (height, width) -> (top, left, window height, window width),
      int32 scalars: the part of the image to keep (a crop), or None for
      all of it. Its draws must depend on the shape only, which the header
      gives before decoding.
    max_pixels: Images whose header declares more pixels are flagged (not
      decoded).
    unreadable: The problem named when reading or decoding fails.

  It and the decode run in a one-element dataset whose errors are dropped;
  an item that failed yields a zero image and `ok == False` instead. Used
  inside an order-preserving `interleave`.
  """
  def read(k):
    contents, extra = load(k)
    declared = header_shape(contents)
    pixels = declared[0] * declared[1]
    too_large = pixels > max_pixels

    def image():
      if window is None:
        return resize(decode(contents, channels), size)

      def cropped_jpeg():
        top, left, height, width = window(
            tf.cast(declared[0], tf.int32), tf.cast(declared[1], tf.int32))
        cropped = tf.io.decode_and_crop_jpeg(
            contents, tf.stack([top, left, height, width]),
            channels=channels)
        return tf.ensure_shape(cropped, [None, None, channels])

      def cropped_other():
        full = decode(contents, channels)
        shape = tf.shape(full)
        top, left, height, width = window(shape[0], shape[1])
        return tf.slice(full, [top, left, 0], [height, width, -1])

      return resize(tf.cond(tf.io.is_jpeg(contents), cropped_jpeg,
                            cropped_other), size)

    problem = tf.strings.join([
        "declares ", tf.strings.as_string(declared[1]), "x",
        tf.strings.as_string(declared[0]), " pixels, more than "
        f"--max_image_pixels={max_pixels}"])
    return {"image": tf.cond(too_large,
                             lambda: tf.zeros([size, size, channels],
                                              tf.uint8), image),
            "ok": tf.logical_not(too_large),
            "problem": tf.where(too_large, problem, ""), "extra": extra}

  good = tf.data.Dataset.from_tensors(key).map(read).ignore_errors()
  extra_spec = good.element_spec["extra"]
  bad = tf.data.Dataset.from_tensors(
      {"image": tf.zeros([size, size, channels], tf.uint8),
       "ok": tf.constant(False), "problem": tf.constant(unreadable),
       "extra": tf.nest.map_structure(
           lambda spec: tf.zeros(spec.shape, spec.dtype)
           if spec.dtype != tf.string else tf.constant(""), extra_spec)})
  return good.concatenate(bad).take(1)


def checked_decode(contents: tf.Tensor, channels: int,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> tf.Tensor:
  """`decode`, after the header's pixel count is checked (serving: an
  oversized upload is an InvalidArgumentError, not memory)."""
  declared = header_shape(contents)
  with tf.control_dependencies([tf.debugging.Assert(
      declared[0] * declared[1] <= max_pixels,
      ["image declares", declared[1], "x", declared[0],
       f"pixels, more than the {max_pixels} this model accepts"])]):
    return decode(contents, channels)


def channels_of(contents) -> int:
  """Channels an encoded image (bytes or a string tensor) holds: 1 grey,
  3 colour, 4 with alpha; a JPEG's from its header alone. Raises on bad
  data."""
  contents = tf.convert_to_tensor(contents)
  if bool(tf.io.is_jpeg(contents)):
    return int(tf.io.extract_jpeg_shape(contents)[2])
  return int(tf.io.decode_image(contents, expand_animations=False).shape[-1])
