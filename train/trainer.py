"""Compiled inner loops: many steps per call over a tensor step count.

Orbit's split: a Python outer loop (train/loop.py) owns all I/O and calls
`train(iterator, n)`; this file runs n steps inside one `tf.function` with
`tf.range`, so the host is not involved between steps and the function is
traced once for every n (the count is a tensor, not a Python int).
"""

from typing import Dict

import numpy as np
import tensorflow as tf

from core import metrics
from train.state import TrainState


class Trainer:
  """Runs a replica step function for a number of steps under a strategy."""

  def __init__(self, strategy: tf.distribute.Strategy, step_fn,
               sums: metrics.Sums, state: TrainState):
    """Wraps `step_fn` (a per-replica callable taking a batch).

    Args:
      strategy: The strategy whose scope holds every variable.
      step_fn: Called through `strategy.run` once per batch.
      sums: Accumulators the step adds to; reset at each call.
      state: Holds the global step, advanced once per step here.
    """
    self.strategy, self.step_fn, self.sums, self.state = (
        strategy, step_fn, sums, state)
    self.traces = 0
    self._loop = tf.function(self._run_steps)

  def _run_steps(self, iterator, num_steps: tf.Tensor) -> None:
    self.traces += 1  # runs at trace time only: counts traces for tests
    for _ in tf.range(num_steps):
      self.strategy.run(self.step_fn, args=(next(iterator),))
      if self.state is not None:
        self.state.global_step.assign_add(1)

  def run(self, iterator, num_steps: int) -> Dict[str, np.ndarray]:
    """Runs `num_steps` steps and returns the sums they accumulated.

    Raises:
      TypeError: If `num_steps` is not an int (the loop needs a count it can
        turn into one tensor type, so it is never retraced).
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int,
                                                                 np.integer)):
      raise TypeError(f"`num_steps` must be an int; received "
                      f"num_steps={num_steps!r}.")
    self.sums.reset()
    self._loop(iterator, tf.constant(num_steps, tf.int64))
    return self.sums.read()
