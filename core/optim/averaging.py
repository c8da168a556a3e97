"""Copies of the model's weights kept beside it: the exponential moving
average (Polyak averaging, which the GoogLeNet paper used at test time) and
the best weights seen on validation. Both are `tf.Module`s of variables made
like the model's (layers/variables.py), so checkpoints hold them and a
resumed run continues them exactly.

`WeightCopy.swapped_in` puts a copy's values into the model for an
evaluation or an export and puts the trained values back afterwards,
whatever happens.
"""

import contextlib
from typing import Iterator, Sequence

import tensorflow as tf

from core.optim import optimizers
from layers import variables as variables_lib


class WeightCopy(tf.Module):
  """One variable per parameter, starting at the parameter's value.

  Made in the strategy's scope of the parameters: the copy is mirrored like
  them, and copying and swapping act on each replica's own values.
  """

  def __init__(self, params: Sequence[tf.Variable], *, name: str):
    super().__init__(name=name)
    if not params:
      raise ValueError("`params` must hold at least one variable; received "
                       "an empty list.")
    with self.name_scope:
      self.values = [variables_lib.weight(
          tf.identity(p), name=optimizers.slot_key(p), trainable=False)
                     for p in params]
    self._params = lambda: tuple(params)  # not tracked: no second copy
    # (parameter, copy) pairs of each replica's components (of the one
    # variable without a strategy). The swap is one compiled call: a
    # GoogLeNet has about 300 variables, and a swap's eager assignments of
    # mirrored variables took most of a second (an evaluation swaps twice).
    pairs = []
    for param, value in zip(params, self.values):
      ours, theirs = _components(param), _components(value)
      if len(ours) != len(theirs):
        raise ValueError(
            f"{param.name} has {len(ours)} replica(s) and its copy "
            f"{len(theirs)}: make the copy in the strategy's scope that "
            "made the parameters.")
      pairs.extend(zip(ours, theirs))
    exchange = tf.function(
        lambda: [_swap_values(param, value) for param, value in pairs],
        autograph=False)
    # Behind lambdas: not tracked, so checkpoints hold what they held.
    self._pairs, self._exchange = lambda: pairs, lambda: exchange()

  def copy_from_params(self) -> None:
    """Sets every value to its parameter's (eagerly: a few calls per run do
    not repay a trace)."""
    for param, value in self._pairs():
      value.assign(param)

  @contextlib.contextmanager
  def swapped_in(self) -> Iterator[None]:
    """Inside, the parameters hold this copy's values (and the copy holds
    theirs); after, both are as before, whatever happens inside."""
    self._exchange()
    try:
      yield
    finally:
      self._exchange()


def _components(variable: tf.Variable) -> Sequence[tf.Variable]:
  """This process's replicas' variables of a distributed variable; the
  variable itself otherwise."""
  strategy = getattr(variable, "distribute_strategy", None)
  return (strategy.experimental_local_results(variable) if strategy
          else (variable,))


def _swap_values(a: tf.Variable, b: tf.Variable) -> None:
  """Swaps two variables' values (traced: the reads and writes of each
  variable run in program order)."""
  old = tf.raw_ops.ReadVariableOp(resource=a.handle, dtype=a.dtype)
  new = tf.raw_ops.ReadVariableOp(resource=b.handle, dtype=b.dtype)
  tf.raw_ops.AssignVariableOp(resource=a.handle, value=new)
  tf.raw_ops.AssignVariableOp(resource=b.handle, value=old)


class ExponentialMovingAverage(WeightCopy):
  """avg <- d * avg + (1 - d) * param after every applied step, with
  d = min(decay, (1 + n) / (10 + n)) at the n-th update, as TF's
  `tf.train.ExponentialMovingAverage(num_updates=...)` does: early averages
  are not dominated by the initial weights."""

  def __init__(self, params: Sequence[tf.Variable], decay: float, *,
               name: str = "ema"):
    if not 0 < decay < 1:
      raise ValueError(f"`decay` must be in (0, 1); received decay={decay!r}.")
    super().__init__(params, name=name)
    self.decay = float(decay)

  def rate(self, num_updates: tf.Tensor) -> tf.Tensor:
    """The decay the `num_updates`-th update uses."""
    n = tf.cast(num_updates, tf.float32)
    return tf.minimum(self.decay, (1.0 + n) / (10.0 + n))

  def update(self, num_updates: tf.Tensor) -> None:
    """One averaging step from the current parameters (replica context:
    each replica averages its own identical copy)."""
    decay = self.rate(num_updates)
    for avg, param in zip(self.values, self._params()):
      # avg <- avg - (1 - d) (avg - param), in place: one fused kernel
      # instead of four tensors the size of the weights.
      tf.raw_ops.ResourceApplyGradientDescent(
          var=avg.handle, alpha=tf.cast(1.0 - decay, avg.dtype),
          delta=avg.read_value() - param, use_locking=False)


class BestWeights(WeightCopy):
  """The weights with the highest validation accuracy so far, with that
  accuracy and its step (-1 before the first validation), and the last step
  offered (`validated`): a checkpoint at a validation step whose validation
  a signal interrupted has `validated` below its step, and the resumed run
  validates it before going on (train/loop/controller.py)."""

  def __init__(self, params: Sequence[tf.Variable], *, name: str = "best"):
    super().__init__(params, name=name)
    with self.name_scope:
      self.accuracy = variables_lib.weight(tf.constant(-1.0, tf.float64),
                                           name="accuracy",
                                           trainable=False)
      self.step = variables_lib.weight(tf.constant(-1, tf.int64), name="step",
                                       trainable=False)
      self.validated = variables_lib.weight(tf.constant(-1, tf.int64),
                                            name="validated",
                                            trainable=False)

  @property
  def found(self) -> bool:
    return int(self.step.numpy()) >= 0

  def offer(self, accuracy: float, step: int) -> bool:
    """Keeps the parameters' values if `accuracy` beats the best so far (a
    tie keeps the earlier weights); returns whether it did."""
    self.validated.assign(step)
    if accuracy <= float(self.accuracy.numpy()):
      return False
    self.copy_from_params()
    self.accuracy.assign(accuracy)
    self.step.assign(step)
    return True
