"""SIGTERM/SIGINT/SIGHUP as a request to stop at the next step boundary.

The Python handler records the signal, but Python runs handlers only between
bytecodes, and the main thread spends a compiled chunk (`--steps_per_loop`
steps, a minute at 224x224 on 2 cores) inside one TensorFlow call. So the
watcher also asks the C level to write each signal to a pipe
(`signal.set_wakeup_fd`); a thread blocked on that pipe wakes at once and calls
`on_signal`, which sets the stop flag the compiled loop reads before every step
(train/loop/compiled.py). The chunk ends at the next step boundary; the
controller then checkpoints, flushes TensorBoard and exits with
core.runtime.errors.EXIT_PREEMPTED. The delay is one step plus the save, well
inside the 30 s grace period Kubernetes gives.

SIGHUP is the terminal or ssh session going away; by default it would end
the run at once, with nothing since the last checkpoint saved.
"""

import os
import signal
import threading
from typing import Callable, Optional

import tensorflow as tf

from core.runtime import distribution


class PreemptionWatcher:
  """Context manager that records SIGTERM/SIGINT/SIGHUP instead of dying."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

  def __init__(self, on_signal: Callable[[], None] = lambda: None):
    """Watches for the signals.

    Args:
      on_signal: Called from the watcher's thread as soon as a signal
        arrives, while the main thread may be inside a compiled loop (the
        StopVote's `request`).
    """
    self.signal: Optional[int] = None
    self.reason: Optional[str] = None  # a stop asked for without a signal
    self._on_signal = on_signal
    self._depth = 0  # nested `with`: only the outermost installs
    self._previous = {}
    self._pipe = None
    self._thread = None
    self._previous_wakeup = -1

  def __enter__(self) -> "PreemptionWatcher":
    self._depth += 1
    if self._depth == 1 and (threading.current_thread()
                             is threading.main_thread()):
      for sig in self.SIGNALS:
        self._previous[sig] = signal.signal(sig, self._handle)
      read, write = os.pipe()
      os.set_blocking(write, False)
      self._pipe = (read, write)
      self._previous_wakeup = signal.set_wakeup_fd(write)
      self._thread = threading.Thread(target=self._wake, args=(read,),
                                      daemon=True)
      self._thread.start()
    return self

  def __exit__(self, *exc) -> None:
    self._depth -= 1
    if self._depth:
      return
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous.clear()
    if self._pipe is not None:
      signal.set_wakeup_fd(self._previous_wakeup)
      os.close(self._pipe[1])  # the thread's read returns empty: it ends
      self._thread.join(timeout=5)
      os.close(self._pipe[0])
      self._pipe = self._thread = None

  def attach(self, on_signal: Callable[[], None]) -> None:
    """Sets the callback (the StopVote's `request`, once it exists);
    calls it at once if a signal came before."""
    self._on_signal = on_signal
    if self.requested:
      on_signal()

  def reclaim(self) -> None:
    """Installs the handlers again. TF's coordination service agent, started
    when a multi-worker cluster forms, installs its own SIGTERM handler in
    C++ (its preemption notifier), which would swallow the signal."""
    if self._previous:
      for sig in self.SIGNALS:
        signal.signal(sig, self._handle)

  def _wake(self, read: int) -> None:
    while True:
      data = os.read(read, 16)
      if not data:
        return
      for number in data:
        if number in self.SIGNALS:
          self.signal = number
          self._on_signal()

  def _handle(self, signum, frame) -> None:
    del frame
    self.signal = signum

  @property
  def requested(self) -> bool:
    """True once a signal has arrived or a stop was asked for."""
    return self.signal is not None or self.reason is not None

  def stop(self, reason: str) -> None:
    """Asks for the stop a signal asks for, for `reason` (the run's lease
    about to expire, train/assembly/run_lock.py); from any thread."""
    self.reason = reason
    self._on_signal()


class StopVote:
  """The stop flag the compiled loops read, and the workers' vote on it.

  `requested` is this process's request, set from any thread (the
  watcher's, on a signal); before every step the loops
  (train/loop/compiled.py) and between calls the controller ask whether
  any worker requested a stop. Not checkpointed, and outside the strategy:
  one copy per process.
  """

  def __init__(self, strategy: tf.distribute.Strategy):
    self.requested = tf.Variable(False, trainable=False,
                                 name="stop_requested")
    # No AutoGraph: no Python control flow on tensors here.
    self._vote = tf.function(
        lambda: distribution.agree_any(strategy, self.requested),
        autograph=False)

  def request(self) -> None:
    """Ends the running compiled loop at its next step (any thread)."""
    self.requested.assign(True)

  def agree(self, requested: bool) -> bool:
    """Whether any worker was asked to stop (this one if `requested`).

    Every worker calls it at the same point between compiled calls: with
    several workers it is a collective, and it doubles as a barrier.
    """
    if requested:
      self.requested.assign(True)
    return bool(self._vote())
