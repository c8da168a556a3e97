"""`python -m bench.deploy --model_dir=RUN [--saved_model=RUN/export/N]`:
every converted format beside the SavedModel it came from, on the run's
test split: file size, top-1 accuracy and single-image latency.

Converts with train.convert into a temporary folder (every format; the int8
file calibrated on the run's training split), then runs each file where a
device would, in a process with numpy and LiteRT or onnxruntime only
(train/artefacts/standalone.py: no TensorFlow, not the project); the
SavedModel runs in TensorFlow here, through `serving_default` as TF Serving
calls it. Latency: the median of --latency_runs one-image calls after a
warm-up, on every core of this machine (each runtime's own thread pool).
One JSON line per format, then a table. Needs the `litert` and `onnx`
extras; measures IDX data sets (their pixels feed every runtime alike).
"""

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from typing import Dict, List

import numpy as np

from bench import cpu
from core.runtime import errors
from core.runtime.errors import InputError
from train import convert
from train.artefacts import standalone
from train.startup import cli

RUNTIMES = (("ai_edge_litert", "litert"), ("onnxruntime", "onnx"))


def measure(model_dir: str, saved_model: str, latency_runs: int
            ) -> List[Dict]:
  """One row per format, the SavedModel's first: format, bytes, top1,
  latency_ms.

  Raises:
    InputError: A runtime is missing, or the run's data is not in memory.
  """
  for module, extra in RUNTIMES:
    if importlib.util.find_spec(module) is None:
      raise InputError(f"bench.deploy runs the files in {module}: install "
                       f"the project's `{extra}` extra (pip install -e "
                       f"'.[{extra}]').")
  convert.require(convert.FORMATS)
  cli.load_tensorflow(deterministic=False)
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from train.artefacts.report import run_config
  from train.assembly import build
  from train.assembly import offline
  # pylint: enable=g-import-not-at-top
  test = build.load_data(run_config(model_dir)).test
  if not hasattr(test, "images"):
    raise InputError("bench.deploy measures runs on IDX data (pixels in "
                     "memory); this run reads files.")
  images, labels = np.asarray(test.images), np.asarray(test.labels)
  serve = offline.load_saved_model(saved_model).signatures["serving_default"]

  def saved(batch):
    return serve(images=tf.constant(batch))["logits"].numpy()

  rows = [_row("saved_model", _folder_bytes(saved_model),
               standalone.run(saved, images, 256), labels,
               standalone.latency(saved, images[:1], latency_runs))]
  with tempfile.TemporaryDirectory() as tmp:
    written = convert.convert(saved_model, tuple(convert.FORMATS),
                              output_dir=tmp, model_dir=model_dir,
                              report=lambda line: None)
    for name, path in written.items():
      run = standalone.run_apart(path, images, batch=256,
                                 latency_runs=latency_runs,
                                 threads=os.cpu_count())
      rows.append(_row(name, os.path.getsize(path), run["logits"], labels,
                       float(run["latency_s"])))
  return rows


def _row(name: str, size: int, logits: np.ndarray, labels: np.ndarray,
         seconds: float) -> Dict:
  return {"format": name, "bytes": size,
          "top1": float((logits.argmax(-1) == labels).mean()),
          "latency_ms": seconds * 1e3}


def _folder_bytes(folder: str) -> int:
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(folder) for name in names)


def render(rows: List[Dict]) -> str:
  """The rows as a table, top-1 also as points from the SavedModel's."""
  base = rows[0]["top1"]
  lines = ["| format | size | top-1 | vs SavedModel | latency, 1 image |",
           "|---|---:|---:|---:|---:|"]
  for row in rows:
    lines.append(f"| {row['format']} | {row['bytes'] / 1e6:.2f} MB | "
                 f"{100 * row['top1']:.2f} % | "
                 f"{100 * (row['top1'] - base):+.2f} | "
                 f"{row['latency_ms']:.2f} ms |")
  return "\n".join(lines)


def main(argv: List[str]) -> int:
  parser = argparse.ArgumentParser(prog="python -m bench.deploy",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--model_dir", required=True)
  parser.add_argument("--saved_model",
                      help="default: the run's newest export version")
  parser.add_argument("--latency_runs", type=int, default=200)
  args = parser.parse_args(argv)
  saved_model = args.saved_model or _newest_export(args.model_dir)
  try:
    rows = measure(args.model_dir, saved_model, args.latency_runs)
  except errors.EngineError as e:
    return cli.fail(str(e), e.exit_code)
  print(f"# {cpu()}; {saved_model}", flush=True)
  for row in rows:
    print(json.dumps(row))
  print(render(rows))
  return 0


def _newest_export(model_dir: str) -> str:
  cli.load_tensorflow(deterministic=False)  # the kernels, before TF loads
  from train.artefacts import export  # pylint: disable=g-import-not-at-top
  folder = os.path.join(model_dir, "export")
  versions = export.versions(folder)
  if not versions:
    sys.exit(cli.fail(f"{folder} holds no export version; name one with "
                      "--saved_model."))
  return os.path.join(folder, str(versions[-1]))


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
