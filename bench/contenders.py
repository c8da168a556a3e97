"""One contender per process: train GoogLeNet on in-memory synthetic uint8
images and report images/s (median over timed windows) and peak memory.

Every contender trains the same network: the seed's GoogLeNet with true 3x3
and 5x5 branches, one input channel resized on the device to `image_size`,
both aux heads (loss weights 1, 0.3, 0.3), Adam with the seed's defaults,
global batch 64. Run as `python -m bench.contenders NAME IMAGE_SIZE REPLICAS`;
prints one JSON line.
"""

import contextlib
import json
import os
import resource
import statistics
import sys
import time

import numpy as np

BATCH = 64
CLASSES = 10


def _images(n=1024):
  rng = np.random.RandomState(0)
  return (rng.randint(0, 256, [n, 28, 28, 1]).astype(np.uint8),
          rng.randint(0, CLASSES, [n]).astype(np.int32))


def timed_windows(run_steps, batch=BATCH):
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


def engine(image_size, replicas, jit_compile=False):
  from bench.engines import engine_on
  from core.data import datasets
  e, it, _ = engine_on(datasets.Split(*_images()), image_size=image_size,
                       replicas=max(replicas, 1), batch=BATCH,
                       jit_compile=jit_compile)
  params = sum(int(np.prod(v.shape)) for v in e.model.trainable_variables)
  return params, timed_windows(lambda n: e.trainer.run(it, n))


def keras_fit(image_size, replicas):
  os.environ.setdefault("KERAS_BACKEND", "tensorflow")
  import tensorflow as tf
  if replicas > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
  import keras
  from bench import keras_googlenet
  strategy = (tf.distribute.MirroredStrategy(
      [f"/cpu:{i}" for i in range(replicas)]) if replicas > 1 else None)
  scope = strategy.scope() if strategy else contextlib.nullcontext()
  with scope:
    model = keras_googlenet.build(image_size, CLASSES)
    model.compile(optimizer=keras.optimizers.Adam(),
                  loss=[keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True)] * 3, loss_weights=[1.0, 0.3, 0.3])
  images, labels = _images()
  ds = tf.data.Dataset.from_tensor_slices(
      (images, (labels, labels, labels))).repeat().batch(
          BATCH, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

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
    return [steps_per_window * BATCH / (b - a)
            for a, b in zip(marks, marks[1:])]
  return model.count_params(), measure


def torch_eager(image_size, replicas):
  import torch
  from bench import torch_googlenet
  torch.manual_seed(0)
  model = torch_googlenet.GoogLeNet(image_size, CLASSES)
  opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
  images, labels = _images()
  x_all = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
  y_all = torch.from_numpy(labels).long()
  xent = torch.nn.CrossEntropyLoss()
  state = {"i": 0}

  def step():
    i = state["i"] % (len(y_all) // BATCH)
    state["i"] += 1
    x = x_all[i * BATCH:(i + 1) * BATCH].float() * (2 / 255) - 1
    if image_size != 28:
      x = torch.nn.functional.interpolate(x, size=image_size, mode="bilinear",
                                          align_corners=False)
    y = y_all[i * BATCH:(i + 1) * BATCH]
    main, aux1, aux2 = model(x)
    loss = xent(main, y) + 0.3 * xent(aux1, y) + 0.3 * xent(aux2, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()

  def run_steps(n):
    for _ in range(n):
      step()
  params = sum(p.numel() for p in model.parameters())
  return params, timed_windows(run_steps)


def engine_xla(image_size, replicas):
  return engine(image_size, replicas, jit_compile=True)


CONTENDERS = {"engine": engine, "engine_xla": engine_xla,
              "keras_fit": keras_fit,
              "torch_eager": torch_eager}


def main(argv):
  name, image_size, replicas = argv[1], int(argv[2]), int(argv[3])
  warmup, windows, steps = (int(a) for a in argv[4:7])
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  params, measure = CONTENDERS[name](image_size, replicas)
  rates = measure(warmup, windows, steps)
  peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  print(json.dumps({"name": name, "image_size": image_size,
                    "replicas": replicas, "params": params,
                    "images_per_second": statistics.median(rates),
                    "windows": rates, "peak_rss_mib": peak_kib / 1024}))


if __name__ == "__main__":
  main(sys.argv)
