"""Optimizers on raw TF: slot variables created eagerly, fused update kernels.

Slots are created in `__init__` from the variable list (inside
`strategy.scope()` when distributed), so they exist before the first trace and
before a checkpoint is restored; lazy slot creation is what breaks Keras
optimizers in multi-step loops under MirroredStrategy (keras-team/keras#19246).
Updates use TF's fused kernels (ResourceApplyAdam, ResourceApplyKerasMomentum),
one op per variable instead of about ten. `apply` runs in replica context on
gradients that are already all-reduced (core/runtime/distribution.py).
"""

from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import tensorflow as tf

from core.optim.choices import OPTIMIZERS
from layers import variables as variables_lib

Schedule = Callable[[tf.Tensor], tf.Tensor]


def slot_key(var: tf.Variable) -> str:
  """A variable's name without the ':0' output suffix."""
  return var.name.split(":")[0]


def decays(var: tf.Variable) -> bool:
  """Whether weight decay applies: kernels (rank 2 and up), never biases or
  other vectors."""
  return var.shape.rank is not None and var.shape.rank >= 2


class Optimizer(tf.Module):
  """Base class: owns the update counter and the slots of each variable."""

  SLOTS: Sequence[str] = ()

  def __init__(self, params: Sequence[tf.Variable],
               learning_rate: Union[float, Schedule], *,
               weight_decay: float = 0.0, name: Optional[str] = None,
               rate_scales: Optional[Dict[str, float]] = None):
    super().__init__(name=name)
    # slot_key(var) -> a multiplier of its learning rate (fine-tuning's
    # pre-trained layers); the rest at the schedule's rate. A closure, so
    # the checkpoint's object graph does not change.
    scales = dict(rate_scales or {})
    self._rate_scale = lambda key: scales.get(key, 1.0)
    if not weight_decay >= 0:
      raise ValueError("`weight_decay` must be non-negative; received "
                       f"weight_decay={weight_decay!r}.")
    self.weight_decay = float(weight_decay)
    if not params:
      raise ValueError("`params` must hold at least one variable; "
                       "received an empty list.")
    keys = [slot_key(v) for v in params]
    if len(set(keys)) != len(keys):
      raise ValueError("`params` must have unique variable names; received "
                       "duplicates (name every variable).")
    params = tuple(params)
    # A closure, not an attribute: the optimizer must not track the model's
    # variables (they would show up in `optimizer.variables`).
    self._params = lambda: params
    self._schedule = (learning_rate if callable(learning_rate)
                      else (lambda step, rate=float(learning_rate):
                            tf.constant(rate, tf.float32)))
    with self.name_scope:
      self.iterations = variables_lib.weight(
          tf.constant(0, tf.int64), name="iterations", trainable=False)
      self.slots: Dict[str, Dict[str, tf.Variable]] = {}
      for var, key in zip(params, keys):
        self.slots[key] = {
            slot: variables_lib.weight(tf.zeros(var.shape, var.dtype),
                                       name=f"{key}/{slot}", trainable=False)
            for slot in self.SLOTS}

  @property
  def params(self) -> Tuple[tf.Variable, ...]:
    """The variables it updates, in the order `apply` takes gradients."""
    return self._params()

  def learning_rate(self) -> tf.Tensor:
    """The rate the next update will use."""
    return self._schedule(self.iterations)

  def apply(self, grads: Sequence[tf.Tensor]) -> None:
    """Applies one update from `grads`, aligned with the params list.

    Raises:
      ValueError: If the number of gradients does not match.
    """
    params = self._params()
    if len(grads) != len(params):
      raise ValueError(f"`grads` must have one entry per variable "
                       f"({len(params)}); received {len(grads)}.")
    lr = self.learning_rate()
    scalars = self._scalars(lr, tf.cast(self.iterations + 1, tf.float32))
    for grad, var in zip(grads, params):
      if self.weight_decay and decays(var):
        # Decoupled (Loshchilov & Hutter 2019), before the gradient step as
        # Keras' AdamW does: var <- var - lr * wd * var.
        # One fused in-place kernel.
        tf.raw_ops.ResourceApplyGradientDescent(
            var=var.handle, alpha=tf.cast(
                lr * self.weight_decay * self._rate_scale(slot_key(var)),
                var.dtype),
            delta=var.read_value(), use_locking=False)
      key = slot_key(var)
      scale = self._rate_scale(key)
      self._update(tf.cast(grad, var.dtype), var, self.slots[key],
                   dict(scalars, lr=lr * scale) if scale != 1.0 else scalars)
    self.iterations.assign_add(1)

  def _scalars(self, lr: tf.Tensor, step: tf.Tensor) -> Dict[str, tf.Tensor]:
    """The step's scalar inputs, computed once and shared by every update."""
    return {"lr": lr}

  def _update(self, grad, var, slots, scalars):
    raise NotImplementedError


