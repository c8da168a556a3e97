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


class TempRootTest(unittest.TestCase):

  def test_a_session_and_its_children_leave_nothing(self):
    outer = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, outer, ignore_errors=True)
    env = dict(os.environ, TMPDIR=outer,
               PYTHONPATH=helpers.ROOT + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", _SESSION], env=env,
                         cwd=helpers.ROOT, stdout=subprocess.PIPE, text=True,
                         check=True).stdout.split("\n")
    root, child, after, variable, at_exit, late = out[:6]
    self.assertEqual(os.path.dirname(root), outer)
    self.assertTrue(os.path.basename(root).startswith(temp_root.PREFIX))
    self.assertEqual(os.path.dirname(child), root)  # the child's went in
    self.assertEqual((after, variable), (outer, outer))  # restored
    self.assertEqual(os.path.dirname(at_exit), outer)
    self.assertEqual(late, "late removed")  # before the root went
    self.assertEqual(os.listdir(outer), [])  # and all of it removed

  def test_a_killed_sessions_root_is_removed_by_the_next(self):
    outer = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, outer, ignore_errors=True)
    env = dict(os.environ, TMPDIR=outer,
               PYTHONPATH=helpers.ROOT + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    enter = ("import os, tempfile, time\n"
             "from tests import temp_root\n"
             "root = temp_root.enter(leave_at_exit=True)\n"
             "open(os.path.join(tempfile.mkdtemp(), 'f'), 'w').close()\n"
             "print(root.path, flush=True)\n"
             "time.sleep(600)\n")
    killed = subprocess.Popen([sys.executable, "-c", enter], env=env,
                              cwd=helpers.ROOT, stdout=subprocess.PIPE,
                              text=True)
    left = killed.stdout.readline().strip()
    killed.kill()  # SIGKILL: no exit handler runs
    killed.communicate()
    self.assertTrue(os.path.isdir(left))
    # A folder of a live process and one named like a root without an id
    # are kept.
    live = os.path.join(outer, f"{temp_root.PREFIX}{os.getpid()}-x")
    other = os.path.join(outer, f"{temp_root.PREFIX}abc")
    for folder in (live, other):
      os.mkdir(folder)
    out = subprocess.run(
        [sys.executable, "-c", "from tests import temp_root\n"
         "print(temp_root.enter(leave_at_exit=True).path)"], env=env,
        cwd=helpers.ROOT, stdout=subprocess.PIPE, text=True,
        check=True).stdout.strip()
    self.assertFalse(os.path.exists(left))
    self.assertFalse(os.path.exists(out))
    self.assertEqual(sorted(os.listdir(outer)),
                     sorted([os.path.basename(live), os.path.basename(other)]))

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
