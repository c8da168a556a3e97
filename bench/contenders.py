"""One contender per process: train GoogLeNet on in-memory synthetic uint8
images and report images/s (median over timed windows) and peak memory.

Every contender trains the same network: the seed's GoogLeNet with true 3x3
and 5x5 branches, one input channel resized on the device to `image_size`,
both aux heads (loss weights 1, 0.3, 0.3), Adam with the seed's defaults,
with the engine's --mixed_precision, --stem, --norm and --global_batch_size
(64, the seed's, by default). Run as `python -m bench.contenders NAME
IMAGE_SIZE REPLICAS WARMUP WINDOWS STEPS [--precision=P] [--stem=S]
[--norm=N] [--batch=B]`; prints one JSON line.
"""

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import time
from typing import NamedTuple

import numpy as np

CLASSES = 10


class Options(NamedTuple):
  """The engine's options every contender follows."""
  precision: str = "float32"  # or mixed_bfloat16
  stem: str = "paper"
  norm: str = "none"
  batch: int = 64


def _images(n=1024):
  rng = np.random.RandomState(0)
  return (rng.randint(0, 256, [n, 28, 28, 1]).astype(np.uint8),
          rng.randint(0, CLASSES, [n]).astype(np.int32))


def timed_windows(run_steps, batch):
  """`measure(warmup, windows, steps)` -> images/s per window, for a
  contender that runs n steps of `batch` images per call."""
  def measure(warmup, windows, steps_per_window):
    run_steps(warmup)
    rates = []
    for _ in range(windows):
      start = time.perf_counter()
      run_steps(steps_per_window)
      rates.append(steps_per_window * batch / (time.perf_counter() - start))
    return rates
  return measure


def engine(image_size, replicas, options, jit_compile=False):
  from bench.engines import engine_on
  from core.data import datasets
  e, it, _ = engine_on(datasets.Split(*_images()), image_size=image_size,
                       replicas=max(replicas, 1), batch=options.batch,
                       jit_compile=jit_compile,
                       mixed_precision=options.precision, stem=options.stem,
                       norm=options.norm)
  params = sum(int(np.prod(v.shape)) for v in e.step.model.trainable_variables)
  measure = timed_windows(lambda n: e.loop.run(it, n), options.batch)
  return params, measure, {}


def keras_fit(image_size, replicas, options):
  os.environ.setdefault("KERAS_BACKEND", "tensorflow")
  import tensorflow as tf
  if replicas > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
  import keras
  from bench import keras_googlenet
  keras.mixed_precision.set_global_policy(options.precision)
  strategy = (tf.distribute.MirroredStrategy(
      [f"/cpu:{i}" for i in range(replicas)]) if replicas > 1 else None)
  scope = strategy.scope() if strategy else contextlib.nullcontext()
  with scope:
    model = keras_googlenet.build(image_size, CLASSES, stem=options.stem,
                                  norm=options.norm)
    model.compile(optimizer=keras.optimizers.Adam(),
                  loss=[keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True)] * 3, loss_weights=[1.0, 0.3, 0.3])
  images, labels = _images()
  ds = tf.data.Dataset.from_tensor_slices(
      (images, (labels, labels, labels))).repeat().batch(
          options.batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

  def measure(warmup, windows, steps_per_window):
    # One `fit` call for warm-up and every window, timed by a callback: a
    # `fit` call per window would charge Keras its per-call set-up (data
    # adapter, iterator, callbacks), up to 20 % of a 20-step window here.
    # The first window is timed from the end of the last warm-up step.
    if warmup < 1:
      raise ValueError(f"keras_fit needs a warm-up step to time from; "
                       f"received warmup={warmup}.")
    ends = []
    clock = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: ends.append(
            time.perf_counter()))
    model.fit(ds, epochs=1, steps_per_epoch=warmup + windows *
              steps_per_window, verbose=0, callbacks=[clock])
    marks = ends[warmup - 1::steps_per_window]
    return [steps_per_window * options.batch / (b - a)
            for a, b in zip(marks, marks[1:])]
  params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
  return params, measure, {}


def torch_compiled(image_size, replicas, options):
  """PyTorch as its CPU users run it fastest: channels-last, autocast to
  bfloat16 for mixed_bfloat16, `torch.compile`d (eager where compiling
  fails, and the report says why). One process on every core, whatever
  `replicas`."""
  del replicas
  import torch
  from bench import torch_googlenet
  torch.manual_seed(0)
  model = torch_googlenet.GoogLeNet(image_size, CLASSES, options.stem,
                                    options.norm)
  model = model.to(memory_format=torch.channels_last)
  opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
  images, labels = _images()
  x_all = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
  y_all = torch.from_numpy(labels).long()
  xent, batch = torch.nn.CrossEntropyLoss(), options.batch
  autocast = torch.autocast(
      "cpu", dtype=torch.bfloat16,
      enabled=options.precision == "mixed_bfloat16")
  state = {"i": 0, "forward": torch.compile(model)}

  def step():
    i = state["i"] % (len(y_all) // batch)
    state["i"] += 1
    x = x_all[i * batch:(i + 1) * batch].float() * (2 / 255) - 1
    if image_size != 28:
      x = torch.nn.functional.interpolate(x, size=image_size, mode="bilinear",
                                          align_corners=False)
    x = x.contiguous(memory_format=torch.channels_last)
    y = y_all[i * batch:(i + 1) * batch]
    with autocast:
      main, aux1, aux2 = state["forward"](x)
      loss = xent(main, y) + 0.3 * xent(aux1, y) + 0.3 * xent(aux2, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()

  mode = {"mode": "compiled"}
  try:
    step()  # compiles
  except Exception as e:  # pylint: disable=broad-except
    # No compiler, no headers, an unsupported CPU: its users get eager.
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
    mode["mode"] = f"eager (torch.compile failed: {reason})"
    state["forward"] = model

  def run_steps(n):
    for _ in range(n):
      step()
  params = sum(p.numel() for p in model.parameters())
  return params, timed_windows(run_steps, batch), mode


def engine_xla(image_size, replicas, options):
  return engine(image_size, replicas, options, jit_compile=True)


CONTENDERS = {"engine": engine, "engine_xla": engine_xla,
              "keras_fit": keras_fit, "torch_compiled": torch_compiled}


def main(argv):
  parser = argparse.ArgumentParser(prog="python -m bench.contenders")
  parser.add_argument("name", choices=sorted(CONTENDERS))
  for positional in ("image_size", "replicas", "warmup", "windows", "steps"):
    parser.add_argument(positional, type=int)
  for option, default in Options()._asdict().items():
    parser.add_argument(f"--{option}", type=type(default), default=default)
  args = parser.parse_args(argv[1:])
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  options = Options(args.precision, args.stem, args.norm, args.batch)
  params, measure, extra = CONTENDERS[args.name](args.image_size,
                                                 args.replicas, options)
  rates = measure(args.warmup, args.windows, args.steps)
  peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  print(json.dumps({"name": args.name, "image_size": args.image_size,
                    "replicas": args.replicas, **options._asdict(),
                    "params": params,
                    "images_per_second": statistics.median(rates),
                    "windows": rates, "peak_rss_mib": peak_kib / 1024,
                    **extra}))


if __name__ == "__main__":
  main(sys.argv)