class Adam(Optimizer):
  """Adam (Kingma & Ba 2014) as TF and Keras define it.

  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
  var <- var - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps).
  Defaults are the seed tutorial's (Keras defaults). With `weight_decay`
  it is AdamW: kernels also shrink by lr * weight_decay each step.
  """

  SLOTS = ("m", "v")

  def __init__(self, params: Sequence[tf.Variable],
               learning_rate: Union[float, Schedule] = 1e-3, *,
               beta_1: float = 0.9, beta_2: float = 0.999,
               epsilon: float = 1e-7, weight_decay: float = 0.0,
               name: str = "adam",
               rate_scales: Optional[Dict[str, float]] = None):
    for arg, value in (("beta_1", beta_1), ("beta_2", beta_2)):
      if not 0 <= value < 1:
        raise ValueError(f"`{arg}` must be in [0, 1); received "
                         f"{arg}={value!r}.")
    super().__init__(params, learning_rate, weight_decay=weight_decay,
                     name=name, rate_scales=rate_scales)
    self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

  def _scalars(self, lr, step):
    return {"lr": lr, "beta1_power": tf.pow(self.beta_1, step),
            "beta2_power": tf.pow(self.beta_2, step),
            "beta1": tf.constant(self.beta_1, tf.float32),
            "beta2": tf.constant(self.beta_2, tf.float32),
            "epsilon": tf.constant(self.epsilon, tf.float32)}

  def _update(self, grad, var, slots, scalars):
    tf.raw_ops.ResourceApplyAdam(
        var=var.handle, m=slots["m"].handle, v=slots["v"].handle, grad=grad,
        use_locking=False, **scalars)


class SGD(Optimizer):
  """SGD with momentum (the paper uses 0.9), optionally Nesterov.

  accum <- momentum * accum - lr * g;
  var <- var + accum  (Nesterov: var + momentum * accum - lr * g).
  """

  SLOTS = ("momentum",)

  def __init__(self, params: Sequence[tf.Variable],
               learning_rate: Union[float, Schedule] = 0.01, *,
               momentum: float = 0.9, nesterov: bool = False,
               weight_decay: float = 0.0, name: str = "sgd",
               rate_scales: Optional[Dict[str, float]] = None):
    if not 0 <= momentum < 1:
      raise ValueError(f"`momentum` must be in [0, 1); received "
                       f"momentum={momentum!r}.")
    super().__init__(params, learning_rate, weight_decay=weight_decay,
                     name=name, rate_scales=rate_scales)
    self.momentum, self.nesterov = momentum, nesterov

  def _scalars(self, lr, step):
    return {"lr": lr, "momentum": tf.constant(self.momentum, tf.float32)}

  def _update(self, grad, var, slots, scalars):
    tf.raw_ops.ResourceApplyKerasMomentum(
        var=var.handle, accum=slots["momentum"].handle, grad=grad,
        use_locking=False, use_nesterov=self.nesterov, **scalars)


def create(name: str, params: Sequence[tf.Variable],
           learning_rate: Union[float, Schedule], **kwargs) -> Optimizer:
  """Builds the optimizer `name` names (one of OPTIMIZERS).

  Raises:
    ValueError: If `name` is unknown.
  """
  if name not in OPTIMIZERS:
    raise ValueError(f"`optimizer` must be one of {', '.join(OPTIMIZERS)}; "
                     f"received optimizer={name!r}.")
  kind = {"adam": Adam, "sgd": SGD}[name]
  return kind(params, learning_rate, **kwargs)
