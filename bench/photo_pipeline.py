"""`python -m bench.photo_pipeline [--before=REV]`: the 224x224 input
pipeline on full-size photographs, images/s and peak memory, this tree next
to another revision's (in one run, on the same files).

Writes phone-camera-sized JPEGs (4000x3000, 12 megapixels, and 3264x2448)
into a folder, then, in a fresh process per measurement, reads them through
the training pipeline (Inception crop, flip, resize to 224) and the
evaluation pipeline (central crop after crop training, resize), global batch
8, and reports images/s and the process's peak resident memory while it
reads, above its resident memory once the pipeline is built (/proc's VmHWM,
reset through clear_refs). With
--before=REV the same is measured on a `git worktree` of REV, and the table
gives the ratios. One JSON line per measurement, then a table.
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from bench import cpu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = [(3000, 4000), (2448, 3264)]  # (height, width)


def write_photos(root: str, count: int) -> None:
  """`count` smooth colour fields with noise, as a camera's JPEGs (q 90)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(0)
  for i in range(count):
    h, w = SIZES[i % len(SIZES)]
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    base = np.stack([np.sin(x * rng.uniform(5, 40)) + 0 * y,
                     np.cos(y * rng.uniform(5, 40)) + 0 * x,
                     np.sin((x + y) * rng.uniform(5, 40))], -1)
    noise = rng.randint(-12, 13, size=(h, w, 1)).astype(np.float32)
    image = np.clip(128 + 90 * base + noise, 0, 255).astype(np.uint8)
    folder = os.path.join(root, "train", f"c{i % 2}")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{i:03d}.jpg"), "wb") as f:
      f.write(tf.io.encode_jpeg(image, quality=90).numpy())


# Run in a fresh process in the tree measured (its own `core`).
_MEASURE = r"""
import json, sys, time
import tensorflow as tf
from core.data import batches, datasets, pipeline
from core.runtime import distribution

def status(key):
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(key + ":"):
        return int(line.split()[1]) * 1024

root, training, rounds = sys.argv[1], sys.argv[2] == "train", int(sys.argv[3])
data = datasets.load("folder", data_dir=root, validation_size=0)
reading = pipeline.Reading(image_size=224, channels=3,
                           augment=("crop", "flip"))
batch = distribution.BatchSplit(8, 1)
if training:
  stream = batches.replica_batches(
      data.train, batch, reading, training=True,
      steps_per_epoch=data.train.num_examples // 8,
      num_classes=data.info.num_classes)
  take = rounds * (data.train.num_examples // 8)
else:
  stream = batches.replica_batches(
      data.train, batch, reading, training=False,
      num_classes=data.info.num_classes).repeat(rounds + 1)
  take = rounds * -(-data.train.num_examples // 8)
iterator = iter(stream.take(take + 1))
with open("/proc/self/clear_refs", "w") as f:
  f.write("5")  # the peak (VmHWM) restarts from here
baseline = status("VmRSS")
next(iterator)["images"].numpy()
start, images = time.perf_counter(), 0
for element in iterator:
  images += int(element["images"].shape[0])
seconds = time.perf_counter() - start
peak = status("VmHWM")
print(json.dumps({"images_per_second": images / seconds,
                  "peak_above_built_mb": (peak - baseline) / 2 ** 20,
                  "peak_mb": peak / 2 ** 20}))
"""


def measure(tree: str, photos: str, mode: str, rounds: int = 2) -> dict:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=tree)
  done = subprocess.run([sys.executable, "-c", _MEASURE, photos, mode,
                         str(rounds)], cwd=tree, env=env,
                        capture_output=True, text=True, check=False)
  if done.returncode:
    raise SystemExit(f"error: measuring {tree} ({mode}) failed: "
                     f"{done.stderr.strip().splitlines()[-1:]}")
  return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv) -> int:
  before = next((a.split("=", 1)[1] for a in argv if a.startswith(
      "--before=")), None)
  count = 16
  print(f"# {cpu()}; {count} JPEGs of 12 and 8 megapixels", flush=True)
  with tempfile.TemporaryDirectory() as tmp:
    photos = os.path.join(tmp, "photos")
    write_photos(photos, count)
    trees = {"this tree": ROOT}
    if before:
      worktree = os.path.join(tmp, "before")
      subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach",
                      worktree, before], check=True, capture_output=True)
      trees = {f"before ({before})": worktree, **trees}
    results = {}
    try:
      for name, tree in trees.items():
        for mode in ("train", "eval"):
          results[name, mode] = measure(tree, photos, mode)
          print(json.dumps({"tree": name, "pipeline": mode,
                            **results[name, mode]}), flush=True)
    finally:
      if before:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force",
                        worktree], check=False, capture_output=True)
  print("| tree | pipeline | images/s | peak RSS above built (MB) |\n"
        "|---|---|---|---|")
  for (name, mode), r in results.items():
    print(f"| {name} | {mode} | {r['images_per_second']:.1f} | "
          f"{r['peak_above_built_mb']:.0f} |")
  if before:
    for mode in ("train", "eval"):
      old, new = results[f"before ({before})", mode], results[
          "this tree", mode]
      print(f"| ratio this/before | {mode} | "
            f"{new['images_per_second'] / old['images_per_second']:.2f}x | "
            f"{new['peak_above_built_mb'] / old['peak_above_built_mb']:.2f}x "
            "|")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
