"""Encoded images (JPEG, PNG, GIF, BMP, WebP) to uint8 tensors, on the host.

Reading never raises inside the input pipeline: `read_or_flagged` turns an
item that cannot be read, parsed or decoded, or whose header declares more
than `max_pixels` pixels, into a zero image with `ok == False` and a
`problem` naming why, so the pipeline can stop with one line naming the file,
or skip it and count it (--skip_bad_images), instead of dying with an op error
that names nothing (or with the memory a 100-megapixel upload takes).

The bytes in flight per image are bounded: the pixel count is read from the
header before anything is decoded (`header_shape`, for every format
tf.io.decode_image reads; one it cannot size is refused, not decoded); a
serving request is bounded as a whole (`decode_request`); a JPEG decodes
only the window it is cropped to (`decode_and_crop_jpeg`, as TF-slim's and
Model Garden's Inception pipelines do); the resize reads the uint8 pixels
directly (no float32 copy of the full image: 144 MB for a 12-megapixel
photo).
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
  """uint8 [H, W, channels] from encoded bytes (raises on bad data).

  TF decodes JPEG and PNG to the channels asked, but refuses 1 channel for
  GIF and BMP and decodes WebP only to the channels it holds: those are
  decoded as stored, then converted (grey repeated, alpha dropped, colour
  to grey by tf.image.rgb_to_grayscale).
  """
  def as_asked():
    return tf.io.decode_image(contents, channels=channels,
                              expand_animations=False, dtype=tf.uint8)

  def as_stored():
    image = tf.io.decode_image(contents, expand_animations=False,
                               dtype=tf.uint8)
    colour = tf.cond(tf.shape(image)[2] < 3,
                     lambda: tf.image.grayscale_to_rgb(image[..., :1]),
                     lambda: image[..., :3])
    return colour if channels == 3 else tf.image.rgb_to_grayscale(colour)

  if channels in (1, 3):
    jpeg_or_png = tf.io.is_jpeg(contents) | tf.equal(
        tf.strings.substr(contents, 0, 4), b"\x89PNG")
    image = tf.cond(jpeg_or_png, as_asked, as_stored)
  else:
    image = as_asked()
  image.set_shape([None, None, channels])
  return image


DEFAULT_MAX_PIXELS = 50_000_000  # above 48-megapixel phone photos
# A serving request may declare this many times max_pixels in all: map_fn
# decodes up to 10 images at once, and one 36-byte WebP declaring
# 16383x16383 took 1.8 GB to decode (review of 79d3b92, #4 and #25). 4 x 50
# MP is 16 twelve-megapixel photos, at most 600 MB decoded (RGB) a request.
REQUEST_IMAGES = 4
UNREADABLE = "cannot be read or decoded as an image"
_PNG_CHANNELS = (1, -1, 3, 3, 2, -1, 4, -1)  # by IHDR colour type (0-6)
# Doublings of the GIF block walk's jump table: each sequential step of the
# walk then crosses 2**6 blocks (graph while-loop steps cost ~10 us each).
_GIF_DOUBLINGS = 6


@tf.function(autograph=False,
             input_signature=[tf.TensorSpec([], tf.string)])
def header_shape(contents: tf.Tensor) -> tf.Tensor:
  """int64 [height, width, channels] as the image's header declares them,
  read without decoding, for every format tf.io.decode_image reads: JPEG,
  PNG, GIF (the canvas: `_gif_extent`), BMP, WebP (VP8, VP8L, VP8X).
  Channels are those decode_image gives with channels=0.

  [-1, -1, -1] when the image cannot be sized: another format, a header cut
  short, a side of 2**31 or more. Such bytes are refused, never counted as
  small. Raises on a JPEG whose header is bad.
  """
  length = tf.strings.length(contents)
  head = tf.cast(tf.io.decode_raw(tf.strings.substr(contents, 0, 32),
                                  tf.uint8, fixed_length=32), tf.int64)

  def number(offset, size, big_endian=False):
    weights = [256 ** i for i in range(size)]
    return tf.reduce_sum(head[offset:offset + size] * tf.constant(
        weights[::-1] if big_endian else weights, tf.int64))

  def starts(magic, offset=0):
    return tf.reduce_all(tf.equal(head[offset:offset + len(magic)],
                                  list(magic)))

  def webp():
    lossless = number(21, 4)  # 14 bits width - 1, 14 bits height - 1, alpha
    shape = tf.where(starts(b"VP8 ", 12) & (length >= 30),
                     tf.stack([number(28, 2) % 2 ** 14,
                               number(26, 2) % 2 ** 14, 3]), -1)
    shape = tf.where(starts(b"VP8L", 12), tf.stack([
        lossless // 2 ** 14 % 2 ** 14 + 1, lossless % 2 ** 14 + 1,
        3 + lossless // 2 ** 28 % 2]), shape)
    return tf.where(starts(b"VP8X", 12) & (length >= 30), tf.stack([
        number(27, 3) + 1, number(24, 3) + 1, 3 + head[20] // 16 % 2]), shape)

  shape = tf.case([
      (tf.io.is_jpeg(contents),
       lambda: tf.cast(tf.io.extract_jpeg_shape(contents), tf.int64)),
      (starts(b"\x89PNG") & (length >= 26),
       lambda: tf.stack([number(20, 4, True), number(16, 4, True),
                         tf.gather(tf.constant(_PNG_CHANNELS, tf.int64),
                                   tf.minimum(head[25], 7))])),
      (starts(b"GIF") & (length >= 14),
       lambda: tf.concat([_gif_extent(contents), [3]], 0)),
      (starts(b"BM") & (length >= 30),
       lambda: tf.stack([tf.abs(_signed32(number(22, 4))),
                         _signed32(number(18, 4)), number(28, 2) // 8])),
      (starts(b"RIFF") & starts(b"WEBP", 8) & (length >= 26), webp),
  ], default=lambda: tf.constant([-1, -1, -1], tf.int64))
  sized = tf.reduce_all(shape >= 0) & tf.reduce_all(shape[:2] < 2 ** 31)
  return tf.where(sized, shape, -1)


def _signed32(value: tf.Tensor) -> tf.Tensor:
  return tf.where(value >= 2 ** 31, value - 2 ** 32, value)


def _gif_extent(contents: tf.Tensor) -> tf.Tensor:
  """int64 [height, width]: the largest top + height and left + width over
  the logical screen and every frame's image descriptor, or [-1, -1] unless
  the blocks lead to the trailer. TF decodes a GIF to a canvas of its
  largest frame width x largest frame height, whatever the screen says
  (so two frames of 1 x 3000 and 3000 x 1 make 9 megapixels).

  The walk from block to block is sequential; each byte is given, as if it
  ended a chain of sub-blocks, where the walk goes next and the frame it
  passes, and the jumps are doubled so that a step crosses 2**6 blocks:
  about 0.3 s a megabyte and 50 bytes of memory a byte, measured, however
  small the blocks (a step a block took 5 s a megabyte of 1-byte blocks).
  """
  raw = tf.io.decode_raw(tf.strings.join([contents, b"\0" * 16]), tf.uint8)
  n = tf.size(raw) - 16
  done, failed = n, n + 1  # the two nodes the walk ends at
  at = lambda offset: tf.cast(raw[offset:offset + n], tf.int32)  # [n]
  u16 = lambda offset: at(offset) + 256 * at(offset + 1)
  colours = lambda packed: tf.where(  # the size of a colour table
      packed >= 128, 3 * tf.bitwise.left_shift(2, packed % 8), 0)
  node = tf.range(n)
  # The block after byte i: an extension (its sub-blocks start after its
  # label), an image (after its descriptor, colour table and LZW code size)
  # or the trailer.
  block = at(1)
  image = tf.equal(block, 0x2C)
  enter = tf.where(image, node + 12 + colours(at(10)), node + 3)
  enter = tf.where(tf.equal(block, 0x3B), done, tf.where(
      (image | tf.equal(block, 0x21)) & (enter < n), enter, failed))
  height = tf.where(image, u16(4) + u16(8), 0)  # top + height
  width = tf.where(image, u16(2) + u16(6), 0)   # left + width
  # Byte i as a sub-block's size: the next sub-block, or (size 0) the end
  # of the chain and the next block.
  size = at(0)
  follow = node + 1 + size
  ends = tf.equal(size, 0)
  jump = tf.concat([tf.where(ends, enter, tf.where(
      follow < n, follow, failed)), [done, failed]], 0)
  heights = tf.concat([tf.where(ends, height, 0), [0, 0]], 0)
  widths = tf.concat([tf.where(ends, width, 0), [0, 0]], 0)
  for _ in range(_GIF_DOUBLINGS):
    heights = tf.maximum(heights, tf.gather(heights, jump))
    widths = tf.maximum(widths, tf.gather(widths, jump))
    jump = tf.gather(jump, jump)
  # The first block follows the screen descriptor and its colour table.
  screen = tf.cast(raw[:13], tf.int32)
  first = tf.minimum(12 + colours(screen[10]), n - 1)

  def step(i, top, left):
    return (tf.gather(jump, i), tf.maximum(top, tf.gather(heights, i)),
            tf.maximum(left, tf.gather(widths, i)))
  end, top, left = tf.while_loop(
      lambda i, top, left: i < n, step,
      [enter[first], tf.maximum(screen[8] + 256 * screen[9], height[first]),
       tf.maximum(screen[6] + 256 * screen[7], width[first])])
  return tf.where(tf.equal(end, done),
                  tf.cast(tf.stack([top, left]), tf.int64), -1)


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
    unreadable: The problem named when reading or decoding fails, or the
      header cannot be sized (`header_shape`).

  It and the decode run in a one-element dataset whose errors are dropped;
  an item that failed yields a zero image and `ok == False` instead. Used
  inside an order-preserving `interleave`.
  """
  def read(k):
    contents, extra = load(k)
    declared = header_shape(contents)
    sized = declared[0] >= 0
    refused = ~sized | (declared[0] * declared[1] > max_pixels)

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

    problem = tf.where(sized, tf.strings.join([
        "declares ", tf.strings.as_string(declared[1]), "x",
        tf.strings.as_string(declared[0]), " pixels, more than "
        f"--max_image_pixels={max_pixels}"]), unreadable)
    return {"image": tf.cond(refused,
                             lambda: tf.zeros([size, size, channels],
                                              tf.uint8), image),
            "ok": tf.logical_not(refused),
            "problem": tf.where(refused, problem, ""), "extra": extra}

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
  """`decode`, once the header is sized and declares at most `max_pixels`
  (serving: a refusal is an InvalidArgumentError, not memory)."""
  declared = header_shape(contents)
  with tf.control_dependencies([
      tf.debugging.Assert(declared[0] >= 0, [
          "image header cannot be sized (JPEG, PNG, GIF, BMP and WebP "
          "can; is it cut short?)"]),
      tf.debugging.Assert(declared[0] * declared[1] <= max_pixels, [
          tf.strings.join([
              "image declares ", tf.strings.as_string(declared[1]), "x",
              tf.strings.as_string(declared[0]), " pixels, more than the "
              f"{max_pixels} this model accepts"])])]):
    return decode(contents, channels)


