"""One run per model_dir: the holder is named; the OS frees the lock when
the holder dies, however it dies."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

from core.runtime.errors import InputError
from train.assembly.run_lock import RunLock
from tests import helpers

HOLD = ("import sys, time; from train.assembly.run_lock import RunLock\n"
        "with RunLock(sys.argv[1]):\n"
        "  print('held', flush=True); time.sleep(600)\n")


class RunLockTest(unittest.TestCase):

  def setUp(self):
    self.dir = tempfile.mkdtemp()

  def hold_in_another_process(self):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, self.dir],
                            cwd=helpers.ROOT, stdout=subprocess.PIPE,
                            text=True)
    self.addCleanup(lambda: proc.poll() is None and proc.kill())
    self.assertEqual(proc.stdout.readline().strip(), "held")
    return proc

  def test_a_second_run_is_refused_naming_the_holder(self):
    holder = self.hold_in_another_process()
    with self.assertRaises(InputError) as caught:
      with RunLock(self.dir):
        pass
    message = str(caught.exception)
    self.assertIn(f"is in use by another run (pid {holder.pid} on host "
                  f"{socket.gethostname()}, started ", message)
    self.assertNotIn("\n", message)

  def test_a_killed_holder_never_blocks_the_restart(self):
    holder = self.hold_in_another_process()
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with RunLock(self.dir) as lock:
      self.assertIn(f'"pid": {os.getpid()}', open(lock.path).read())

  def test_disabled_touches_nothing(self):
    with RunLock(self.dir, enabled=False):
      self.assertEqual(os.listdir(self.dir), [])


if __name__ == "__main__":
  unittest.main()
