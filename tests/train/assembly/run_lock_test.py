"""One run per model_dir: the holder is named; the OS frees the lock when
the holder dies, however it dies; on object storage (TF's in-memory
`ram://` file system) a lease does the same with a heartbeat and an
expiry, driven here by a fake clock."""

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock

from core.runtime import files
from core.runtime import mounts
from core.runtime.errors import InputError, Preempted
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

  def mounted(self, kind: str):
    """The folder as if on a `kind` mount."""
    table = (f"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
             f"2 1 0:9 / {os.path.realpath(self.dir)} rw,nosuid - {kind} "
             "bucket rw,user_id=0\n")
    return mock.patch.object(mounts, "mount_table", return_value=table)

  def test_a_bucket_mounted_with_fuse_is_refused(self):
    # Its locks hold per machine: two runs on two hosts would both hold it.
    for kind in ("fuse.gcsfuse", "fuse", "fuse.s3fs", "9p"):
      with self.subTest(kind), self.mounted(kind):
        with self.assertRaises(InputError) as caught:
          with RunLock(self.dir):
            pass
        self.assertEqual(str(caught.exception), (
            f"`model_dir` {self.dir!r} is on a {kind} mount "
            f"({os.path.realpath(self.dir)}), where file locks hold on one "
            "machine only: two runs on two machines could share it; pass the "
            "bucket's own URL (gs://..., s3://...) or a local or NFS folder."))
        self.assertEqual(os.listdir(self.dir), [])

  def test_nfs_keeps_the_lock(self):
    with self.mounted("nfs4"), RunLock(self.dir) as lock:
      self.assertFalse(lock.leased)
      self.assertEqual(os.listdir(self.dir), [run_lock.LOCK_NAME])


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

  def attached(self):
    """A run holding the folder, its stop callback attached: (the lock,
    the stop messages, the report lines)."""
    stops, lines = [], []
    lock = self.lock(report=lines.append).__enter__()
    lock.attach(stops.append)
    return lock, stops, lines

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

  def test_the_heartbeat_stops_a_run_taken_over(self):
    stops = []
    lock = RunLock(self.dir, lease_seconds=0.2)
    with lock:
      lock.attach(stops.append)
      other = self.lock()
      other.renew()  # a restart took the folder while this run stalled
      deadline = time.time() + 30
      while not stops and time.time() < deadline:
        time.sleep(0.02)
      self.assertFalse(lock.may_write())
    self.assertRegex(stops[0], "^`model_dir` .* was taken over by another "
                     "run .*; this run stops now and writes nothing more "
                     "into it.$")
    token = other._token  # pylint: disable=protected-access
    self.assertIn(token, files.read_text(lock.path))

  def test_a_run_taken_over_stops_once_and_writes_no_more(self):
    first, stops, lines = self.attached()
    second = self.lock()
    second.renew()  # a restart took the folder while this run stalled
    self.assertTrue(first.may_write())
    self.assertIsNone(first.lost())
    self.assertFalse(first.beat())  # sees the other run: beats no more
    self.assertEqual(stops, [first.lost()])
    self.assertIn("was taken over by another run", stops[0])
    self.assertFalse(first.may_write())  # though its own lease is unexpired
    self.assertEqual(lines, [])
    first.__exit__(None, None, None)  # leaves the other run's lease
    token = second._token  # pylint: disable=protected-access
    self.assertIn(token, files.read_text(second.path))

  def test_failing_renewals_stop_the_run_while_its_lease_holds(self):
    lock, stops, lines = self.attached()
    lock.renew()
    outage = OSError("503 Service Unavailable")
    with mock.patch.object(files, "write_atomic", side_effect=outage):
      self.clock.now += run_lock.LEASE_SECONDS / 4
      self.assertTrue(lock.beat())  # one hiccup: a warning, no stop
      self.assertEqual(stops, [])
      self.assertEqual(lines, [f"warning: could not renew the lease on "
                               f"{self.dir!r} (503 Service Unavailable); "
                               "retrying"])
      self.clock.now += run_lock.LEASE_SECONDS / 4
      self.assertTrue(lock.beat())  # half a lease left: stop now
      self.assertEqual(stops, [
          f"the lease on `model_dir` {self.dir!r} could not be renewed (503 "
          "Service Unavailable) and expires in 30 s; this run stops while it "
          "still holds the folder."])
      self.clock.now += run_lock.LEASE_SECONDS / 4
      self.assertTrue(lock.beat())  # still failing: told once, warned again
    self.assertEqual(len(stops), 1)
    self.assertEqual(lines[1:], lines[:1])
    self.assertTrue(lock.may_write())  # its last checkpoint, under its lease
    self.clock.now += run_lock.LEASE_SECONDS / 4
    self.assertFalse(lock.may_write())

  def test_a_takeover_after_failing_renewals_reaches_the_callback_too(self):
    # The run stopping with its last checkpoint may overrun its lease; if
    # another run takes the folder meanwhile it must stop writing at once.
    lock, stops, _ = self.attached()
    lock.renew()
    with mock.patch.object(files, "write_atomic",
                           side_effect=OSError("503")):
      for _ in range(2):
        self.clock.now += run_lock.LEASE_SECONDS / 4
        lock.beat()
    self.assertEqual(len(stops), 1)
    self.clock.now += run_lock.LEASE_SECONDS  # expired: another run takes it
    self.lock().renew()
    self.assertFalse(lock.beat())
    self.assertEqual(len(stops), 2)
    self.assertIn("was taken over by another run", stops[1])
    self.assertEqual(lock.lost(), stops[1])
    self.assertFalse(lock.may_write())

  def test_a_loss_before_attach_reaches_the_callback_at_attach(self):
    lines, stops = [], []
    lock = self.lock(report=lines.append).__enter__()
    self.lock().renew()  # taken over before the engine exists
    lock.beat()
    self.assertEqual(len(lines), 1)
    self.assertTrue(lines[0].startswith("warning: `model_dir` "))
    lock.attach(stops.append)
    self.assertEqual(stops, [lock.lost()])

  def test_one_failed_read_does_not_free_a_live_lease(self):
    with self.lock():
      read, calls = files.read_text, []

      def flaky(path):
        calls.append(path)
        if len(calls) == 1:
          raise OSError("503 (once)")
        return read(path)

      lines = []
      with mock.patch.object(files, "read_text", flaky):
        with self.assertRaisesRegex(InputError, "is in use by another run"):
          self.lock(report=lines.append).__enter__()
      self.assertEqual(lines, [
          f"warning: could not read the lease '{self.dir}/.run.lease' (503 "
          "(once)); trying again in 20 s"])

  def test_a_lease_that_cannot_be_read_is_never_overwritten(self):
    path = os.path.join(self.dir, run_lock.LEASE_NAME)
    for text, error in (
        (b'{"token": "x", "expires": "soon", "pid": 1}',
         'not a lease: {"token": "x", "expires": "soon", "pid": 1}'),
        (b'{"token": "x", "expires": NaN}', "not a lease: "),
        (b"[1]", "not a lease: [1]"),
        (b"{half", "not a lease: Expecting property name"),
        (b"\xff", "not a lease: 'utf-8' codec can't decode"),
        (None, "503 Service Unavailable")):
      with self.subTest(text):
        files.write_atomic(path, text or b"{}")
        start, lines = self.clock.now, []
        outage = mock.patch.object(files, "read_text",
                                   side_effect=OSError("503 Service\n"
                                                       "Unavailable"))
        with self.assertRaises(InputError) as caught:
          if text is None:
            with outage:
              self.lock(report=lines.append).__enter__()
          else:
            self.lock(report=lines.append).__enter__()
        message = str(caught.exception)
        self.assertTrue(message.startswith(
            f"`model_dir` {self.dir!r}: its lease {path!r} could not be read "
            f"in 4 tries over 60 s ({error}"), message)
        self.assertTrue(message.endswith(
            "another run may hold the folder: if none does, remove that "
            "file, or pass another --model_dir."), message)
        self.assertNotIn("\n", message)
        self.assertEqual(len(lines), 3)  # read again over one lease period
        self.assertEqual(self.clock.now - start, run_lock.LEASE_SECONDS)
        self.assertEqual(files.read_bytes(path), text or b"{}")

  def test_a_failing_release_keeps_the_runs_own_outcome(self):
    stderr = io.StringIO()
    failing = mock.patch.object(files, "remove",
                                side_effect=PermissionError(13, "denied"))
    with contextlib.redirect_stderr(stderr), failing:
      with self.assertRaises(Preempted):  # the run's exit code, 75, stands
        with self.lock():
          raise Preempted("stopped at step 20")
      self.clock.now += run_lock.LEASE_SECONDS + 1  # the lease left expires
      with self.lock():  # a run that ended well still ends well
        pass
    self.assertEqual(stderr.getvalue().splitlines(), [
        f"warning: could not release the lease '{self.dir}/.run.lease' "
        "([Errno 13] denied); it expires by itself."] * 2)


if __name__ == "__main__":
  unittest.main()