def decode_request(encoded: tf.Tensor, channels: int, height: int,
                   width: int,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> tf.Tensor:
  """uint8 [N, height, width, channels]: a serving request's encoded images
  [N], each decoded by `checked_decode` and resized.

  Before anything is decoded, the request is refused (InvalidArgumentError)
  when its images declare more than REQUEST_IMAGES * max_pixels in all.
  """
  shapes = tf.map_fn(header_shape, encoded,
                     fn_output_signature=tf.TensorSpec([3], tf.int64))
  # Sides are below 2**31 (or -1): no product or sum overflows.
  total = tf.reduce_sum(tf.minimum(shapes[:, 0] * shapes[:, 1],
                                   max_pixels + 1))
  limit = REQUEST_IMAGES * max_pixels
  with tf.control_dependencies([tf.debugging.Assert(total <= limit, [
      tf.strings.join([
          "the images of this request declare ",
          tf.strings.as_string(total),
          f" pixels in all, more than the {limit} ({REQUEST_IMAGES} x "
          f"{max_pixels}) this model accepts per request; send fewer or "
          "smaller images"])])]):
    return tf.map_fn(
        lambda e: resize(checked_decode(e, channels, max_pixels), height,
                         width),
        encoded, fn_output_signature=tf.TensorSpec([height, width, channels],
                                                   tf.uint8))


def channels_of(contents) -> int:
  """Channels an encoded image (bytes or a string tensor) holds, from its
  header alone (`header_shape`; sniffing a data set decodes nothing): 1
  grey, 2 grey and alpha, 3 colour, 4 colour and alpha.

  Raises:
    tf.errors.InvalidArgumentError: If the header cannot be sized.
  """
  channels = int(header_shape(tf.convert_to_tensor(contents))[2])
  if channels < 0:
    raise tf.errors.InvalidArgumentError(
        None, None, "the image header cannot be sized")
  return channels
