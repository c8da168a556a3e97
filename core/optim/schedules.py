"""Learning-rate schedules: frozen callables from the update count to a rate."""

import dataclasses
import math
from typing import Callable

import tensorflow as tf


def _positive(name: str, value) -> None:
  if not isinstance(value, (int, float)) or isinstance(value, bool) or not (
      value > 0 and math.isfinite(value)):
    raise ValueError(f"`{name}` must be a positive finite number; received "
                     f"{name}={value!r}.")


@dataclasses.dataclass(frozen=True)
class Constant:
  """The same rate at every step."""
  rate: float

  def __post_init__(self):
    _positive("rate", self.rate)

  def __call__(self, step: tf.Tensor) -> tf.Tensor:
    del step
    return tf.constant(self.rate, tf.float32)


@dataclasses.dataclass(frozen=True)
class StepDecay:
  """rate * decay ** floor(step / decay_steps): the paper's schedule is a 4 %
  decrease every 8 epochs (decay=0.96, decay_steps=8 * steps_per_epoch)."""
  rate: float
  decay_steps: int
  decay: float = 0.96

  def __post_init__(self):
    _positive("rate", self.rate)
    _positive("decay_steps", self.decay_steps)
    if not 0 < self.decay <= 1:
      raise ValueError(f"`decay` must be in (0, 1]; received decay="
                       f"{self.decay!r}.")

  def __call__(self, step: tf.Tensor) -> tf.Tensor:
    periods = tf.math.floordiv(tf.cast(step, tf.int64),
                               tf.cast(self.decay_steps, tf.int64))
    return self.rate * tf.pow(tf.constant(self.decay, tf.float32),
                              tf.cast(periods, tf.float32))


@dataclasses.dataclass(frozen=True)
class WarmupCosine:
  """Linear warm-up from 0 to `rate` over `warmup_steps`, then cosine decay
  to `final_rate` at `total_steps` (held there after)."""
  rate: float
  total_steps: int
  warmup_steps: int = 0
  final_rate: float = 0.0

  def __post_init__(self):
    _positive("rate", self.rate)
    _positive("total_steps", self.total_steps)
    if not 0 <= self.warmup_steps < self.total_steps:
      raise ValueError(
          "`warmup_steps` must be in [0, total_steps); received "
          f"warmup_steps={self.warmup_steps}, total_steps={self.total_steps}.")
    if not 0 <= self.final_rate <= self.rate:
      raise ValueError(f"`final_rate` must be in [0, rate]; received "
                       f"final_rate={self.final_rate!r}.")

  def __call__(self, step: tf.Tensor) -> tf.Tensor:
    step = tf.cast(step, tf.float32)
    warm = float(max(self.warmup_steps, 1))
    warmup = self.rate * (step + 1.0) / warm
    span = float(self.total_steps - self.warmup_steps)
    progress = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
    cosine = self.final_rate + 0.5 * (self.rate - self.final_rate) * (
        1.0 + tf.cos(math.pi * progress))
    return tf.where(step < self.warmup_steps, warmup, cosine)


@dataclasses.dataclass(frozen=True)
class Warmup:
  """Linear warm-up in front of any schedule: for the first `warmup_steps`
  updates the rate is `schedule(step) * (step + 1) / warmup_steps`, then
  `schedule(step)` itself. (WarmupCosine has its warm-up built in: its
  cosine starts where the warm-up ends.)"""
  schedule: Callable[[tf.Tensor], tf.Tensor]
  warmup_steps: int

  def __post_init__(self):
    _positive("warmup_steps", self.warmup_steps)
    if not callable(self.schedule):
      raise TypeError(f"`schedule` must be callable; received "
                      f"schedule={self.schedule!r}.")

  def __call__(self, step: tf.Tensor) -> tf.Tensor:
    step = tf.cast(step, tf.float32)
    rate = self.schedule(step)
    ramp = tf.minimum((step + 1.0) / float(self.warmup_steps), 1.0)
    return rate * ramp


@dataclasses.dataclass(frozen=True, eq=False)
class Scaled:
  """`schedule(step) * scale`, with `scale` a variable the training loop
  changes: the plateau schedule lowers it when validation stalls
  (train/loop/state.Plateau). A variable, so the compiled step reads its
  current value without a retrace and the checkpoint holds it. (eq=False:
  a variable has no value equality.)"""
  schedule: Callable[[tf.Tensor], tf.Tensor]
  scale: tf.Variable

  def __post_init__(self):
    if not callable(self.schedule):
      raise TypeError(f"`schedule` must be callable; received "
                      f"schedule={self.schedule!r}.")
    if not isinstance(self.scale, tf.Variable):
      raise TypeError(f"`scale` must be a tf.Variable; received "
                      f"scale={self.scale!r}.")

  def __call__(self, step: tf.Tensor) -> tf.Tensor:
    return self.schedule(step) * tf.cast(self.scale, tf.float32)
