"""The suite leaves no temporary folders behind (tests/temp_root.py)."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from tests import helpers
from tests import temp_root

# A process that enters a root, makes folders and files in it as fixtures
# and TensorFlow do, starts a child that makes its own, then leaves.
_SESSION = """
import os, subprocess, sys, tempfile
from tests import temp_root
root = temp_root.enter()
tempfile.mkdtemp()
with open(os.path.join(tempfile.mkdtemp(prefix="reference-"), "w.pth"),
          "wb") as f:
  f.write(b"x" * 1000)
tempfile.NamedTemporaryFile(delete=False).close()
child = subprocess.run([sys.executable, "-c",
                        "import tempfile; print(tempfile.mkdtemp())"],
                       stdout=subprocess.PIPE, text=True, check=True)
print(root.path)
print(child.stdout.strip())
temp_root.leave(root)
print(tempfile.gettempdir())
print(os.environ.get("TMPDIR"))
# As the suite's processes: left by the exit handler, after one registered
# later that expects its folder to be there (TensorFlow's test folder).
import atexit, shutil
root = temp_root.enter(leave_at_exit=True)
late = tempfile.mkdtemp()
atexit.register(lambda: shutil.rmtree(late) or print("late removed"))
print(root.path)
"""


# Roots that must survive a sweep: one being made (a sweep runs between
# its lock file's creation and its lock), one whose Root the caller
# dropped, and one whose forked child exits through the exit handlers.
_LIVE = """
import gc, os, subprocess, sys, tempfile
from unittest import mock
from tests import temp_root
outer = tempfile.gettempdir()
sweep = lambda: subprocess.run(
    [sys.executable, "-c", "import sys; from tests import temp_root; "
     "print(temp_root.sweep(sys.argv[1]))", outer], check=True)
real, state = temp_root.fcntl.flock, []
def flock(f, op):
  if not state:
    state.append(1)
    sweep()
  return real(f, op)
with mock.patch.object(temp_root.fcntl, "flock", flock):
  made = temp_root.enter()
temp_root.leave(made)
dropped = temp_root.enter().path
tempfile.tempdir = os.environ["TMPDIR"] = outer  # out of it, not left
gc.collect()
sweep()
forked = temp_root.enter(leave_at_exit=True)
if os.fork() == 0:
  sys.exit(0)
os.wait()
print(made.path, os.path.isdir(dropped), os.path.isdir(forked.path))
"""


class TempRootTest(unittest.TestCase):

  def outer(self):
    """A folder for the sessions' roots, and the environment that puts
    them there."""
    outer = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, outer, ignore_errors=True)
    return outer, {"TMPDIR": outer}

  def run_session(self, code, env):
    done = helpers.python("-c", code, env=env, timeout=300)
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    return done.stdout

  def test_a_session_and_its_children_leave_nothing(self):
    outer, env = self.outer()
    out = self.run_session(_SESSION, env).split("\n")
    root, child, after, variable, at_exit, late = out[:6]
    self.assertEqual(os.path.dirname(root), outer)
    self.assertTrue(os.path.basename(root).startswith(temp_root.PREFIX))
    self.assertEqual(os.path.dirname(child), root)  # the child's went in
    self.assertEqual((after, variable), (outer, outer))  # restored
    self.assertEqual(os.path.dirname(at_exit), outer)
    self.assertEqual(late, "late removed")  # before the root went
    self.assertEqual(os.listdir(outer), [])  # and all of it removed

  def test_a_killed_sessions_root_is_removed_by_the_next(self):
    outer, env = self.outer()
    # A session with a root inside its own (as pytest-xdist's workers
    # make theirs in the master's), then waiting.
    hold = ("import os, sys, tempfile\n"
            "from tests import temp_root\n"
            "root = temp_root.enter(leave_at_exit=True)\n"
            "inner = temp_root.enter(leave_at_exit=True)\n"
            "open(os.path.join(tempfile.mkdtemp(), 'f'), 'w').close()\n"
            "print(root.path, inner.path, flush=True)\n"
            "sys.stdin.read()\n")
    sessions = []
    for _ in range(2):
      proc = subprocess.Popen([sys.executable, "-c", hold],
                              env=dict(os.environ, **env),
                              cwd=helpers.ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
      self.addCleanup(proc.kill)
      sessions.append((proc, proc.stdout.readline().split()))
    (killed, (left, _)), (live, (kept, kept_inner)) = sessions
    killed.kill()  # SIGKILL: no exit handler runs
    killed.wait()
    # A root whose process is gone but whose inner root's is not (made
    # by hand here: an inner root's lock held by the live session).
    orphan = tempfile.mkdtemp(prefix=temp_root.PREFIX, dir=outer)
    open(os.path.join(orphan, temp_root.LOCK), "w").close()
    shutil.move(kept_inner, os.path.join(orphan, os.path.basename(
        kept_inner)))
    # Named like a root but without the lock file, and a user's folder
    # with a file of that name: not roots.
    mine = tempfile.mkdtemp(prefix=temp_root.PREFIX, dir=outer)
    dated = os.path.join(outer, f"{temp_root.PREFIX}2026-12-07")
    os.mkdir(dated)
    open(os.path.join(dated, temp_root.LOCK), "w").close()
    out = self.run_session("from tests import temp_root\n"
                           "print(temp_root.enter(leave_at_exit=True).path)",
                           env).strip()
    self.assertTrue(os.path.isdir(outer))
    self.assertFalse(os.path.exists(left))
    self.assertFalse(os.path.exists(out))
    self.assertEqual(sorted(os.listdir(outer)),
                     sorted(os.path.basename(p) for p in (kept, orphan,
                                                          mine, dated)))
    live.communicate("", timeout=300)

  def test_live_roots_are_never_swept(self):
    outer, env = self.outer()
    out = self.run_session(_LIVE, env).split("\n")
    # Each sweep found nothing to remove; the one being made was made.
    self.assertEqual(out[:2], ["[]", "[]"])
    made, dropped, forked = out[2].split()
    self.assertEqual(os.path.dirname(made), outer)
    self.assertEqual((dropped, forked), ("True", "True"))  # both still there

  def test_this_session_runs_inside_a_root(self):
    here = tempfile.gettempdir()
    self.assertTrue(os.path.basename(here).startswith(temp_root.PREFIX),
                    here)
    self.assertEqual(os.environ.get("TMPDIR"), here)

  def test_the_commands_a_test_starts_write_inside_it(self):
    done = helpers.python("-c", "import tempfile; print(tempfile.gettempdir())")
    self.assertEqual(done.stdout.strip(), tempfile.gettempdir(), done.stderr)


if __name__ == "__main__":
  unittest.main()
