"""`python -m bench.run`: training images/s of the engine, Keras 3 `fit` and
PyTorch eager (if installed) on the same GoogLeNet, one process each, in one
run. Prints a markdown table of ratios, the engine's model FLOP utilisation
(analytic training FLOPs / a float32 matrix-product peak measured in this
run) and each contender's peak memory; writes it to bench/results/latest.md.
"""

import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (image size, warm-up steps, timed windows, steps per window)
PLANS = {224: (2, 3, 2), 28: (10, 5, 20)}


def contender(name, image_size, replicas):
  from train.startup import kernels  # imports nothing heavy
  warmup, windows, steps = PLANS[image_size]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  # Every TensorFlow contender on the kernels `train.main` picks (oneDNN,
  # train/startup/kernels.py), so the ratio compares loops, not kernel
  # libraries.
  env.setdefault(kernels.VARIABLE, "1")
  done = subprocess.run(
      [sys.executable, "-m", "bench.contenders", name, str(image_size),
       str(replicas), str(warmup), str(windows), str(steps)],
      cwd=ROOT, env=env, capture_output=True, text=True)
  if done.returncode:
    tail = done.stderr.strip().splitlines()[-1:] or ["?"]
    return {"name": name, "image_size": image_size, "replicas": replicas,
            "error": tail[0][:160]}
  return json.loads(done.stdout.strip().splitlines()[-1])


def matmul_peak_gflops(n=2048, repeats=20):
  """float32 matrix-product rate of this machine, through TensorFlow."""
  import time
  import tensorflow as tf
  a = tf.random.normal([n, n])
  b = tf.random.normal([n, n])
  run = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
  run().numpy()
  best = 0.0
  for _ in range(repeats):
    start = time.perf_counter()
    run().numpy()
    best = max(best, 2 * n ** 3 / (time.perf_counter() - start) / 1e9)
  return best


def training_gflops_per_image(image_size):
  import tensorflow as tf
  from bench import flops
  from layers.googlenet import GoogLeNet
  model = GoogLeNet(10, 1, image_size)
  forward = flops.forward_macs(
      lambda x: model(x, training=True, reference=True),
      tf.TensorSpec([1, image_size, image_size, 1]))
  return flops.training_flops_per_image(forward) / 1e9


def main():
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  have_torch = importlib.util.find_spec("torch") is not None
  results = []
  for size in (224, 28):
    names = ["engine", "keras_fit"] + (["torch_eager"] if have_torch else [])
    for name in names:
      results.append(contender(name, size, 1))
      print(json.dumps(results[-1]), flush=True)
    for name in ("engine", "keras_fit"):
      results.append(contender(name, size, 2))
      print(json.dumps(results[-1]), flush=True)
  peak = matmul_peak_gflops()
  cost = {size: training_gflops_per_image(size) for size in PLANS}
  table = render(results, peak, cost, have_torch)
  print(table)
  os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
  with open(os.path.join(ROOT, "bench", "results", "latest.md"), "w") as f:
    f.write(table + "\n")


def render(results, peak, cost, have_torch):
  import tensorflow as tf
  lines = [
      f"Measured {datetime.date.today()} on {platform.node() or 'this machine'}"
      f" ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
      f"), TensorFlow {tf.__version__}; global batch 64, Adam, synthetic "
      "uint8 28x28x1 images resized on the device; images/s = median of "
      "timed windows after warm-up.",
      f"float32 matmul peak measured in this run: {peak:.1f} GFLOP/s. "
      "Training cost (analytic, 3x forward): " + ", ".join(
          f"{s}x{s}: {c:.3f} GFLOP/image" for s, c in cost.items()) + ".",
      "" if have_torch else "PyTorch is not installed: no PyTorch column "
      "(`pip install torch==2.13.0`).", "",
      "| image | contender | replicas | params | images/s | engine / it | "
      "MFU | peak RSS MiB |",
      "|---|---|---|---|---|---|---|---|"]
  for r in results:
    engine = next((e for e in results if e["name"] == "engine"
                   and e["image_size"] == r["image_size"]
                   and e["replicas"] == r["replicas"]
                   and "error" not in e), None)
    if "error" in r:
      lines.append(f"| {r['image_size']} | {r['name']} | {r['replicas']} | "
                   f"| failed: {r['error']} | | | |")
      continue
    rate = r["images_per_second"]
    ratio = (f"{engine['images_per_second'] / rate:.2f}x" if engine
             and r["name"] != "engine" else "")
    mfu = rate * cost[r["image_size"]] / peak
    lines.append(f"| {r['image_size']} | {r['name']} | {r['replicas']} | "
                 f"{r['params']:,} | {rate:.1f} | {ratio} | {mfu:.0%} | "
                 f"{r['peak_rss_mib']:.0f} |")
  return "\n".join(lines)


if __name__ == "__main__":
  main()
