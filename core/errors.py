"""Errors that mean the user gave something wrong (a flag, a file, a folder).

The command line turns these into one line on stderr and a non-zero exit;
every other exception is a bug and keeps its traceback.
"""


class InputError(ValueError):
  """Something the user supplied cannot be used; the message says the fix."""


class DataError(InputError):
  """A data file is missing, unreadable or malformed."""


class TrainingError(Exception):
  """Training cannot go on (e.g. it diverged); checkpoints on disk are intact."""


class Preempted(Exception):
  """A SIGTERM/SIGINT arrived; a checkpoint was written; rerun to resume."""
