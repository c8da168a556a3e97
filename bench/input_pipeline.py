"""`python -m bench.input_pipeline`: the input pipeline's images/s next to
the training step's at 224x224, for a JPEG folder and for TFRecord shards,
and for the folder with each augmentation policy.

Writes 256 photo-like JPEGs (smooth colour fields with noise, 240 to 400
pixels a side) and their shards into a temporary folder, reads each through
the training pipeline alone (decode, Inception crop, flip, resize to 224; no
model), the folder again with each of "randaugment" (N=2, M=9),
"trivialaugment" and "colour" between the crop and the flip, then times the
engine's step in mixed bfloat16 on in-memory images of the same size (one
replica, global batch 64). The pipeline must deliver at least 2x what the
step consumes without a policy and stay ahead of it with one. One JSON
line, then a table.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench import cpu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH, SIZE, PHOTOS = 64, 224, 256
POLICIES = ("randaugment", "trivialaugment", "colour")


def write_photos(root: str) -> None:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(0)
  for i in range(PHOTOS):
    h, w = rng.randint(240, 401, size=2)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(x / rng.uniform(10, 60)), np.cos(y / rng.uniform(
        10, 60)), np.sin((x + y) / rng.uniform(10, 60))], -1)
    image = np.clip(128 + 90 * base + rng.randn(h, w, 3) * 12, 0, 255)
    folder = os.path.join(root, "train", f"c{i % 4}")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{i:04d}.jpg"), "wb") as f:
      f.write(tf.io.encode_jpeg(image.astype(np.uint8), quality=90).numpy())


def pipeline_rate(source: str, root: str, num_batches: int = 24,
                  batch_size: int = BATCH,
                  augment=("crop", "flip")) -> float:
  """Images/s of the training pipeline alone over `num_batches` batches
  (after one to warm up), augmenting with `augment`."""
  # pylint: disable-next=g-import-not-at-top
  from core.data import batches, datasets, pipeline
  from core.runtime import distribution  # pylint: disable=g-import-not-at-top
  data = datasets.load(source, data_dir=root, validation_size=0)
  reading = pipeline.Reading(image_size=SIZE, channels=3,
                             augment=tuple(augment))
  batch = distribution.BatchSplit(batch_size, 1)
  steps = data.train.num_examples // batch_size
  stream = batches.replica_batches(
      data.train, batch, reading, training=True, steps_per_epoch=steps,
      num_classes=data.info.num_classes)
  iterator = iter(stream)
  next(iterator)  # warm-up: the first batch builds the pipeline
  start = time.perf_counter()
  for _ in range(num_batches):
    next(iterator)["images"].numpy()
  return num_batches * batch_size / (time.perf_counter() - start)


def step_rate() -> float:
  """The engine's training step in images/s, in mixed bfloat16 (its
  fastest on this CPU, so the bar the pipeline must clear)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  done = subprocess.run(
      [sys.executable, "-m", "bench.contenders", "engine", str(SIZE), "1",
       "1", "2", "2", "--precision=mixed_bfloat16"], cwd=ROOT, env=env,
      capture_output=True, text=True, check=True)
  return json.loads(done.stdout.strip().splitlines()[-1])["images_per_second"]


def main() -> int:
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  print(f"# {cpu()}", flush=True)
  with tempfile.TemporaryDirectory() as tmp:
    photos, shards = os.path.join(tmp, "photos"), os.path.join(tmp, "shards")
    write_photos(photos)
    subprocess.run([sys.executable, "-m", "tools.convert",
                    f"--source=folder:{photos}", f"--output={shards}",
                    "--shards=8"], cwd=ROOT, check=True, capture_output=True)
    rates = {"folder": pipeline_rate("folder", photos),
             "tfrecord": pipeline_rate("tfrecord", shards)}
    for policy in POLICIES:
      rates[f"folder+{policy}"] = pipeline_rate(
          "folder", photos, augment=("crop", policy, "flip"))
  rates["step"] = step_rate()
  print(json.dumps(rates))
  print("| input at 224x224 | images/s | vs the step |\n|---|---|---|")
  rows = {f"JPEG {source} (decode, crop, flip, resize)": source
          for source in ("folder", "tfrecord")}
  rows.update({f"JPEG folder, {policy} after the crop": f"folder+{policy}"
               for policy in POLICIES})
  for name, key in rows.items():
    print(f"| {name} | {rates[key]:.0f} | "
          f"{rates[key] / rates['step']:.1f}x |")
  print(f"| training step, bfloat16, 1 replica, batch {BATCH} | "
        f"{rates['step']:.1f} | 1.0x |")
  ahead = min(rates["folder"], rates["tfrecord"]) >= 2 * rates["step"] and (
      min(rates[f"folder+{policy}"] for policy in POLICIES) >= rates["step"])
  return 0 if ahead else 1


if __name__ == "__main__":
  sys.exit(main())
