"""`python -m bench.experiments.amx_profile MODE ...`: GoogLeNet's training
step on one replica, timed or profiled (docs/experiments/2026-12-amx-profile.md).

  time PRECISION [BATCH [STEPS [jit]]]  the engine's compiled loop at 224x224:
      the median of 5 windows of STEPS steps after 2 warm-up steps, images/s.
  verbose PRECISION [BATCH [STEPS [jit]]]  the same run between two marker
      lines; run it with ONEDNN_VERBOSE=1 and keep the log.
  summarise LOG STEPS  oneDNN's primitive time between the markers, per step:
      by kind and direction, by implementation (reorders by layouts), by shape.
  ab PRECISION BATCH ROUNDS IMAGE VARIANT...  forward and backward (no
      optimizer) of the paper GoogLeNet at IMAGExIMAGE once per variant,
      alternated step by step in one process: on a shared machine a busy spell
      hits every variant alike. A variant is `new` (this tree), `tree:ROOT`
      (the layers' formulations and inception block of another tree, e.g. a
      `git archive` of the commit before a change) or `conv1x1` (every
      pointwise product as tf.nn.conv2d with its TF gradient).
"""

import collections
import statistics
import sys
import time

from bench import onednn_profile

# The markers bench.onednn_profile counts between.
MARK = onednn_profile.MARK
WARMUP = 2
WINDOWS = 5


def conv1x1():
  """Patches in the conv1x1 variant; returns its undo."""
  from layers import formulations
  choose = formulations.choose
  def patched(*args, **kwargs):
    path = choose(*args, **kwargs)
    return "convolution" if path == "pointwise" else path
  formulations.choose = patched
  return lambda: setattr(formulations, "choose", choose)


def tree(root: str):
  """Patches in another tree's formulations.conv2d and Inception.__call__;
  returns the undo."""
  import importlib.util
  from layers import formulations
  from layers import inception
  def load(name):
    spec = importlib.util.spec_from_file_location(
        f"{root}/{name}", f"{root}/layers/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
  conv2d, call = formulations.conv2d, inception.Inception.__call__
  formulations.conv2d = load("formulations").conv2d
  inception.Inception.__call__ = load("inception").Inception.__call__
  def undo():
    formulations.conv2d = conv2d
    inception.Inception.__call__ = call
  return undo


def patch(variant: str):
  if variant.startswith("tree:"):
    return tree(variant[len("tree:"):])
  return conv1x1() if variant == "conv1x1" else (lambda: None)


def loop(precision: str, batch: int, jit: bool):
  """`run(n)`: n compiled training steps of the engine at 224x224."""
  from bench.engines import engine_on
  from core.data import datasets
  trainer, iterator, _ = engine_on(
      datasets.synthetic(1024), image_size=224, replicas=1, batch=batch,
      mixed_precision=precision, jit_compile=jit)
  return lambda n: trainer.loop.run(iterator, n)


def timed(precision: str, batch: int, steps: int, jit: bool) -> None:
  from bench.contenders import timed_windows
  rates = timed_windows(loop(precision, batch, jit), batch)(WARMUP, WINDOWS,
                                                           steps)
  windows = " ".join(f"{r:.1f}" for r in rates)
  print(f"{precision} batch {batch} jit={jit}: median "
        f"{statistics.median(rates):.1f} img/s; windows {windows}")


def verbose(precision: str, batch: int, steps: int, jit: bool) -> None:
  run = loop(precision, batch, jit)
  run(WARMUP)
  print(MARK, flush=True)
  start = time.perf_counter()
  run(steps)
  print(MARK, f"{(time.perf_counter() - start) / steps * 1e3:.0f} ms/step "
        "under verbose", flush=True)


def ab(precision: str, batch: int, rounds: int, image: int,
       variants: list) -> None:
  import tensorflow as tf
  from core.optim import losses
  from layers.googlenet import GoogLeNet
  dtype = tf.float32 if precision == "float32" else tf.bfloat16
  model = GoogLeNet(10, 1, image)
  images = tf.random.uniform([batch, image, image, 1], -1, 1)
  labels = tf.random.uniform([batch], 0, 10, tf.int32)
  steps = {}
  for variant in variants:
    undo = patch(variant)
    @tf.function(autograph=False)
    def step():
      with tf.GradientTape() as tape:
        outputs = model(tf.cast(images, dtype), training=True)
        loss = tf.reduce_mean(losses.googlenet_loss(outputs, labels).total)
      return tf.linalg.global_norm(tape.gradient(
          loss, model.trainable_variables))
    step.get_concrete_function()  # traced with the patch in place
    undo()
    steps[variant] = step
  wall = {variant: [] for variant in variants}
  cpu = {variant: [] for variant in variants}
  for _ in range(rounds + 1):
    for variant, step in steps.items():
      start, start_cpu = time.perf_counter(), time.process_time()
      step().numpy()
      wall[variant].append(time.perf_counter() - start)
      cpu[variant].append(time.process_time() - start_cpu)
  for variant, seconds in wall.items():
    median = statistics.median(seconds[1:])  # the first ran cold
    print(f"{precision} {image}x{image} batch {batch} {variant:14s} "
          f"{median * 1e3:5.0f} ms {batch / median:6.1f} img/s (min "
          f"{min(seconds[1:]) * 1e3:.0f} ms; CPU time "
          f"{statistics.median(cpu[variant][1:]) * 1e3:.0f} ms)")


def _kind(run) -> str:
  """bench.onednn_profile's kind, pooling split by direction."""
  kind = onednn_profile.kind(run.primitive, run.direction)
  backward = run.direction.startswith("backward")
  return kind + (" bwd" if backward and kind == "pooling" else "")


def summarise(log: str, steps: int) -> None:
  """bench.onednn_profile's table of the log between the markers, then the
  time by kind, by implementation (reorders with their layouts) and by
  shape."""
  with open(log, errors="replace") as f:
    lines = f.read().splitlines()
  runs = onednn_profile.executions(lines, steps)
  print(onednn_profile.table(onednn_profile.summarise(lines, steps)))
  by_kind, by_impl, by_shape = (collections.Counter(), collections.Counter(),
                                collections.Counter())
  for run in runs:
    kind = _kind(run)
    by_kind[kind] += run.ms
    layouts = run.fields[3] if kind == "reorder" else ""
    by_impl[f"{kind} | {run.implementation} {layouts}"] += run.ms
    by_shape[f"{kind} {run.fields[-2]}"] += run.ms
  for title, counter in (("by kind:", by_kind),
                         ("by implementation:", by_impl),
                         ("by shape:", by_shape)):
    print(title)
    for key, ms in counter.most_common(40):
      print(f"  {ms:8.1f} ms  {key}")


def main(mode: str, args: list) -> None:
  if mode == "summarise":
    summarise(args[0], int(args[1]))
  elif mode == "ab":
    ab(args[0], int(args[1]), int(args[2]), int(args[3]), args[4:])
  else:
    {"time": timed, "verbose": verbose}[mode](
        args[0], int(args[1]) if len(args) > 1 else 64,
        int(args[2]) if len(args) > 2 else 3, "jit" in args[3:])


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2:])
