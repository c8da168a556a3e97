"""Shared test helpers: run the real command line in a subprocess."""

import os
import subprocess
import sys
from typing import Sequence

from core.data import datasets
from train.startup import config as config_lib

# The synthetic set's facts, as its loader reports them.
SYNTHETIC_INFO = datasets.load("synthetic", synthetic_size=8,
                               validation_size=0).info

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env() -> dict:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
  env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
  return env


# The commands the tests start compare CPU numbers: they run on the CPU
# on any machine (tests/conftest.py).
ON_CPU = "--device=cpu"


def _on_cpu(args: Sequence[str]) -> list:
  return list(args) + ([] if any(a.startswith("--device") for a in args)
                       else [ON_CPU])


def cli(args: Sequence[str], *, timeout: float = 900, env=None, **kwargs):
  """Runs `python -m train.main ARGS --device=cpu` from the project
  root (`env`: variables to set on top of the suite's)."""
  return subprocess.run([sys.executable, "-m", "train.main", *_on_cpu(args)],
                        cwd=ROOT, env=dict(_env(), **(env or {})),
                        capture_output=True, text=True, timeout=timeout,
                        **kwargs)


def python(*args: str, timeout: float = 600, env=None):
  """Runs `python ARGS` (e.g. "-c", code) in a fresh process, where TF is
  not initialised yet, on the CPU (`env`: variables to set on top)."""
  return subprocess.run([sys.executable, *args], cwd=ROOT,
                        env=dict(_env(), CUDA_VISIBLE_DEVICES="",
                                 **(env or {})),
                        capture_output=True, text=True, timeout=timeout)


def python_with_input(text: str, *args: str, timeout: float = 120):
  """Like `python`, with `text` on stdin."""
  return subprocess.run([sys.executable, *args], cwd=ROOT,
                        env=dict(_env(), CUDA_VISIBLE_DEVICES=""),
                        input=text, capture_output=True, text=True,
                        timeout=timeout)


def popen(args: Sequence[str]) -> subprocess.Popen:
  """Starts `python -m train.main ARGS --device=cpu`; stdout is
  line-buffered text."""
  return subprocess.Popen([sys.executable, "-m", "train.main",
                           *_on_cpu(args)],
                          cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


# The network of the tests whose subject is the machinery around it (the
# loop, resume, faults, the cluster, the commands): GoogLeNet with two of
# its nine inception blocks, 4a and 4d where the auxiliary heads sit, so
# every kind of layer and all three heads are there. A command's run costs
# about half the full network's (20 against 43 s for a fault-test run,
# most of it tracing and the export). The full network stays in the
# conformance and layer tests, the end-to-end run (train, resume, export,
# TensorBoard), the image-folder run and one distribution case.
SMALL_BLOCKS = ("4a", "4d")
SMALL_NETWORK = "--blocks=" + ",".join(SMALL_BLOCKS)
FULL_NETWORK = "--blocks=" + ",".join(config_lib.BLOCKS)


def small_run_flags(model_dir: str, *extra: str) -> list:
  """A few steps on the synthetic set, 2 replicas, 28x28, the small network:
  a fraction of a second per step (FULL_NETWORK in `extra` for the paper's)."""
  return [f"--model_dir={model_dir}", "--dataset=synthetic",
          "--strategy=mirrored", "--num_cpu_devices=2", "--image_size=28",
          "--global_batch_size=16", "--validation_size=64",
          "--train_examples=160", "--steps_per_loop=5", SMALL_NETWORK,
          *extra]


_STRATEGIES = {}


def parts(devices: Sequence[str], *, steps_per_epoch: int, total_steps: int,
          in_memory: bool = False, **config):
  """A training run's parts (train/assembly/build.Parts) for the synthetic
  set's facts over MirroredStrategy on `devices`; `config` holds
  RunConfig fields (model_dir is unused)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from core.runtime import distribution  # pylint: disable=g-import-not-at-top
  # pylint: disable-next=g-import-not-at-top
  from train.startup.config import RunConfig
  from train.assembly import build  # pylint: disable=g-import-not-at-top
  # One strategy per device list for the whole process, as in a real run:
  # two strategies over the same devices number their collectives from the
  # same start, and a second engine whose all-reduce has another shape (a
  # model with batch normalisation) then collides with the first's.
  key = tuple(devices)
  if key not in _STRATEGIES:
    _STRATEGIES[key] = tf.distribute.MirroredStrategy(list(devices))
  strategy = _STRATEGIES[key]
  config = RunConfig(**dict({"model_dir": "/unused", "image_size": 28,
                               "num_cpu_devices": len(devices),
                               "blocks": SMALL_BLOCKS}, **config))
  return build.training_parts(
      config, strategy, SYNTHETIC_INFO,
      distribution.split_batch(config.global_batch_size, strategy),
      steps_per_epoch=steps_per_epoch, total_steps=total_steps,
      in_memory=in_memory)


def write_image_folder(root: str, *, classes=("cat", "dog", "eel"),
                       per_class: int = 6, splits=("train",),
                       channels: int = 3, seed: int = 0) -> dict:
  """Writes a small learnable image folder: `root/<split>/<class>/*`, half
  PNG and half JPEG, of varying sizes (20 to 60 pixels a side); each class
  has its own colour. Returns {split: [(path, label)]}."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(seed)
  written = {}
  for split in splits:
    written[split] = []
    for label, name in enumerate(classes):
      folder = os.path.join(root, split, name)
      os.makedirs(folder, exist_ok=True)
      for i in range(per_class):
        h, w = rng.randint(20, 61, size=2)
        base = np.full([h, w, channels], 40 + 80 * label, np.float64)
        image = np.clip(base + rng.randn(h, w, channels) * 20, 0,
                        255).astype(np.uint8)
        if i % 2:
          data, ext = tf.io.encode_jpeg(image, quality=95).numpy(), "jpg"
        else:
          data, ext = tf.io.encode_png(image).numpy(), "png"
        path = os.path.join(folder, f"{i:03d}.{ext}")
        with open(path, "wb") as f:
          f.write(data)
        written[split].append((path, label))
  return written


# What a user's mistake prints: one line on stderr, nothing else.
ONE_LINE = r"^error: [^\n]*\n$"


def checkpoint_variables(prefix: str) -> dict:
  """Every tensor of the checkpoint at `prefix`, on any file system. Not
  tf.train.load_checkpoint: given a ram:// prefix it answers "Couldn't find
  'checkpoint' file or checkpoints" (TF 2.21)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  reader = tf.compat.v1.train.NewCheckpointReader(prefix)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}
