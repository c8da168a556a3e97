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
job's time limit) cannot remove its root. Each root holds a lock file,
locked (`flock`) until `leave()` or its process's end; `enter()` first
removes the roots in the same folder whose lock, and every lock of the
roots directly inside it (pytest-xdist's workers make theirs in the
master's), it can take: the processes that made them are gone (commands
they started and that outlived them lose their folder). Process ids are
not used: they mean nothing to a suite in another container. Over NFS the
locks hold across hosts only with NFS locking on. A folder without the
lock file is not a root and is kept; a file system without `flock` gets
roots without one, never swept.
"""

import atexit
import fcntl
import os
import re
import shutil
import tempfile

PREFIX = "googlenet-tests-"
LOCK = ".owner.lock"
# What tempfile.mkdtemp(prefix=PREFIX) names: the prefix and 8 characters.
_NAME = re.compile(re.escape(PREFIX) + r"[a-z0-9_]{8}")


class Root:
  """The folder made, and what `tempfile` and `TMPDIR` were before it."""

  def __init__(self, path: str, tempdir, tmpdir_variable, lock=None):
    self.path = path
    self.lock = lock  # the open, locked file, or None without `flock`
    self.tempdir = tempdir
    self.tmpdir_variable = tmpdir_variable
    self.pid = os.getpid()


# The roots entered and not left: their locks stay open while the process
# lives even if a caller drops what enter() returned.
_ENTERED = []


def enter(leave_at_exit: bool = False) -> Root:
  sweep(tempfile.gettempdir())
  # Made under a name no sweep matches, locked, then renamed: a sweep
  # never sees a root whose lock is not taken yet.
  while True:
    staged = tempfile.mkdtemp(prefix="." + PREFIX)
    path = os.path.join(os.path.dirname(staged), os.path.basename(staged)[1:])
    if not os.path.lexists(path):  # a rename would replace an empty folder
      break
    os.rmdir(staged)
  # Not inherited by the commands a test starts (PEP 446): the lock is
  # this process's alone.
  # pylint: disable-next=consider-using-with
  lock = open(os.path.join(staged, LOCK), "w")
  try:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError:  # no `flock` here: a root without a lock, never swept
    lock.close()
    os.remove(os.path.join(staged, LOCK))
    lock = None
  os.rename(staged, path)
  root = Root(path, tempfile.tempdir, os.environ.get("TMPDIR"), lock)
  _ENTERED.append(root)
  tempfile.tempdir = path
  os.environ["TMPDIR"] = path
  if leave_at_exit:
    atexit.register(leave, root)
  return root


def leave(root: Root) -> None:
  if root.pid != os.getpid():  # a forked child's exit: the root is not its
    return
  tempfile.tempdir = root.tempdir
  if root.tmpdir_variable is None:
    os.environ.pop("TMPDIR", None)
  else:
    os.environ["TMPDIR"] = root.tmpdir_variable
  # The lock closed first: on NFS an open file that is removed becomes a
  # .nfs file, and the folder could not go.
  if root.lock is not None:
    root.lock.close()
  shutil.rmtree(root.path, ignore_errors=True)
  if root in _ENTERED:
    _ENTERED.remove(root)


def sweep(folder: str) -> list:
  """Removes the roots in `folder` whose processes are gone; returns them."""
  try:
    names = os.listdir(folder)
  except OSError:
    return []
  removed = []
  for name in names:
    path = os.path.join(folder, name)
    if not _NAME.fullmatch(name):  # (rmtree leaves a symbolic link be)
      continue
    held = []
    try:
      if _take(path, held) and all(_take(os.path.join(path, inner), held)
                                   for inner in _inner_roots(path)):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
          removed.append(path)
    finally:
      for lock in held:
        lock.close()
  return removed


def _inner_roots(path: str) -> list:
  try:
    return [n for n in os.listdir(path) if _NAME.fullmatch(n)
            and os.path.isfile(os.path.join(path, n, LOCK))]
  except OSError:
    return []


def _take(root: str, held: list) -> bool:
  """Whether `root` has a lock file no process holds (appended to `held`,
  locked, so no process can take it before the removal)."""
  try:
    # pylint: disable-next=consider-using-with
    lock = open(os.path.join(root, LOCK), "r")
  except OSError:  # no lock file (not a root), or not ours to read
    return False
  held.append(lock)
  try:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError:  # held by a live process
    return False
  return True
