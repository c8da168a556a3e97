"""`python -m bench.step_time [FLAGFILE [REPLICAS [WINDOWS STEPS]]]`: the
engine's training step on a flag file's model and recipe, in images/s.

Reads the flag file's RunConfig fields (stem, normalisation, optimizer,
augmentation, moving average, image size, global batch, ...;
`configs/fashion_mnist_cpu.cfg`, make train's, by default), builds the
engine on synthetic 28x28 images (resized on the device to the flag file's
image size) over REPLICAS logical CPU devices (2 by default), and times 6
windows of 10 steps of the compiled loop after 3 warm-up steps, on the CPU
kernels the command would run (oneDNN's unless the file says
--deterministic; train/startup/kernels.py). Prints the median window's
milliseconds per step, images/s and the kernels. Compare two commits by
running it in a clone of each, alternately (the machines here are shared).
"""

import statistics
import sys
from typing import Tuple

WARMUP = 3
# Fields engine_on takes as arguments, or sets itself.
_OWN = ("model_dir", "image_size", "global_batch_size", "num_cpu_devices")


def config_fields(flagfile: str) -> dict:
  """Every RunConfig field as the flag file sets it (defaults elsewhere);
  imports no TensorFlow."""
  from absl import flags
  from train.startup import options
  flag_values = flags.FlagValues()
  options.define(flag_values)
  flag_values(["step_time", f"--flagfile={flagfile}"])
  return options.values(flag_values)


def recipe(flagfile: str) -> Tuple[dict, int, int]:
  """The flag file's RunConfig fields without `_OWN`, its image size and
  its global batch size."""
  fields = config_fields(flagfile)
  return ({k: v for k, v in fields.items() if k not in _OWN},
          fields["image_size"], fields["global_batch_size"])


def main(flagfile: str, replicas: int, windows: int = 6,
         steps: int = 10) -> None:
  fields, image_size, batch = recipe(flagfile)
  # The command's kernels, chosen before TensorFlow's import as train.main
  # does: on a CPU where TF would not pick oneDNN itself (an AVX2 EPYC) its
  # own kernels run at half the speed.
  from train.startup import cli
  from train.startup import kernels
  cli.load_tensorflow(fields["deterministic"])
  from bench.contenders import timed_windows
  from bench.engines import engine_on
  from core.data import datasets
  engine, iterator, _ = engine_on(datasets.synthetic(1024),
                                  image_size=image_size, replicas=replicas,
                                  batch=batch, **fields)
  measure = timed_windows(lambda n: engine.loop.run(iterator, n), batch)
  rate = statistics.median(measure(WARMUP, windows, steps))
  print(f"{flagfile}, {replicas} replica(s), global batch {batch}, image "
        f"{image_size}: {batch / rate * 1e3:.1f} ms per step, {rate:.1f} "
        "images/s, "
        + ("oneDNN's kernels" if kernels.onednn_enabled() else
           "TensorFlow's kernels"))


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "configs/fashion_mnist_cpu.cfg",
       *[int(arg) for arg in sys.argv[2:5]] or [2])
