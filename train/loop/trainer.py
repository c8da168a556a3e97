"""The trainer: runs update steps in compiled chunks (Orbit's trainer).

The controller (train/loop/controller.py) asks it for the training stream
from a step, `train(iterator, n)` for the means of n steps, and the counters
and histograms it writes between chunks. The step itself is a pure function
of a batch and the variables (train/loop/step.py).
"""

from typing import Dict, Tuple

import numpy as np
import tensorflow as tf

from train.loop import compiled
from train.loop.feed import Feed, naming_bad_images
from train.loop.preemption import StopVote
from train.loop.step import TrainStep


class Trainer:
  """The training side of a run.

  Args:
    step: The training step (it holds the model, the optimizer, the state).
    feed: How splits become batches.
    vote: The stop flags the compiled loop checks before every step.
    steps_per_epoch: Global batches per training epoch.
  """

  def __init__(self, step: TrainStep, feed: Feed, vote: StopVote,
               steps_per_epoch: int):
    self.step, self.feed, self.steps_per_epoch = step, feed, steps_per_epoch
    self.loop = compiled.CompiledLoop(feed.strategy, step, step.sums, vote,
                                      global_step=step.state.global_step)

  @property
  def global_step(self) -> int:
    return int(self.step.state.global_step.numpy())

  def iterator(self, split, start_step: int):
    """A distributed iterator over the training stream from `start_step`."""
    return iter(self.feed.distributed(split, training=True,
                                      start_step=start_step,
                                      steps_per_epoch=self.steps_per_epoch))

  def train(self, iterator, num_steps: int) -> Dict[str, float]:
    """Runs `num_steps` steps; returns their mean metrics (skipped steps
    count for nothing), the images skipped as unreadable, the next learning
    rate and the counters.

    Raises:
      DataError: An image cannot be read or decoded (and skipping is off).
    """
    with naming_bad_images():
      sums = self.loop.run(iterator, num_steps)
    values = compiled.means(sums, [k for k in sums
                                   if k not in ("examples", "bad_images")])
    values["skipped_images"] = float(sums["bad_images"])
    values["learning_rate"] = float(self.step.optimizer.learning_rate())
    values["skipped_steps"] = float(self.step.state.skipped_steps.numpy())
    if self.step.loss_scale is not None:
      values["loss_scale"] = float(self.step.loss_scale.scale.numpy())
    return values

  def divergence(self) -> Tuple[int, int]:
    """(consecutive skipped steps, the last skipped step)."""
    state = self.step.state
    return (int(state.consecutive_bad.numpy()),
            int(state.last_bad_step.numpy()))

  def histograms(self) -> Dict[str, np.ndarray]:
    """Every trainable weight by name, and the last step's per-variable
    gradient norms (when --histogram_every is set)."""
    out = {f"weights/{v.name.split(':')[0]}": v.numpy()
           for v in self.step.model.trainable_variables}
    if self.step.grad_norms is not None:
      out["gradient_norms"] = self.step.grad_norms.numpy()
    return out

  def checkpoint_objects(self) -> Dict[str, tf.Module]:
    """What only training adds to a checkpoint, by checkpoint name (API)."""
    objects = {"optimizer": self.step.optimizer}
    if self.step.loss_scale is not None:
      objects["loss_scale"] = self.step.loss_scale
    return objects
