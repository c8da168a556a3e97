"""The misclassified-images grid: the font, the captions and the layout."""

import numpy as np
import tensorflow as tf

from train.artefacts import gallery

GREEN, RED = (40, 160, 60), (210, 40, 40)


def coloured(image, rgb):
  return np.all(image == np.array(rgb, np.uint8), axis=-1)


class FontTest(tf.test.TestCase):

  def test_every_glyph_is_5x7_and_distinct(self):
    shapes = {ch: gallery.glyph(ch).shape for ch in gallery._FONT}
    self.assertEqual(set(shapes.values()), {(7, 5)})
    bitmaps = [gallery.glyph(ch).tobytes() for ch in gallery._FONT]
    self.assertEqual(len(set(bitmaps)), len(bitmaps))

  def test_lower_case_prints_as_capitals_and_unknown_as_question(self):
    self.assertAllEqual(gallery.glyph("a"), gallery.glyph("A"))
    self.assertAllEqual(gallery.glyph("é"), gallery.glyph("?"))
    self.assertFalse(gallery.glyph(" ").any())

  def test_text_is_glyphs_one_pixel_apart(self):
    mask = gallery.text_mask("AB", 20)
    self.assertAllEqual(mask[:, 0:5], gallery.glyph("A"))
    self.assertFalse(mask[:, 5].any())
    self.assertAllEqual(mask[:, 6:11], gallery.glyph("B"))
    self.assertFalse(mask[:, 11:].any())

  def test_long_text_ends_in_two_dots_within_the_width(self):
    mask = gallery.text_mask("ABCDEFGHIJ", 35)  # room for 6 characters
    self.assertAllEqual(mask[:, 0:5], gallery.glyph("A"))
    self.assertAllEqual(mask[:, 18:23], gallery.glyph("D"))
    self.assertAllEqual(mask[:, 24:29], gallery.glyph("."))
    self.assertAllEqual(mask[:, 30:35], gallery.glyph("."))


class GridTest(tf.test.TestCase):

  def test_tile_shows_the_image_over_true_and_predicted_names(self):
    image = np.zeros([28, 28, 1], np.uint8)
    image[:14] = 200
    tile = gallery.tile(image, "Shirt", "Coat")
    side = gallery.TILE
    self.assertEqual(tile.shape[1], side)
    self.assertTrue((tile[:side // 2 - 2] == 200).all())  # grey to RGB
    self.assertTrue((tile[side // 2 + 2:side] == 0).all())
    caption = tile[side:]
    true_rows = np.flatnonzero(coloured(caption, GREEN).any(axis=1))
    pred_rows = np.flatnonzero(coloured(caption, RED).any(axis=1))
    self.assertTrue(len(true_rows) and len(pred_rows))
    self.assertLess(true_rows.max(), pred_rows.min())  # true above predicted
    # The names themselves: the true line is "SHIRT" in the font.
    line = coloured(caption, GREEN)[true_rows.min():true_rows.min() + 7,
                                    1:side - 1]
    self.assertAllEqual(line, gallery.text_mask("Shirt", side - 2))

  def test_colour_images_of_any_size(self):
    big = np.random.RandomState(0).randint(0, 255, [300, 200, 3], np.uint8)
    tile = gallery.tile(big, "cat", "dog")
    self.assertEqual(tile.shape[:2], (gallery.TILE + gallery._CAPTION,
                                      gallery.TILE))
    self.assertAllEqual(tile[0, 0], big[0, 0])

  def test_grid_rows_of_four(self):
    images = [np.full([8, 8, 1], 10 * i, np.uint8) for i in range(5)]
    names = [f"c{i}" for i in range(5)]
    out = gallery.grid(images, names, names[::-1])
    height, width = gallery.TILE + gallery._CAPTION, gallery.TILE
    gap = gallery.GAP
    self.assertEqual(out.shape, (2 * (height + gap) + gap,
                                 4 * (width + gap) + gap, 3))
    # The fifth tile opens the second row; the rest of that row is empty.
    top, left = height + 2 * gap, gap
    self.assertTrue((out[top:top + 5, left:left + 5] == 40).all())
    self.assertTrue((out[top:, 2 * (width + gap) + gap:] == 128).all())

  def test_one_image_is_one_tile(self):
    out = gallery.grid([np.zeros([4, 4, 1], np.uint8)], ["a"], ["b"])
    self.assertEqual(out.shape[1], gallery.TILE + 2 * gallery.GAP)

  def test_empty_or_mismatched_lists_are_refused(self):
    with self.assertRaisesRegex(ValueError, "non-empty and of one length"):
      gallery.grid([], [], [])
    with self.assertRaisesRegex(ValueError, "non-empty and of one length"):
      gallery.grid([np.zeros([4, 4, 1], np.uint8)], ["a", "b"], ["c"])
