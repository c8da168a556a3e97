"""Failures the user can act on, each with its exit code.

The command line turns an `EngineError` into one line on stderr and exits
with the error's `exit_code`; every other exception is a bug and keeps its
traceback. The codes follow sysexits.h where one fits.
"""

import errno

EXIT_USAGE = 2        # bad flags, files or folders: fix the input
EXIT_DIVERGED = 3     # the loss or gradients stayed non-finite
EXIT_CLUSTER = 69     # EX_UNAVAILABLE: a peer worker was lost; restart all
EXIT_EXPORT = 70      # EX_SOFTWARE: the export did not reproduce the model
EXIT_NO_SPACE = 74    # EX_IOERR: the disk filled up; free space and rerun
EXIT_PREEMPTED = 75   # EX_TEMPFAIL: checkpointed; the same command resumes


class EngineError(Exception):
  """Base of the failures that end a run with a one-line message."""
  exit_code = 1


class InputError(EngineError, ValueError):
  """Something the user supplied cannot be used; the message says the fix."""
  exit_code = EXIT_USAGE


class DataError(InputError):
  """A data file is missing, unreadable or malformed."""


class TrainingError(EngineError):
  """Training cannot go on (e.g. it diverged); checkpoints on disk are intact."""
  exit_code = EXIT_DIVERGED


class ClusterError(EngineError):
  """A worker of a multi-worker run was lost (killed, hung, unreachable) or
  never joined; every worker stops, and restarting all of them resumes from
  the newest checkpoint."""
  exit_code = EXIT_CLUSTER


class ExportError(EngineError):
  """A SavedModel read back from disk did not reproduce the trained model;
  nothing was published, the checkpoint is intact."""
  exit_code = EXIT_EXPORT


class NoSpaceError(EngineError):
  """A write failed for lack of disk space; what was written before is
  intact, and the half-written file has been removed."""
  exit_code = EXIT_NO_SPACE


class Preempted(EngineError):
  """A SIGTERM/SIGINT/SIGHUP arrived, or the run's lease could not be
  renewed; a checkpoint was written; rerun to resume."""
  exit_code = EXIT_PREEMPTED


def is_no_space(error: BaseException) -> bool:
  """Whether `error` is a write that failed for lack of disk space (an
  OSError with ENOSPC, or TensorFlow's error wrapping one)."""
  return (getattr(error, "errno", None) == errno.ENOSPC
          or "No space left on device" in str(error))


def megabytes(num_bytes: float) -> str:
  """`num_bytes` as a short MB figure for messages."""
  return f"{num_bytes / 1e6:.0f} MB" if num_bytes >= 1e6 else (
      f"{num_bytes / 1e6:.2f} MB")
