"""One temporary folder for a test process and everything it starts.

The suite's fixtures make folders with `tempfile.mkdtemp()` (run folders,
exports, imported weights of up to 300 MB) and the commands the tests start
write their own temporaries. Left in the machine's temporary folder, one
`make test` leaked 82 folders (1.2 GB) there. `enter()` makes a folder of
its own and points `tempfile` and `TMPDIR` (which child processes inherit)
at it; `leave()` restores both and removes the folder with everything in
it. tests/conftest.py enters one as each pytest process starts; the root
is left at the process's exit, after the exit handlers registered later
(TensorFlow's test folder removes itself then, and complains if it is gone).

A process killed before its exit handlers run (SIGKILL, a SIGTERM, a CI
job's time limit) cannot remove its root: a root's name carries its
process's id, and `enter()` first removes the roots in the same folder
whose process is gone. One whose id is in use again is kept (safe: removed
by a later suite once that process ends).
"""

import atexit
import os
import re
import shutil
import tempfile

PREFIX = "googlenet-tests-"
_OWNED = re.compile(re.escape(PREFIX) + r"(\d+)-")


class Root:
  """The folder made, and what `tempfile` and `TMPDIR` were before it."""

  def __init__(self, path: str, tempdir, tmpdir_variable):
    self.path = path
    self.tempdir = tempdir
    self.tmpdir_variable = tmpdir_variable


def enter(leave_at_exit: bool = False) -> Root:
  sweep(tempfile.gettempdir())
  path = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
  root = Root(path, tempfile.tempdir, os.environ.get("TMPDIR"))
  tempfile.tempdir = path
  os.environ["TMPDIR"] = path
  if leave_at_exit:
    atexit.register(leave, root)
  return root


def leave(root: Root) -> None:
  tempfile.tempdir = root.tempdir
  if root.tmpdir_variable is None:
    os.environ.pop("TMPDIR", None)
  else:
    os.environ["TMPDIR"] = root.tmpdir_variable
  shutil.rmtree(root.path, ignore_errors=True)


def sweep(folder: str) -> list:
  """Removes the roots in `folder` whose process is gone; returns them."""
  try:
    names = os.listdir(folder)
  except OSError:
    return []
  removed = []
  for name in names:
    owner = _OWNED.match(name)
    path = os.path.join(folder, name)
    if (owner and not _alive(int(owner.group(1)))
        and os.path.isdir(path) and not os.path.islink(path)):
      shutil.rmtree(path, ignore_errors=True)
      removed.append(path)
  return removed


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's process
    return True
  return True
