"""The profiler as an action of the controller: a trace of a window of steps.

The window opens at the first chunk boundary inside [START, STOP) and closes
at the first boundary at or past STOP. Leaving the `with` block closes it
too, so the trace is written however training ends: at the last step before
STOP, on preemption, on divergence or on an error.
"""

from typing import Callable, List, Sequence

import tensorflow as tf


class ProfileWindow:
  """Starts and stops TF's profiler around the steps [START, STOP)."""

  def __init__(self, logdir: str, steps: Sequence[int] = (), *,
               start: Callable[[str], None] = tf.profiler.experimental.start,
               stop: Callable[[], None] = tf.profiler.experimental.stop):
    """Plans a trace into `logdir`.

    Args:
      logdir: Where the trace goes (TensorBoard's profile plugin reads it).
      steps: () for no trace, or (START, STOP).
      start: Starts a trace (TF's profiler; a fake in tests).
      stop: Stops the trace and writes it.
    """
    self.logdir, self.steps = logdir, tuple(steps)
    self._start, self._stop = start, stop
    self.active = False

  def boundaries(self, step: int) -> List[int]:
    """The window's edges after `step`: the controller stops there."""
    return [s for s in self.steps if s > step]

  def before_chunk(self, step: int) -> None:
    """Opens the window if `step` lies inside it."""
    if self.steps and not self.active and (
        self.steps[0] <= step < self.steps[1]):
      self._start(self.logdir)
      self.active = True

  def after_chunk(self, step: int) -> None:
    """Closes the window once `step` reaches its end."""
    if self.active and step >= self.steps[1]:
      self.close()

  def close(self) -> None:
    """Stops the trace (and so writes it) if one is running."""
    if self.active:
      self.active = False
      self._stop()

  def __enter__(self) -> "ProfileWindow":
    return self

  def __exit__(self, *exc) -> None:
    self.close()
