"""Streamed sources keep memory flat: reading a folder (and its shards) ten
times larger costs no more resident memory, because only the file list is
held and images are decoded as they are read. Shards hold one shuffle block
of serialized records (shard_stream.SHUFFLE_BLOCK, 1,024 by default; 32 here so
that both sets are many blocks long)."""

import json
import os

import numpy as np
import tensorflow as tf

from tests import helpers

READER = """
import json, resource, sys
import tensorflow as tf
from core.data import batches as batches_lib, datasets, pipeline
from core.runtime import distribution
source, root = sys.argv[1], sys.argv[2]
data = datasets.load(source, data_dir=root, validation_size=0)
reading = pipeline.Reading(image_size=64, channels=3, augment=("crop",))
batch = distribution.BatchSplit(10, 1)
n = data.train.num_examples
batches = batches_lib.replica_batches(
    data.train, batch, reading, training=True, steps_per_epoch=n // 10,
    num_classes=data.info.num_classes, shuffle_block=32)
seen = sum(int(b["weight"].numpy().sum()) for b in batches.take(n // 10))
print(json.dumps({"seen": seen, "rss_mib": resource.getrusage(
    resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_photos(root, count):
  """`count` 256x256 noise JPEGs (~150 KB decoded each) in 2 classes."""
  rng = np.random.RandomState(0)
  for i in range(count):
    folder = os.path.join(root, "train", f"c{i % 2}")
    os.makedirs(folder, exist_ok=True)
    image = rng.randint(0, 256, [256, 256, 3]).astype(np.uint8)
    with open(os.path.join(folder, f"{i:05d}.jpg"), "wb") as f:
      f.write(tf.io.encode_jpeg(image, quality=90).numpy())


class StreamingMemoryTest(tf.test.TestCase):

  def peak(self, source, root):
    done = helpers.python("-c", READER, source, root)
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])

  def test_ten_times_the_data_same_memory(self):
    small, large = (os.path.join(self.get_temp_dir(), name)
                    for name in ("small", "large"))
    write_photos(small, 60)
    write_photos(large, 600)  # ~90 MB of decoded pixels if held
    for source in ("folder", "tfrecord"):
      roots = (small, large)
      if source == "tfrecord":
        roots = tuple(r + "-shards" for r in roots)
        for folder, shards in zip((small, large), roots):
          done = helpers.python("-m", "tools.convert",
                                f"--source=folder:{folder}",
                                f"--output={shards}", "--shards=4")
          self.assertEqual(done.returncode, 0, done.stderr)
      a, b = (self.peak(source, r) for r in roots)
      self.assertEqual((a["seen"], b["seen"]), (60, 600), source)
      self.assertLess(b["rss_mib"] - a["rss_mib"], 30, (source, a, b))
