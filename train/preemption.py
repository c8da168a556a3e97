"""SIGTERM/SIGINT as a request to stop at the next step boundary.

The handler only sets a flag; the controller checks it between compiled
inner loops, then checkpoints, flushes TensorBoard and exits with
core.errors.EXIT_PREEMPTED. The delay is therefore at most one inner loop
(`--steps_per_loop` steps).
"""

import signal
import threading
from typing import Optional

class PreemptionWatcher:
  """Context manager that records SIGTERM/SIGINT instead of dying."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.signal: Optional[int] = None
    self._previous = {}

  def __enter__(self) -> "PreemptionWatcher":
    if threading.current_thread() is threading.main_thread():
      for sig in self.SIGNALS:
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous.clear()

  def _handle(self, signum, frame) -> None:
    del frame
    self.signal = signum

  @property
  def requested(self) -> bool:
    """True once a signal has arrived."""
    return self.signal is not None
