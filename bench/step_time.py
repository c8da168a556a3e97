"""`python -m bench.step_time [FLAGFILE [REPLICAS [WINDOWS STEPS]]]`: the
engine's training step on a flag file's model and recipe, in images/s.

Reads the flag file's TrainConfig fields (stem, normalisation, optimizer,
augmentation, moving average, ...; `configs/fashion_mnist_cpu.cfg`, make
train's, by default), builds the engine on synthetic 28x28 data with its
global batch over REPLICAS logical CPU devices (2 by default), and times
6 windows of 10 steps of the compiled loop after 3 warm-up steps. Prints the
median window's milliseconds per step and images/s. Compare two commits by
running it in a clone of each, alternately (the machines here are shared).
"""

import statistics
import sys
import time
from typing import Tuple

WARMUP = 3
# Fields the bench sets itself (engine_on) or that do not reach the step.
_OWN = ("model_dir", "image_size", "global_batch_size", "num_cpu_devices")


def recipe(flagfile: str) -> Tuple[dict, int]:
  """The flag file's TrainConfig fields without the bench's own, and its
  global batch size."""
  from absl import flags
  from train import options
  flag_values = flags.FlagValues()
  options.define(flag_values)
  flag_values(["step_time", f"--flagfile={flagfile}"])
  return {k: v for k, v in options.values(flag_values).items()
          if k not in _OWN}, flag_values["global_batch_size"].value


def main(flagfile: str, replicas: int, windows: int = 6,
         steps: int = 10) -> None:
  from bench.engines import engine_on
  from core import datasets
  fields, batch = recipe(flagfile)
  engine, iterator, _ = engine_on(datasets.synthetic(1024), image_size=28,
                                  replicas=replicas, batch=batch, **fields)
  engine.trainer.run(iterator, WARMUP)
  times = []
  for _ in range(windows):
    start = time.perf_counter()
    engine.trainer.run(iterator, steps)
    times.append((time.perf_counter() - start) / steps)
  step = statistics.median(times)
  print(f"{flagfile}, {replicas} replica(s), global batch {batch}: "
        f"{step * 1e3:.1f} ms per step, {batch / step:.1f} images/s")


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "configs/fashion_mnist_cpu.cfg",
       *[int(arg) for arg in sys.argv[2:5]] or [2])
