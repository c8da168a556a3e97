"""What an encoded image's header declares (height, width, channels), read
without decoding, for every format tf.io.decode_image reads."""

import tensorflow as tf

_PNG_CHANNELS = (1, -1, 3, 3, 2, -1, 4, -1)  # by IHDR colour type (0-6)
# The GIF block walk's window in bytes: 2**13 and 2**14 walked fastest of
# 2**12 to 2**18 (2**16 half as fast, 2**18 a third), measured.
_GIF_WINDOW = 2 ** 14


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


def _gif_extent(contents: tf.Tensor, window: int = _GIF_WINDOW) -> tf.Tensor:
  """int64 [height, width]: the largest top + height and left + width over
  the logical screen and every frame's image descriptor, or [-1, -1] unless
  the blocks lead to the trailer. TF decodes a GIF to a canvas of its
  largest frame width x largest frame height, whatever the screen says
  (so two frames of 1 x 3000 and 3000 x 1 make 9 megapixels).

  The walk from block to block is sequential. It goes a window of `window`
  bytes at a time, from where it stands: each byte of the window is given,
  as if it ended a chain of sub-blocks, where the walk goes next and the
  frame it passes, and the jumps are doubled until the walk leaves the
  window in one step. So memory is bounded by the window whatever the
  file's size (20 MB of 1-byte sub-blocks raised the peak by 4-15 MB; a
  table of the whole file, 50 bytes a byte, by 1 GB), and time is linear
  in the size: about 10 MB/s of 1-byte sub-blocks, 15 MB/s of 255-byte
  ones, measured (the whole file's table: 6 and 12).
  """
  length = tf.strings.length(contents)
  screen = _bytes(contents, 0, 13)
  # The first block follows the screen descriptor and its colour table.
  first = tf.minimum(12 + _colours(screen[10]), length - 1)
  _, _, enter, passes = _gif_blocks(contents, first, 1)
  extent = tf.maximum(tf.stack([screen[8] + 256 * screen[9],
                                screen[6] + 256 * screen[7]]), passes[0])
  node = tf.range(window)

  def walk(start, extent):
    ends, follow, enter, passes = _gif_blocks(contents, start, window)
    # Past the file's end, the walk's two ends (length: the trailer,
    # length + 1: a failure) jump to themselves, and so does the entry
    # after the window, which every jump out of the window gathers.
    stays = node >= length - start
    jump = tf.concat([tf.where(stays, node, tf.where(ends, enter, follow)),
                      [window]], 0)
    passes = tf.concat([tf.where(ends[:, None], passes, 0), [[0, 0]]], 0)

    def double(jump, passes):
      # Jumps go forward: a jump in the window gathers one further on, and
      # the maximum keeps a jump out of the window where it is.
      to = tf.minimum(jump, window)
      return (tf.maximum(jump, tf.gather(jump, to)),
              tf.maximum(passes, tf.gather(passes, to)))
    jump, passes = tf.while_loop(
        lambda jump, passes: jump[0] < tf.minimum(length - start, window),
        double, [jump, passes])
    return start + jump[0], tf.maximum(extent, passes[0])

  end, extent = tf.while_loop(
      lambda start, extent: start < length, walk, [first + enter[0], extent])
  return tf.where(tf.equal(end, length), tf.cast(extent, tf.int64), -1)


def _gif_blocks(contents: tf.Tensor, start: tf.Tensor, count: int):
  """For each byte at start + [0, count), as a position relative to start:
  whether it ends a chain of sub-blocks (a size of 0), the next sub-block
  (as a size), the first sub-block of the next block (as a chain's end:
  an extension's after its label, an image's after its descriptor, colour
  table and LZW code size; the file's length at the trailer, length + 1
  where the walk fails) and the [top + height, left + width] of the image
  it passes ([0, 0] for an extension)."""
  length = tf.strings.length(contents) - start
  raw = _bytes(contents, start, count + 11)  # a descriptor's 11 bytes ahead
  at = lambda offset: raw[offset:offset + count]  # [count]
  u16 = lambda offset: at(offset) + 256 * at(offset + 1)
  node = tf.range(count)
  block = at(1)
  image = tf.equal(block, 0x2C)
  enter = tf.where(image, node + 12 + _colours(at(10)), node + 3)
  enter = tf.where(tf.equal(block, 0x3B), length, tf.where(
      (image | tf.equal(block, 0x21)) & (enter < length), enter, length + 1))
  follow = node + 1 + at(0)
  passes = tf.where(image[:, None], tf.stack(
      [u16(4) + u16(8), u16(2) + u16(6)], 1), 0)  # [count, 2]
  return (tf.equal(at(0), 0), tf.where(follow < length, follow, length + 1),
          enter, passes)


def _bytes(contents: tf.Tensor, start, count: int) -> tf.Tensor:
  """int32 [count]: the bytes at start + [0, count), 0 past the end."""
  return tf.cast(tf.io.decode_raw(tf.strings.substr(contents, start, count),
                                  tf.uint8, fixed_length=count), tf.int32)


def _colours(packed: tf.Tensor) -> tf.Tensor:
  """The size of a colour table, from its descriptor's packed byte."""
  return tf.where(packed >= 128, 3 * tf.bitwise.left_shift(2, packed % 8), 0)


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
