"""Full-size photographs at a bounded cost: 12- and 8-megapixel JPEGs read
through the 224x224 training pipeline (Inception crop: only the crop is
decoded) and the evaluation pipeline (central crop, resize from uint8), each
in a fresh process, whose peak resident memory while reading stays within a
bound the old float32 path exceeded (8 photos, batch 8: 218 MB training and
376 MB evaluating above the built pipeline before, 91 and 96 MB after;
bench/photo_pipeline.py measures both side by side)."""

import os

import tensorflow as tf

from bench import photo_pipeline

BOUND_MB = 160  # before: 218 (train) and 376 (eval) at this size


class PhotoMemoryTest(tf.test.TestCase):

  def test_twelve_megapixel_jpegs_stay_within_the_bound(self):
    photos = os.path.join(self.get_temp_dir(), "photos")
    photo_pipeline.write_photos(photos, 8)
    for mode in ("train", "eval"):
      result = photo_pipeline.measure(photo_pipeline.ROOT, photos, mode,
                                      rounds=1)
      self.assertGreater(result["images_per_second"], 0)
      self.assertLess(result["peak_above_built_mb"], BOUND_MB, msg=mode)
