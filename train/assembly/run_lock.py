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
  of the same name). NFS locks for the whole cluster (NFSv4's own locks,
  NFSv3's lockd).
- A FUSE-mounted bucket (gcsfuse, s3fs) or a 9p share is refused: its locks
  hold on one machine only, and a lease cannot stand in, because its caches
  (gcsfuse keeps what it saw for up to a minute by default) hide another
  machine's lease. The run names the bucket's own URL, which TF reaches
  directly, as the way out.
- Object storage (`gs://`, any scheme but the local one) has no locks: the
  run writes a lease, `<model_dir>/.run.lease`, naming itself and an expiry
  `LEASE_SECONDS` ahead, and renews it every `LEASE_SECONDS / 4` from a
  thread. A second run finds an unexpired lease of someone else and exits 2
  naming the holder; a dead run stops renewing, so its lease expires by
  itself and the restart takes it over. Object stores give no
  compare-and-swap through TF's file layer: the run reads its lease back
  `SETTLE_SECONDS` after writing it, so of two runs starting together the
  later writer wins and the other refuses. The expiry is read against this
  machine's clock: the runs' clocks must agree to well within
  `LEASE_SECONDS` (NTP does).

A lease that cannot be read (a 503, a timeout, text that is not a lease) is
held until it is seen free: read again over one lease period, then refused,
never overwritten. A run that loses its lease stops (`attach`): at once if
another run took the folder over, writing nothing more into it; or, when its
renewals have failed so long that the lease would expire before the next
one, while the lease still holds, so its last checkpoint is its own.
"""

import datetime
import json
import math
import os
import socket
import sys
import threading
import time
import uuid
from typing import Callable, Optional

from absl import logging

from core.runtime import files
from core.runtime import mounts
from core.runtime.errors import InputError

LOCK_NAME = ".run.lock"
LEASE_NAME = ".run.lease"
LEASE_SECONDS = 60.0
# Longer than the gap between a run's look at the lease and its write.
SETTLE_SECONDS = 2.0
# Reads of a lease that cannot be read, spread over one lease period.
READ_TRIES = 4


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
      heartbeat: Renew the lease from a thread (tests call `beat`).
      report: Receives warning lines (a failed read or renewal; the loss
        of the lease while nothing is attached).
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
    self._expires = math.inf  # of the last lease written; a lock never ends
    self._taken_over = False
    self._lost: Optional[str] = None
    self._on_lost: Optional[Callable[[str], None]] = None
    self._mutex = threading.Lock()

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
    if self.enabled and self.leased:
      try:
        if self._ours():
          files.remove(self.path)
      except OSError as e:  # the run's own outcome (exit code) stands
        print(f"warning: could not release the lease {self.path!r} "
              f"({_one_line(e)}); it expires by itself.", file=sys.stderr)

  def attach(self, on_lost: Callable[[str], None]) -> None:
    """Sets the callback that stops the run when its lease is lost (the
    engine's stop request, once it exists); calls it at once if the lease
    was lost before. It is called with a one-line message (from the
    heartbeat thread, or from here) once, and again if a takeover follows a
    loss; `may_write` then says whether the run may still write its last
    checkpoint."""
    with self._mutex:
      self._on_lost, lost = on_lost, self._lost
    if lost is not None:
      on_lost(lost)

  def lost(self) -> Optional[str]:
    """Why the run must stop (the lease was taken over, or is about to
    expire), or None while it holds the folder."""
    return self._lost

  def may_write(self) -> bool:
    """Whether the run may still write into the folder: no other run took
    it over, and its lease (if any) has not expired."""
    return not self._taken_over and self._clock() < self._expires

  def _refuse(self, holder: str) -> None:
    raise InputError(
        f"`model_dir` {self.directory!r} is in use by another run ({holder})"
        "; wait for it to end or stop it, or pass another --model_dir.")

  def _take_lock(self) -> None:
    mount = mounts.per_host_lock_mount(self.directory)
    if mount:
      raise InputError(
          f"`model_dir` {self.directory!r} is on a {mount[1]} mount "
          f"({mount[0]}), where file locks hold on one machine only: two "
          "runs on two machines could share it; pass the bucket's own URL "
          "(gs://..., s3://...) or a local or NFS folder.")
    lock = files.LocalLock(self.path)
    if not lock.acquire():
      holder = _describe(lock.read())
      lock.close()
      self._refuse(holder)
    lock.write(json.dumps(self._holder).encode())
    self._lock = lock

  def _take_lease(self) -> None:
    held = self._read_patiently()
    if held and held["token"] != self._token and (
        held["expires"] > self._clock()):
      self._refuse(self._lease_holder(held))
    self.renew()
    self._sleep(SETTLE_SECONDS)
    held = self._read_patiently()
    if not held or held["token"] != self._token:  # a race, lost
      self._refuse(self._lease_holder(held) if held
                   else "its lease was removed meanwhile")
    if self._heartbeat:
      self._thread = threading.Thread(target=self._beat, daemon=True,
                                      name="run-lease")
      self._thread.start()

  def renew(self) -> None:
    """Writes this run's lease, expiring `lease_seconds` from now."""
    expires = self._clock() + self._seconds
    files.write_atomic(self.path, json.dumps(dict(
        self._holder, token=self._token, expires=expires)))
    self._expires = expires

  def _beat(self) -> None:
    while not self._stop.wait(self._seconds / 4) and self.beat():
      pass

  def beat(self) -> bool:
    """One heartbeat (the thread's, every `lease_seconds / 4`): renews the
    lease, or declares it lost. Returns whether to beat again."""
    interval = self._seconds / 4
    try:
      held = self._read()
      if held and held["token"] != self._token:
        self._taken_over = True
        self._lose(
            f"`model_dir` {self.directory!r} was taken over by another run "
            f"({self._lease_holder(held)}); this run stops now and writes "
            "nothing more into it.")
        return False
      self.renew()
    except OSError as e:
      left = self._expires - self._clock()
      # Half a lease left at the next beat is the time to stop cleanly.
      if self._lost is None and left - interval < self._seconds / 2:
        self._lose(
            f"the lease on `model_dir` {self.directory!r} could not be "
            f"renewed ({_one_line(e)}) and expires in {max(0, left):.0f} s; "
            "this run stops while it still holds the folder.")
      else:
        self._report(f"warning: could not renew the lease on "
                     f"{self.directory!r} ({_one_line(e)}); retrying")
    return True

  def _lose(self, message: str) -> None:
    """Records the loss; the attached callback hears the first one and a
    takeover after it (a run stopping while its lease held must then stop
    writing at once), the report line any other."""
    with self._mutex:
      first = self._lost is None or self._taken_over
      self._lost, on_lost = message, self._on_lost
    if first and on_lost is not None:
      on_lost(message)
    else:
      self._report(f"warning: {message}")

  def _read(self) -> Optional[dict]:
    """The lease, or None if there is none.

    Raises:
      OSError: It could not be read, or its text is not a lease.
    """
    try:
      held = json.loads(files.read_text(self.path))
    except FileNotFoundError:
      return None
    except ValueError as e:  # not UTF-8, not JSON
      raise OSError(f"not a lease: {e}") from None
    expires = held.get("expires") if isinstance(held, dict) else None
    if (not isinstance(held, dict) or not isinstance(held.get("token"), str)
        or isinstance(expires, bool) or not isinstance(expires, (int, float))
        or not math.isfinite(expires)):
      raise OSError(f"not a lease: {json.dumps(held)[:100]}")
    return held

  def _read_patiently(self) -> Optional[dict]:
    """The lease, read up to `READ_TRIES` times over a lease period while
    it cannot be read: until then another run may hold it.

    Raises:
      InputError: It could not be read in any try.
    """
    wait = self._seconds / (READ_TRIES - 1)
    for tries in range(1, READ_TRIES + 1):
      try:
        return self._read()
      except OSError as e:
        error = _one_line(e)
      if tries < READ_TRIES:
        self._report(f"warning: could not read the lease {self.path!r} "
                     f"({error}); trying again in {wait:.0f} s")
        self._sleep(wait)
    raise InputError(
        f"`model_dir` {self.directory!r}: its lease {self.path!r} could not "
        f"be read in {READ_TRIES} tries over {self._seconds:.0f} s ({error});"
        " another run may hold the folder: if none does, remove that file, "
        "or pass another --model_dir.")

  def _ours(self) -> bool:
    return (self._read() or {}).get("token") == self._token

  def _lease_holder(self, held: dict) -> str:
    left = max(0, round(held["expires"] - self._clock()))
    return (_describe(json.dumps(held).encode())
            + f"; its lease expires in {left} s unless renewed")


def _one_line(error: Exception) -> str:
  return " ".join(str(error).split())


def _describe(text: bytes) -> str:
  """"pid 123 on host h, since ..." from the lock file's text."""
  try:
    holder = json.loads(text.decode())
    return (f"pid {holder['pid']} on host {holder['host']}, started "
            f"{holder['started']}")
  except (ValueError, KeyError, TypeError):
    return "its pid is not written yet"
