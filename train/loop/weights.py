"""The weight sets a run keeps beside the trained weights, and which one the
model holds for each purpose.

The moving average (--ema_decay) is what validation sees; the best validated
weights (--export=best) are what the final test and the export see. Each is a
copy of every weight and batch statistic (core/optim/averaging.py) swapped
into the model for the purpose and back out after.
"""

import contextlib
from typing import Callable, Dict, Optional, Tuple

import tensorflow as tf

from core.optim import averaging

# The purposes a caller asks weights for.
VALIDATION, FINAL = "validation", "final"


class WeightSets:
  """The moving average and the best validated weights of a model.

  Args:
    ema: The moving average of the weights, or None (--ema_decay=0).
    best: The best validated weights, or None (--export other than best).
  """

  def __init__(self, ema: Optional[averaging.ExponentialMovingAverage] = None,
               best: Optional[averaging.BestWeights] = None):
    self.ema, self.best = ema, best

  def __call__(self, purpose: str = VALIDATION):
    """A context in which the model holds the weights `purpose` uses:
    VALIDATION: the moving average when there is one, else the trained
    weights; FINAL (the last test and the export): the best validated
    weights once a validation chose some, else the same as VALIDATION.
    Outside it the model holds the trained weights.

    Raises:
      ValueError: If `purpose` is neither.
    """
    if purpose not in (VALIDATION, FINAL):
      raise ValueError(f"`purpose` must be {VALIDATION!r} or {FINAL!r}; "
                       f"received purpose={purpose!r}.")
    if purpose == FINAL and self.best is not None and self.best.found:
      return self.best.swapped_in()
    if self.ema is not None:
      return self.ema.swapped_in()
    return contextlib.nullcontext()

  def update(self, num_updates: tf.Tensor) -> None:
    """After an applied step (in the compiled step): the moving average
    takes the new weights in."""
    if self.ema is not None:
      self.ema.update(num_updates)

  def start_from_params(self) -> None:
    """Both copies start from the model's weights (--init_from)."""
    for copy in (self.ema, self.best):
      if copy is not None:
        copy.copy_from_params()

  def offer_best(self, accuracy: float, step: int) -> bool:
    """Keeps the validated weights (the average when there is one) if
    `accuracy` is the best so far; False without --export=best."""
    if self.best is None:
      return False
    with self(VALIDATION):
      return self.best.offer(accuracy, step)

  def validation_missed(self, step: int) -> bool:
    """With --export=best: whether the weights restored at `step` were
    never offered (a signal interrupted their validation)."""
    return self.best is not None and int(self.best.validated.numpy()) < step

  def final_step(self) -> int:
    """The step the final weights were validated at, or -1 for the last
    ones."""
    best = self.best_validation()
    return -1 if best is None else best[1]

  def best_validation(self) -> Optional[Tuple[float, int]]:
    """(accuracy, step) of the best validation the checkpointed record
    holds, this process's and any before a resume; None without
    --export=best or before one."""
    if self.best is None or not self.best.found:
      return None
    return float(self.best.accuracy.numpy()), int(self.best.step.numpy())

  def checkpoint_objects(self) -> Dict[str, tf.Module]:
    """The sets a checkpoint holds, by checkpoint name (API)."""
    return {name: copy for name, copy in (("ema", self.ema),
                                          ("best", self.best))
            if copy is not None}

  def added_checkpoint_keys(self, global_step: tf.Variable) -> Dict[
      str, Tuple[tf.Variable, Callable[[], None]]]:
    """Variables checkpoints of earlier versions lack, and their default
    (core/runtime/checkpointing.Checkpointer's `added`): `best/validated`
    came with the redone validation; an older checkpoint is taken as
    validated at its step, which is what that version did."""
    if self.best is None:
      return {}
    return {"best/validated/.ATTRIBUTES/VARIABLE_VALUE": (
        self.best.validated,
        lambda: self.best.validated.assign(global_step))}
