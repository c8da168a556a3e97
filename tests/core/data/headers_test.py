"""The GIF block walk of the header reader: a window at a time, it finds
what the table of the whole file found, on hostile GIF-like bytes and on
real GIFs, in memory bounded whatever the file's size."""

import json
import struct

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings, strategies as st

from core.data import headers
from tests import helpers
from tests.core.data import image_bytes as made

# A 17 x 13 GIF from Pillow 13: a loop (NETSCAPE2.0) and a comment
# extension, three frames each behind a graphic control extension, the
# last two cut to what changed (6 x 5 at (3, 2), 13 x 10 at (3, 2)) with
# their own colour tables.
_PILLOW = bytes.fromhex(
    "47494638396111000d0081000000000000000000000000000021ff0b4e4554534341"
    "5045322e30030100000021fe06656e67696e650021f90404050000002c000000001100"
    "0d0000081a0001081c48b0a0c18308132a5cc8b0a1c38710234a9c487161400021f904"
    "05050002002c030002000600050081000000ff0000000000000000080c0003081c48b0"
    "a0c1830203020021f90405050002002c030002000d000a008100000000ff0000000000"
    "000008290001081c28a0a0410103091e2c9850e042860d1f228c28b1a2c58201326a94"
    "a871e3c38e1939820c08003b")

_LARGE = """
import json, resource, struct
import tensorflow as tf
from core.data import headers
from tests.core.data import image_bytes as made
def frame(height, width, data):
  return (b"\\x2c" + struct.pack("<4HB", 0, 0, width, height, 0) + b"\\x02"
          + data + b"\\0")
small = made.gif((13, 17))
# 20 MB of 1-byte sub-blocks, then a frame the walk must reach.
large = tf.constant(small[:-1] + frame(13, 17, b"\\x01\\x00" * 10 * 2 ** 20)
                    + frame(2000, 3000, b"") + b"\\x3b")
headers.header_shape(tf.constant(small))  # traced; a window's memory taken
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
shape = headers.header_shape(large).numpy().tolist()
print(json.dumps({"shape": shape, "growth_mib": (resource.getrusage(
    resource.RUSAGE_SELF).ru_maxrss - before) / 1024}))
"""

_GIF_DOUBLINGS = 6


def _whole_file_extent(contents: tf.Tensor) -> tf.Tensor:
  """The walk before the window (commit 1e15151), the oracle: a jump table
  of the whole file, 50 bytes of memory a byte."""
  raw = tf.io.decode_raw(tf.strings.join([contents, b"\0" * 16]), tf.uint8)
  n = tf.size(raw) - 16
  done, failed = n, n + 1  # the two nodes the walk ends at
  at = lambda offset: tf.cast(raw[offset:offset + n], tf.int32)  # [n]
  u16 = lambda offset: at(offset) + 256 * at(offset + 1)
  colours = lambda packed: tf.where(  # the size of a colour table
      packed >= 128, 3 * tf.bitwise.left_shift(2, packed % 8), 0)
  node = tf.range(n)
  block = at(1)
  image = tf.equal(block, 0x2C)
  enter = tf.where(image, node + 12 + colours(at(10)), node + 3)
  enter = tf.where(tf.equal(block, 0x3B), done, tf.where(
      (image | tf.equal(block, 0x21)) & (enter < n), enter, failed))
  height = tf.where(image, u16(4) + u16(8), 0)  # top + height
  width = tf.where(image, u16(2) + u16(6), 0)   # left + width
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


def _graph(function, *args):
  return tf.function(lambda contents: function(contents, *args),
                     autograph=False,
                     input_signature=[tf.TensorSpec([], tf.string)])


_ORACLE = _graph(_whole_file_extent)
# Windows of 1 and 7 bytes put nearly every block across a window's edge.
_WALKS = {window: _graph(headers._gif_extent, window)
          for window in (1, 7, 64, headers._GIF_WINDOW)}


def gif(*frames, sub_block=255, screen=None) -> bytes:
  """made.gif, its frames' LZW data in sub-blocks of `sub_block` bytes."""
  body = b""
  for height, width in frames:
    blocks, data = made.lzw_blocks(height * width), b""
    while blocks[0]:
      data, blocks = data + blocks[1:1 + blocks[0]], blocks[1 + blocks[0]:]
    body += (b"\x2c" + struct.pack("<4HB", 0, 0, width, height, 0) + b"\x02"
             + b"".join(bytes([len(data[i:i + sub_block])])
                        + data[i:i + sub_block]
                        for i in range(0, len(data), sub_block)) + b"\0")
  screen_height, screen_width = screen or frames[0]
  return (made.gif((1, 1), screen=(screen_height, screen_width))[:19]
          + body + b"\x3b")


