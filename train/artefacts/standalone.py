"""Runs a converted model with numpy and its runtime alone: a .tflite file in
LiteRT (`ai-edge-litert`), an .onnx file in onnxruntime; no TensorFlow and
nothing of this project, as on a device.

As a script (tests and bench/deploy.py start it through `run_apart`; it is
the one file a device needs beside the model):

  python -I standalone.py MODEL IMAGES.npy OUT.npz [--batch=N]
      [--latency_runs=K] [--threads=T]

reads uint8 images [N, H, W, C] and writes OUT.npz with `logits`
[N, classes], `latency_s` (the median of K one-image calls after a
warm-up; 0 without) and `modules` (the top-level modules the process
imported). As a script it refuses to import TensorFlow, Keras and this
project's packages, so a run proves the file needs none of them. A missing
runtime is one line on stderr and exit 2.
"""

import argparse
import importlib.abc
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

import numpy as np

# train/artefacts/serving.CONVERSION, repeated: this file imports nothing of
# the project (tests/train/artefacts/tflite_model_test.py checks they agree).
SIGNATURE = "conversion"
REFUSED = ("tensorflow", "tf_keras", "keras", "train", "core", "layers",
           "tests", "bench", "tools")
EXIT_USAGE = 2  # core/runtime/errors.EXIT_USAGE
WARMUP = 3


class _Refuse(importlib.abc.MetaPathFinder):
  """Refuses REFUSED's packages: a device has none of them."""

  def find_spec(self, name, path=None, target=None):
    del path, target
    if name.split(".")[0] in REFUSED:
      raise ImportError(f"{name} is refused: a converted model runs "
                        "without it")


def _fail(message: str):
  print(f"error: {message}", file=sys.stderr)
  sys.exit(EXIT_USAGE)


def _missing(runtime: str, extra: str):
  _fail(f"this file needs {runtime}: pip install {runtime} (the project's "
        f"`{extra}` extra).")


def load(path: str, threads: Optional[int] = None
         ) -> Callable[[np.ndarray], np.ndarray]:
  """A function from uint8 images [N, H, W, C] to logits [N, classes]."""
  if path.endswith(".tflite"):
    try:
      from ai_edge_litert import interpreter  # pylint: disable=g-import-not-at-top
    except ImportError:
      _missing("ai-edge-litert", "litert")
    runner = interpreter.Interpreter(
        model_path=path, num_threads=threads).get_signature_runner(SIGNATURE)
    return lambda images: runner(images=images)["logits"]
  if path.endswith(".onnx"):
    try:
      import onnxruntime  # pylint: disable=g-import-not-at-top
    except ImportError:
      _missing("onnxruntime", "onnx")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or 0  # 0: onnxruntime's choice
    session = onnxruntime.InferenceSession(
        path, options, providers=["CPUExecutionProvider"])
    return lambda images: session.run(["logits"], {"images": images})[0]
  _fail(f"{path}: not a .tflite or .onnx file.")


def run(model: Callable[[np.ndarray], np.ndarray], images: np.ndarray,
        batch: int) -> np.ndarray:
  """`model`'s logits for `images`, `batch` at a time."""
  return np.concatenate([model(images[start:start + batch])
                         for start in range(0, len(images), batch)])


def latency(model: Callable[[np.ndarray], np.ndarray], image: np.ndarray,
            runs: int) -> float:
  """The median seconds of `runs` calls on one image, after WARMUP."""
  for _ in range(WARMUP):
    model(image)
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    model(image)
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main(argv: List[str]) -> int:
  sys.meta_path.insert(0, _Refuse())
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("model")
  parser.add_argument("images")
  parser.add_argument("output")
  parser.add_argument("--batch", type=int, default=0,
                      help="images per call (default: all at once)")
  parser.add_argument("--latency_runs", type=int, default=0)
  parser.add_argument("--threads", type=int, default=None)
  args = parser.parse_args(argv)
  images = np.load(args.images)
  model = load(args.model, args.threads)
  logits = run(model, images, args.batch or len(images))
  seconds = latency(model, images[:1], args.latency_runs) if (
      args.latency_runs) else 0.0
  modules = sorted({name.split(".")[0] for name in sys.modules})
  np.savez(args.output, logits=logits, latency_s=seconds,
           modules=np.array(modules))
  return 0


def run_apart(model: str, images: np.ndarray, *, batch: int = 0,
              latency_runs: int = 0, threads: Optional[int] = None,
              timeout: float = 600) -> Dict[str, np.ndarray]:
  """Runs this file as a script on `images` in a process of its own
  (isolated: no PYTHONPATH, no working folder on the path, in a temporary
  folder) and returns what it wrote.

  Raises:
    RuntimeError: The process failed; with its stderr's last lines.
  """
  # Only the project calls this (the script never does): its file layer.
  from core.runtime import files  # pylint: disable=g-import-not-at-top
  with files.scratch("standalone-") as tmp:
    np.save(os.path.join(tmp, "images.npy"), images)
    out = os.path.join(tmp, "out.npz")
    command = [sys.executable, "-I", os.path.abspath(__file__),
               os.path.abspath(model), os.path.join(tmp, "images.npy"), out,
               f"--batch={batch}", f"--latency_runs={latency_runs}"]
    if threads:
      command.append(f"--threads={threads}")
    done = subprocess.run(command, cwd=tmp, capture_output=True, text=True,
                          timeout=timeout, env={
                              k: v for k, v in os.environ.items()
                              if k != "PYTHONPATH"})
    if done.returncode:
      raise RuntimeError(f"{os.path.basename(model)} failed (exit "
                         f"{done.returncode}): {done.stderr[-2000:]}")
    with np.load(out) as result:
      return dict(result)


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
