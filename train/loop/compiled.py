"""Compiled inner loops: many steps per call over a tensor step count.

Orbit's split: a Python controller (train/loop/controller.py) owns all I/O and
calls, through the trainer and the evaluator, `run(iterator, n)`; a loop runs n
steps inside one `tf.function` with `tf.range`, so the host is not involved
between steps and the function is traced once for every n (the count is a
tensor, not a Python int). A loop given a global step advances it after each
step (training); one without does not (evaluation). Both check the stop vote
before every step (its request is set from another thread when a preemption
signal arrives, train/loop/preemption.py) and end the call there. With several
workers the check is a vote (core/runtime/distribution.agree_any): a signal to
any worker stops every worker before the same step.
"""

from typing import Dict, Iterable, Optional

import numpy as np
import tensorflow as tf

from core.optim import metrics
from core.runtime import distribution
from train.loop.preemption import StopVote


def means(sums: Dict[str, np.ndarray], keys: Iterable[str]
          ) -> Dict[str, float]:
  """The sums of `keys` as means over the examples the loop counted."""
  count = max(float(sums["examples"]), 1.0)
  return {k: float(sums[k]) / count for k in keys}


class CompiledLoop:
  """Runs a replica step function for a number of steps under a strategy."""

  def __init__(self, strategy: tf.distribute.Strategy, step_fn,
               sums: metrics.Sums, vote: StopVote,
               global_step: Optional[tf.Variable] = None):
    """Wraps `step_fn` (a per-replica callable taking a batch).

    Args:
      strategy: The strategy whose scope holds every variable.
      step_fn: Called through `strategy.run` once per batch.
      sums: Accumulators the step adds to; reset at each call.
      vote: The stop flags, checked before every step.
      global_step: Advanced after each step (training); None: nothing moves
        (evaluation).
    """
    # The steps (train/loop/step.py), the model and the layers hold no
    # Python control flow on tensors (tf.cond where a branch depends on
    # one): AutoGraph need not transpile them. Without this it re-parses
    # and converts the source of every function they call at each trace
    # (about 5 s of a command's first step for the small network here).
    step_fn = tf.autograph.experimental.do_not_convert(step_fn)
    self.strategy, self.step_fn, self.sums = strategy, step_fn, sums
    self.vote, self.global_step = vote, global_step
    self.traces = 0
    self._loop = tf.function(self._run_steps)

  def _run_steps(self, iterator, num_steps: tf.Tensor) -> None:
    self.traces += 1  # runs at trace time only: counts traces for tests
    for _ in tf.range(num_steps):
      if self._agree_to_stop():
        break
      self.strategy.run(self.step_fn, args=(next(iterator),))
      if self.global_step is not None:
        self.global_step.assign_add(1)

  # No Python control flow: AutoGraph need not convert it.
  @tf.autograph.experimental.do_not_convert
  def _agree_to_stop(self) -> tf.Tensor:
    return distribution.agree_any(self.strategy, self.vote.requested)

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
