"""One run per `model_dir`: an exclusive lock the OS releases at death.

Two runs on one folder (a scheduler restarting a job whose old copy is not
yet dead does exactly this) would both resume from the same checkpoint and
interleave checkpoints, event files and exports. The run (the chief, in a
multi-worker run) holds a POSIX record lock (`fcntl.lockf`) on
`<model_dir>/.run.lock` for its whole life. The kernel drops it when the
process exits or is killed, so a killed run never blocks its restart, and
the lock works on NFS, where `flock` may not. The file's text names the
holder (pid, host, start time) for the second run's one-line error; the file
itself is never removed (removing it would let two runs lock two different
files of the same name).
"""

import datetime
import fcntl
import json
import os
import socket
from typing import Optional

from core.runtime.errors import InputError

LOCK_NAME = ".run.lock"


class RunLock:
  """Context manager holding `<directory>/.run.lock`; a no-op if not
  `enabled` (a multi-worker run's non-chief workers)."""

  def __init__(self, directory: str, *, enabled: bool = True):
    self.path = os.path.join(directory, LOCK_NAME)
    self.enabled = enabled
    self._fd: Optional[int] = None

  def __enter__(self) -> "RunLock":
    if not self.enabled:
      return self
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      holder = _describe(os.pread(fd, 4096, 0))
      os.close(fd)
      folder = os.path.dirname(self.path)
      raise InputError(
          f"`model_dir` {folder!r} is in use by another run ({holder}); "
          "wait for it to end or stop it, or pass another --model_dir."
      ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({
        "pid": os.getpid(), "host": socket.gethostname(),
        "started": datetime.datetime.now().astimezone().isoformat(
            timespec="seconds")}).encode(), 0)
    self._fd = fd
    return self

  def __exit__(self, *exc) -> None:
    if self._fd is not None:
      fcntl.lockf(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None


def _describe(text: bytes) -> str:
  """"pid 123 on host h, since ..." from the lock file's text."""
  try:
    holder = json.loads(text.decode())
    return (f"pid {holder['pid']} on host {holder['host']}, started "
            f"{holder['started']}")
  except (ValueError, KeyError, TypeError):
    return "its pid is not written yet"