@st.composite
def gif_like(draw) -> bytes:
  """A screen and its colour table, images and extensions of sub-blocks of
  1 byte or any size (random bytes, which may read as blocks), the trailer;
  then perhaps cut short, bytes changed or bytes added. Or random bytes."""
  if draw(st.integers(0, 9)) == 0:
    return draw(st.binary(min_size=1, max_size=64))
  rng = np.random.RandomState(draw(st.integers(0, 2 ** 32 - 1)))
  side = st.one_of(st.integers(0, 300), st.integers(0, 65535))
  packed = st.integers(0, 255)

  def table(packed):
    return rng.bytes(3 * 2 ** (packed % 8 + 1)) if packed >= 128 else b""

  def sub_blocks():
    sizes = draw(st.lists(st.one_of(st.just(1), st.integers(1, 255)),
                          max_size=6))
    return b"".join(bytes([n]) + rng.bytes(n) for n in sizes) + b"\0"
  screen = draw(packed)
  data = (b"GIF89a" + struct.pack("<HHBBB", draw(side), draw(side), screen,
                                  0, 0) + table(screen))
  for image in draw(st.lists(st.booleans(), max_size=5)):
    if image:
      local = draw(packed)
      data += (b"\x2c" + struct.pack("<4HB", *(draw(side) for _ in range(4)),
                                     local) + table(local) + b"\x02")
    else:
      data += b"\x21" + bytes([draw(packed)])
    data += sub_blocks()
  data = bytearray(data + b"\x3b")
  change = draw(st.sampled_from(["none", "cut", "set", "add"]))
  if change == "cut":
    data = data[:draw(st.integers(1, len(data)))]
  elif change == "set":
    for _ in range(draw(st.integers(1, 4))):
      data[draw(st.integers(0, len(data) - 1))] = draw(packed)
  elif change == "add":
    data += draw(st.binary(min_size=1, max_size=32))
  return bytes(data)


class GifExtentTest(tf.test.TestCase):

  def assertWalksAgree(self, data: bytes, msg=None):
    want = _ORACLE(tf.constant(data))
    for window, walk in _WALKS.items():
      self.assertAllEqual(walk(tf.constant(data)), want,
                          msg=f"window={window} {msg or data[:64]!r}")
    return want

  @settings(max_examples=300, deadline=None,
            suppress_health_check=[HealthCheck.too_slow,
                                   HealthCheck.data_too_large])
  @given(gif_like())
  def test_the_window_walk_finds_what_the_whole_file_table_found(self, data):
    self.assertWalksAgree(data)

  def test_real_gifs_are_sized_as_they_decode(self):
    one_byte = gif((13, 17), (60, 50), sub_block=1, screen=(1, 1))
    real = {"pillow": _PILLOW, "made": made.gif((13, 17)),
            "frames 1x60 and 60x1": gif((1, 60), (60, 1), screen=(1, 1)),
            "1-byte sub-blocks": one_byte}
    for name, data in real.items():
      shape = self.assertWalksAgree(data, name)
      self.assertAllEqual(shape, tf.io.decode_gif(data).shape[1:3], msg=name)
      self.assertAllEqual(headers.header_shape(tf.constant(data)),
                          [*shape, 3], msg=name)
    self.assertAllEqual(self.assertWalksAgree(one_byte[:-1]), [-1, -1])

  def test_blocks_across_many_windows(self):
    data = gif(*[(60, 50)] * 199, (61, 49), sub_block=1)
    self.assertGreater(len(data), 10 * headers._GIF_WINDOW)
    self.assertAllEqual(_WALKS[headers._GIF_WINDOW](tf.constant(data)),
                        _ORACLE(tf.constant(data)))
    shape = headers.header_shape(tf.constant(data))
    self.assertAllEqual(shape, [61, 50, 3])
    self.assertAllEqual(shape[:2], tf.io.decode_gif(data).shape[1:3])

  def test_a_large_gif_is_read_in_bounded_memory(self):
    # The table of the whole file grew the peak by ~1 GB for these 20 MB.
    done = helpers.python("-c", _LARGE)
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    read = json.loads(done.stdout.strip().splitlines()[-1])
    self.assertEqual(read["shape"], [2000, 3000, 3])
    self.assertLess(read["growth_mib"], 150, read)


if __name__ == "__main__":
  tf.test.main()
