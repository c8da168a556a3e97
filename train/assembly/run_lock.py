"""One run per `model_dir`, on every kind of storage.

Two runs on one folder (a scheduler restarting a job whose old copy is not
yet dead does exactly this) would both resume from the same checkpoint and
interleave checkpoints, event files and exports. The run (the chief, in a
multi-worker run) holds the folder for its whole life:

- Local disk and NFS: a POSIX record lock on `<model_dir>/.run.lock`
  (core/runtime/files.LocalLock). The kernel drops it when the process
  exits or is killed, so a killed run never blocks its restart. The file's
  text names the holder for the second run's one-line error; the file itself
  is never removed (removing it would let two runs lock two different files
  of the same name).
- Object storage (`gs://`, any scheme but the local one) has no locks: the
  run writes a lease, `<model_dir>/.run.lease`, naming itself and an expiry
  `LEASE_SECONDS` ahead, and renews it every `LEASE_SECONDS / 4` from a
  thread. A second run finds an unexpired lease of someone else and exits 2
  naming the holder; a dead run stops renewing, so its lease expires by
  itself and the restart takes it over. Object stores give no
  compare-and-swap through TF's file layer: the run reads its lease back
  `SETTLE_SECONDS` after writing it, so of two runs starting together the
  later writer wins and the other refuses. The expiry is read against this machine's clock:
  the runs' clocks must agree to well within `LEASE_SECONDS` (NTP does).
  A run whose renewals fail for a whole lease (a stalled machine, a lost
  network) may lose the folder to a restart; its heartbeat says so in a
  warning line.
"""

import datetime
import json
import os
import socket
import threading
import time
import uuid
from typing import Callable, Optional

from absl import logging

from core.runtime import files
from core.runtime.errors import InputError

LOCK_NAME = ".run.lock"
LEASE_NAME = ".run.lease"
LEASE_SECONDS = 60.0
# Longer than the gap between a run's look at the lease and its write.
SETTLE_SECONDS = 2.0


class RunLock:
  """Context manager holding `directory` for this run; a no-op if not
  `enabled` (a multi-worker run's non-chief workers)."""

  def __init__(self, directory: str, *, enabled: bool = True,
               clock: Callable[[], float] = time.time,
               sleep: Callable[[float], None] = time.sleep,
               lease_seconds: float = LEASE_SECONDS, heartbeat: bool = True,
               report: Callable[[str], None] = logging.warning):
    """Args:
      directory: The run's `model_dir` (created already).
      enabled: False for a worker that does not write the folder.
      clock: Seconds since the epoch (leases; tests pass a fake).
      sleep: Waits that many seconds (leases; tests pass a fake).
      lease_seconds: How long a lease lasts without renewal.
      heartbeat: Renew the lease from a thread (tests call `renew`).
      report: Receives the line saying the lease was lost.
    """
    self.directory, self.enabled = directory, enabled
    self.leased = not files.is_local(directory)
    self.path = os.path.join(directory, LEASE_NAME if self.leased
                             else LOCK_NAME)
    self._clock, self._sleep, self._seconds = clock, sleep, lease_seconds
    self._heartbeat, self._report = heartbeat, report
    self._lock: Optional[files.LocalLock] = None
    self._token = uuid.uuid4().hex
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None
    self._holder = {"pid": os.getpid(), "host": socket.gethostname(),
                    "started": datetime.datetime.now().astimezone().isoformat(
                        timespec="seconds")}

  def __enter__(self) -> "RunLock":
    if not self.enabled:
      return self
    if self.leased:
      self._take_lease()
    else:
      self._take_lock()
    return self

  def __exit__(self, *exc) -> None:
    if self._lock is not None:
      self._lock.close()
      self._lock = None
    if self._thread is not None:
      self._stop.set()
      self._thread.join()
      self._thread = None
    if self.enabled and self.leased and self._ours():
      files.remove(self.path)

  def _refuse(self, holder: str) -> None:
    raise InputError(
        f"`model_dir` {self.directory!r} is in use by another run ({holder})"
        "; wait for it to end or stop it, or pass another --model_dir.")

  def _take_lock(self) -> None:
    lock = files.LocalLock(self.path)
    if not lock.acquire():
      holder = _describe(lock.read())
      lock.close()
      self._refuse(holder)
    lock.write(json.dumps(self._holder).encode())
    self._lock = lock

  def _take_lease(self) -> None:
    held = self._read()
    if held and held.get("token") != self._token and float(
        held.get("expires", 0)) > self._clock():
      self._refuse(self._lease_holder(held))
    self.renew()
    self._sleep(SETTLE_SECONDS)
    held = self._read()
    if not held or held.get("token") != self._token:  # a race, lost
      self._refuse(self._lease_holder(held or {}))
    if self._heartbeat:
      self._thread = threading.Thread(target=self._beat, daemon=True,
                                      name="run-lease")
      self._thread.start()

  def renew(self) -> None:
    """Writes this run's lease, expiring `lease_seconds` from now."""
    files.write_atomic(self.path, json.dumps(dict(
        self._holder, token=self._token,
        expires=self._clock() + self._seconds)))

  def _beat(self) -> None:
    while not self._stop.wait(self._seconds / 4):
      try:
        held = self._read()
        if held and held.get("token") != self._token:
          self._report(
              f"warning: `model_dir` {self.directory!r} was taken over by "
              f"another run ({self._lease_holder(held)}) after this run's "
              "lease expired; stop this run.")
          return
        self.renew()
      except OSError as e:  # a storage hiccup: the next beat tries again
        self._report(f"warning: could not renew the lease on "
                     f"{self.directory!r} ({e}); retrying")

  def _read(self) -> Optional[dict]:
    try:
      held = json.loads(files.read_text(self.path))
    except FileNotFoundError:
      return None
    except (ValueError, OSError):  # unreadable: nobody can hold it
      return {}
    return held if isinstance(held, dict) else {}

  def _ours(self) -> bool:
    return (self._read() or {}).get("token") == self._token

  def _lease_holder(self, held: dict) -> str:
    expires = float(held.get("expires", 0))
    left = max(0, round(expires - self._clock()))
    return (_describe(json.dumps(held).encode())
            + f"; its lease expires in {left} s unless renewed")


def _describe(text: bytes) -> str:
  """"pid 123 on host h, since ..." from the lock file's text."""
  try:
    holder = json.loads(text.decode())
    return (f"pid {holder['pid']} on host {holder['host']}, started "
            f"{holder['started']}")
  except (ValueError, KeyError, TypeError):
    return "its pid is not written yet"
