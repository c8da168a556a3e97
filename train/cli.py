"""What every command (train.main, train.evaluate, train.predict) does the
same way: one `error: ...` line on stderr with an exit code, and absl's flag
parser turned into such a line instead of a traceback."""

import importlib.util
import sys
from typing import List

from absl import flags

from core import errors


def fail(message: str, code: int = errors.EXIT_USAGE) -> int:
  """Prints `error: message` on stderr; returns `code` for the exit."""
  print(f"error: {message}", file=sys.stderr, flush=True)
  return code


def parse_flags(argv: List[str]) -> List[str]:
  """absl's parser, but a bad flag is one line on stderr and exit 2, and
  so is a missing TensorFlow (it comes from an extra, setup.cfg)."""
  try:
    rest = flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(fail(f"{e}; see --helpfull."))
  require_tensorflow()
  return rest


def require_tensorflow() -> None:
  """Exits with one line if TensorFlow is missing: it comes from the `cpu`
  or `gpu` extra (setup.cfg), which a plain `pip install -e .` leaves out."""
  if importlib.util.find_spec("tensorflow") is None:
    sys.exit(fail("TensorFlow is not installed; install the project with "
                  "pip install -e '.[cpu]' (or '.[gpu]' on a machine with "
                  "NVIDIA GPUs)."))
