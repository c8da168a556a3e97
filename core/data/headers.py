"""What an encoded image's header declares (height, width, channels), read
without decoding, for every format tf.io.decode_image reads."""

import tensorflow as tf

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
