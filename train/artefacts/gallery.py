"""A grid of misclassified images, each captioned with its true and
predicted class names, drawn with numpy (no plotting or font library).

The captions use a 5x7 pixel font of capitals, digits and common
punctuation drawn for this file; lower-case letters print as capitals and
any other character as "?". A tile is the image scaled to `TILE` pixels
(nearest neighbour) over two caption lines: the true class in green, the
predicted one in red.
"""

from typing import Sequence

import numpy as np

TILE = 96            # a tile's image side and width, in pixels
COLUMNS = 4          # tiles per row of the grid
GAP = 2              # pixels between tiles
_GLYPH_W, _GLYPH_H = 5, 7
_ADVANCE = _GLYPH_W + 1
_LINE = _GLYPH_H + 3
_CAPTION = 2 * _LINE + 2
_TRUE_RGB = (40, 160, 60)
_PRED_RGB = (210, 40, 40)

# Each glyph: 7 rows of 5 pixels, top to bottom, "#" on.
_FONT = {
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "####. #...# #...# #...# #...# #...# ####.",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    " ": "..... ..... ..... ..... ..... ..... .....",
    "-": "..... ..... ..... ##### ..... ..... .....",
    "_": "..... ..... ..... ..... ..... ..... #####",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    "/": "..... ....# ...#. ..#.. .#... #.... .....",
    "'": "..#.. ..#.. ..... ..... ..... ..... .....",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    "&": ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
}
_GLYPHS = {ch: np.array([[c == "#" for c in row] for row in rows.split()])
           for ch, rows in _FONT.items()}


def glyph(char: str) -> np.ndarray:
  """The [7, 5] bool bitmap of `char` (capitals for lower case, "?" for a
  character the font lacks)."""
  return _GLYPHS.get(char.upper(), _GLYPHS["?"])


def text_mask(text: str, width: int) -> np.ndarray:
  """[7, width] bool pixels of `text` in one line; text wider than `width`
  ends in ".." at the right edge."""
  fits = max((width + 1) // _ADVANCE, 1)
  if len(text) > fits:
    text = text[:max(fits - 2, 0)] + ".."
  mask = np.zeros([_GLYPH_H, width], bool)
  for i, char in enumerate(text[:fits]):
    left = i * _ADVANCE
    part = glyph(char)[:, :max(min(_GLYPH_W, width - left), 0)]
    mask[:, left:left + part.shape[1]] = part
  return mask


def _scaled(image: np.ndarray, side: int) -> np.ndarray:
  """`image` [H, W, C] (1 or 3 channels) as uint8 RGB [side, side, 3],
  nearest neighbour."""
  rows = np.arange(side) * image.shape[0] // side
  cols = np.arange(side) * image.shape[1] // side
  scaled = np.asarray(image)[rows][:, cols]
  if scaled.shape[-1] == 1:
    scaled = np.repeat(scaled, 3, axis=-1)
  return scaled[..., :3].astype(np.uint8)


def tile(image: np.ndarray, true_name: str, predicted_name: str) -> np.ndarray:
  """One captioned tile, uint8 [TILE + caption, TILE, 3]."""
  out = np.full([TILE + _CAPTION, TILE, 3], 255, np.uint8)
  out[:TILE] = _scaled(image, TILE)
  for line, (name, rgb) in enumerate(((true_name, _TRUE_RGB),
                                      (predicted_name, _PRED_RGB))):
    top = TILE + 2 + line * _LINE
    mask = text_mask(name, TILE - 2)
    out[top:top + _GLYPH_H, 1:TILE - 1][mask] = rgb
  return out


def grid(images: Sequence[np.ndarray], true_names: Sequence[str],
         predicted_names: Sequence[str], columns: int = COLUMNS) -> np.ndarray:
  """The captioned tiles of `images`, row by row, uint8 [H, W, 3] on a grey
  background.

  Raises:
    ValueError: If there are no images or the three lists differ in length.
  """
  if not len(images) or not (len(images) == len(true_names)
                             == len(predicted_names)):
    raise ValueError("`images`, `true_names` and `predicted_names` must be "
                     "non-empty and of one length; received "
                     f"{len(images)}, {len(true_names)} and "
                     f"{len(predicted_names)}.")
  tiles = [tile(*item) for item in zip(images, true_names, predicted_names)]
  columns = min(columns, len(tiles))
  rows = -(-len(tiles) // columns)
  height, width = tiles[0].shape[:2]
  out = np.full([rows * (height + GAP) + GAP, columns * (width + GAP) + GAP,
                 3], 128, np.uint8)
  for i, t in enumerate(tiles):
    top = GAP + (i // columns) * (height + GAP)
    left = GAP + (i % columns) * (width + GAP)
    out[top:top + height, left:left + width] = t
  return out
