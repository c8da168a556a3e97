"""One run per model_dir: the holder is named; the OS frees the lock when
the holder dies, however it dies; on object storage (TF's in-memory
`ram://` file system) a lease does the same with a heartbeat and an
expiry, driven here by a fake clock."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from core.runtime import files
from core.runtime.errors import InputError
from train.assembly import run_lock
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


class FakeClock:

  def __init__(self):
    self.now = 1_000_000.0

  def __call__(self) -> float:
    return self.now

  def sleep(self, seconds: float) -> None:
    self.now += seconds


class LeaseTest(unittest.TestCase):
  """`ram://` has no locks and no atomic folder rename, as object storage."""

  def setUp(self):
    self.dir = f"ram://lease-{os.getpid()}-{id(self)}/run"
    files.makedirs(self.dir)
    self.clock = FakeClock()

  def lock(self, **kwargs):
    return RunLock(self.dir, clock=self.clock, sleep=self.clock.sleep,
                   heartbeat=False, **kwargs)

  def test_a_second_run_is_refused_naming_the_holder(self):
    with self.lock() as first:
      self.assertTrue(first.leased)
      self.assertEqual(files.listdir(self.dir), [run_lock.LEASE_NAME])
      self.clock.now += 30
      with self.assertRaises(InputError) as caught:
        with self.lock():
          pass
    message = str(caught.exception)
    self.assertRegex(
        message, f"`model_dir` '{self.dir}' is in use by another run \(pid "
        f"{os.getpid()} on host {socket.gethostname()}, started .*; its "
        "lease expires in 28 s unless renewed\); wait for it")
    self.assertNotIn("\n", message)
    # Leaving removes the lease: the next run starts at once.
    self.assertEqual(files.listdir(self.dir), [])

  def test_a_renewed_lease_holds_and_a_dead_runs_lease_expires(self):
    first = self.lock().__enter__()  # never left: a killed run
    for _ in range(5):  # renewed for five minutes: still held
      self.clock.now += run_lock.LEASE_SECONDS - 1
      first.renew()
    with self.assertRaises(InputError):
      self.lock().__enter__()
    self.clock.now += run_lock.LEASE_SECONDS + 1  # it stopped renewing
    with self.lock() as second:
      held = files.read_text(second.path)
      self.assertIn(second._token, held)  # pylint: disable=protected-access

  def test_of_two_runs_that_start_together_one_refuses(self):
    a, b = self.lock(), self.lock()
    # Both look before either writes; the later writer keeps the lease.
    real = a._sleep  # pylint: disable=protected-access

    def b_writes_meanwhile(seconds):
      b.renew()
      real(seconds)

    a._sleep = b_writes_meanwhile  # pylint: disable=protected-access
    with self.assertRaises(InputError):
      a.__enter__()
    with b:
      pass

  def test_the_heartbeat_renews_until_the_run_ends(self):
    lock = RunLock(self.dir, lease_seconds=0.2)
    with lock:
      first = files.read_text(lock.path)
      deadline = time.time() + 30
      while files.read_text(lock.path) == first and time.time() < deadline:
        time.sleep(0.02)
      self.assertNotEqual(files.read_text(lock.path), first)
    self.assertFalse(files.exists(lock.path))

  def test_a_lease_taken_over_is_reported(self):
    lines = []
    lock = RunLock(self.dir, lease_seconds=0.2, report=lines.append)
    with lock:
      other = self.lock()
      other.renew()  # a restart took the folder while this run stalled
      deadline = time.time() + 30
      while not lines and time.time() < deadline:
        time.sleep(0.02)
    self.assertRegex(lines[0], "^warning: `model_dir` .* was taken over by "
                     "another run .*; stop this run.$")
    self.assertTrue(files.exists(lock.path))  # the other run's, kept


if __name__ == "__main__":
  unittest.main()
