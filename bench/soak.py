"""`python -m bench.soak`: no leaks, no stalls.

Trains the engine at 28x28 (global batch 64, 2 replicas on 2 logical CPUs as
`make train` does) and compares resident memory after 300 steps with after
50; then runs the distributed input pipeline alone and compares its images/s
with the step's. Prints both ratios and exits non-zero if a target is missed
(RSS growth > 5 %, pipeline < 20x the step).
"""

import sys
import time

BATCH, REPLICAS = 64, 2


def rss_mib() -> float:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 1024
  return float("nan")


def main() -> int:
  from bench.engines import engine_on
  from core.data import batches, datasets
  split = datasets.synthetic(4096)
  engine, it, strategy = engine_on(split, image_size=28, replicas=REPLICAS,
                                   batch=BATCH, steps_per_epoch=64)
  engine.loop.run(it, 50)
  after_50 = rss_mib()
  start = time.perf_counter()
  engine.loop.run(it, 250)
  step_rate = 250 * BATCH / (time.perf_counter() - start)
  after_300 = rss_mib()
  growth = after_300 / after_50 - 1
  data = batches.distributed(strategy, split, engine.feed.batch,
                             engine.feed.reading,
                             training=True, steps_per_epoch=64)
  data_it = iter(data)
  next(data_it)
  start = time.perf_counter()
  for _ in range(2000):
    next(data_it)
  pipe_rate = 2000 * BATCH / (time.perf_counter() - start)
  ratio = pipe_rate / step_rate
  print(f"RSS after 50 steps {after_50:.0f} MiB, after 300 {after_300:.0f} "
        f"MiB: {growth:+.1%} (target within 5 %)")
  print(f"step {step_rate:.0f} images/s, input pipeline alone "
        f"{pipe_rate:.0f} images/s: {ratio:.0f}x (target >= 20x)")
  return 0 if abs(growth) <= 0.05 and ratio >= 20 else 1


if __name__ == "__main__":
  sys.exit(main())
