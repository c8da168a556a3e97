"""Which CPU kernels TensorFlow runs: oneDNN's or its own (Eigen).

TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 VNNI/BF16 or AMX.
Elsewhere (e.g. an AVX2 AMD EPYC) it falls back to Eigen, which trains this
network at half the speed: 338 against 668 images/s at 28x28 on 2 cores, 2
replicas (docs/experiments/2026-11-speed.md). So the engine asks for oneDNN
unless the run is --deterministic: TF's op determinism covers its own kernels,
and a bitwise-exact resume once differed (Adam slots, 1e-4 relative) with
oneDNN's. A TF_ENABLE_ONEDNN_OPTS the user set always wins.

The choice is read once, when TensorFlow is imported, so `choose` must run
before that; this module imports nothing heavy.
"""

import os
import sys

VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def choose(deterministic: bool) -> None:
  """Sets TF_ENABLE_ONEDNN_OPTS for this process unless it is already set:
  "0" (TensorFlow's kernels) for a deterministic run, "1" otherwise.

  Once TensorFlow is imported the choice is made: the variable is then left
  alone, since setting it would change nothing here and would only leak into
  the processes this one starts (a `train.fit` in a user's program must not
  pick the kernels of the commands that program runs later).
  """
  if "tensorflow" not in sys.modules:
    os.environ.setdefault(VARIABLE, "0" if deterministic else "1")


def onednn_enabled() -> bool:
  """Whether the imported TensorFlow runs oneDNN's kernels (False where the
  build cannot say)."""
  try:
    from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  return bool(_pywrap_util_port.IsMklEnabled())
