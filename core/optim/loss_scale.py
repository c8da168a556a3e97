"""Dynamic loss scaling for float16 training, on raw TF variables.

float16 gradients underflow to zero below ~6e-8; multiplying the loss by a
large scale S keeps them representable, and dividing the gradients by S
restores their value. If any scaled gradient overflows (inf/NaN) the step is
skipped and S halves; after `growth_interval` finite steps in a row S doubles.
The state lives in variables updated identically on every replica (the
finite flag comes from all-reduced gradients), so it is checkpointed and
resumes exactly. bfloat16 has float32's range and needs no scaling.
"""

from typing import Optional, Sequence

import tensorflow as tf

from layers import variables as variables_lib


class DynamicLossScale(tf.Module):
  """Loss scale that halves on overflow and doubles after a quiet stretch."""

  def __init__(self, initial_scale: float = 2.0 ** 15, *,
               growth_interval: int = 2000, factor: float = 2.0,
               min_scale: float = 1.0, name: Optional[str] = "loss_scale"):
    """Creates the scale and the counter of finite steps.

    Raises:
      ValueError: If a setting is out of range.
    """
    super().__init__(name=name)
    if not initial_scale >= 1:
      raise ValueError(f"`initial_scale` must be >= 1; received "
                       f"initial_scale={initial_scale!r}.")
    if not (isinstance(growth_interval, int) and growth_interval > 0):
      raise ValueError(f"`growth_interval` must be a positive integer; "
                       f"received growth_interval={growth_interval!r}.")
    if not factor > 1:
      raise ValueError(f"`factor` must be > 1; received factor={factor!r}.")
    self.growth_interval, self.factor = growth_interval, factor
    self.min_scale = min_scale
    with self.name_scope:
      self.scale = variables_lib.weight(tf.constant(initial_scale, tf.float32),
                                        name="scale", trainable=False)
      self.good_steps = variables_lib.weight(tf.constant(0, tf.int64),
                                             name="good_steps",
                                             trainable=False)

  def scale_loss(self, loss: tf.Tensor) -> tf.Tensor:
    """loss * S."""
    return loss * tf.cast(self.scale, loss.dtype)

  def unscale(self, grads: Sequence[tf.Tensor]) -> list:
    """grads / S, in float32."""
    inv = 1.0 / self.scale
    return [tf.cast(g, tf.float32) * inv for g in grads]

  def update(self, finite: tf.Tensor) -> None:
    """Adjusts S after a step whose unscaled gradients were `finite`."""
    grow = tf.logical_and(finite, self.good_steps + 1 >= self.growth_interval)
    new_scale = tf.where(
        finite,
        tf.where(grow, self.scale * self.factor, self.scale),
        tf.maximum(self.scale / self.factor, self.min_scale))
    new_good = tf.where(tf.logical_and(finite, tf.logical_not(grow)),
                        self.good_steps + 1, tf.zeros_like(self.good_steps))
    self.scale.assign(new_scale)
    self.good_steps.assign(new_good)
