"""Encoded images built by hand for the tests (TF encodes only JPEG and
PNG): GIF of any frames and screen, BMP, lossless WebP of any size, and
two small lossy WebP files."""

import struct

import numpy as np

# 17 x 13 WebP files of one colour, from Pillow 13 (libwebp): lossy (a VP8
# chunk), and lossy with alpha (VP8X, ALPH, VP8).
WEBP_LOSSY = bytes.fromhex(
    "524946463c000000574542505650382030000000d002009d012a11000d003ed154a34b"
    "a824a321b00801001a0940176005a48000fee8254bffc439fd6dff729ad7ab9800")
WEBP_ALPHA = bytes.fromhex(
    "524946466000000057454250565038580a000000100000001000000c0000414c5048"
    "0a000000010750c088084444ff035650382030000000d002009d012a11000d003ed1"
    "54a34ba824a321b00801001a0940176005a48000fee8254bffc439fd6dff729ad7ab"
    "9800")


def bmp(pixels: np.ndarray) -> bytes:
  """An uncompressed 24-bit BMP (rows bottom-up, BGR, padded to 4 bytes)."""
  height, width, _ = pixels.shape
  row = (width * 3 + 3) // 4 * 4
  body = b"".join(pixels[r, :, ::-1].tobytes().ljust(row, b"\0")
                  for r in range(height - 1, -1, -1))
  info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(body),
                     2835, 2835, 0, 0)
  header = struct.pack("<2sIHHI", b"BM", 54 + len(body), 0, 0, 54)
  return header + info + body


def vp8l(width: int, height: int) -> bytes:
  """A lossless WebP of one colour (0 bits a pixel: five prefix codes of
  one symbol each), as the review's probe `webpbomb` builds it: 36 bytes
  whatever the size."""
  fields = [(width - 1, 14), (height - 1, 14), (0, 1), (0, 3), (0, 1),
            (0, 1), (0, 1)] + [(1, 1), (0, 1), (0, 1), (0, 1)] * 5
  value = count = 0
  for field, bits in fields:
    value |= field << count
    count += bits
  data = b"\x2f" + value.to_bytes((count + 7) // 8 + 8, "little")
  chunk = (b"VP8L" + struct.pack("<I", len(data)) + data
           + b"\0" * (len(data) % 2))
  return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def gif(*frames, screen=None) -> bytes:
  """A one-colour GIF89a (a 2-entry palette) of LZW-coded frames, each
  (height, width), on a logical screen (height, width), by default the
  first frame's."""
  screen_height, screen_width = screen or frames[0]
  body = b"".join(b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x02"
                  + lzw_blocks(h * w) for h, w in frames)
  return (b"GIF89a" + struct.pack("<HHBBB", screen_width, screen_height,
                                  0x80, 0, 0)
          + b"\x00\x00\x00\xff\xff\xff" + body + b"\x3b")


def lzw_blocks(pixels: int) -> bytes:
  """`pixels` of colour 0, LZW-coded (2-bit minimum code size), in
  sub-blocks."""
  # Clear (4), then every pixel as code 0 (3-bit codes; no dictionary
  # growth past the 8-entry limit is needed as we emit a clear before it
  # fills), then end (5).
  codes = [(4, 3)]
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
  return b"".join(bytes([len(data[i:i + 255])]) + data[i:i + 255]
                  for i in range(0, len(data), 255)) + b"\0"
