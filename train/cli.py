"""What every command (train.main, train.evaluate, train.predict) does the
same way: one `error: ...` line on stderr with an exit code, and absl's flag
parser turned into such a line instead of a traceback."""

import sys
from typing import List

from absl import flags

from core import errors


def fail(message: str, code: int = errors.EXIT_USAGE) -> int:
  """Prints `error: message` on stderr; returns `code` for the exit."""
  print(f"error: {message}", file=sys.stderr, flush=True)
  return code


def parse_flags(argv: List[str]) -> List[str]:
  """absl's parser, but a bad flag is one line on stderr and exit 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(fail(f"{e}; see --helpfull."))
