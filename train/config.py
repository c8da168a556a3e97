"""The run's configuration: one frozen dataclass, validated on creation."""

import dataclasses
import math
from typing import Optional, Tuple

from core import datasets
from core import distribution
from core.errors import InputError

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "step", "cosine")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
DEFAULT_LEARNING_RATES = {"adam": 1e-3, "sgd": 0.01}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything a run depends on. Field names match the command-line flags.

  Raises (on creation):
    InputError: If a field is out of range or fields contradict each other.
  """
  model_dir: str
  export_dir: Optional[str] = None
  strategy: str = "mirrored"
  num_cpu_devices: int = 1
  dataset: str = "fashion_mnist"
  data_dir: Optional[str] = None
  validation_size: int = 2000
  train_examples: int = 0
  epochs: int = 40
  train_steps: Optional[int] = None
  global_batch_size: int = 64
  optimizer: str = "adam"
  learning_rate: Optional[float] = None
  lr_schedule: str = "constant"
  warmup_steps: int = 0
  momentum: float = 0.9
  nesterov: bool = False
  aux_loss_weights: Tuple[float, float] = (0.3, 0.3)
  image_size: int = 224
  seed: int = 0
  deterministic: bool = False
  steps_per_loop: int = 20
  checkpoint_every: int = 500
  keep_checkpoints: int = 3
  eval_every: int = 0
  max_bad_steps: int = 10
  jit_compile: bool = False
  mixed_precision: str = "float32"
  profile_steps: Tuple[int, ...] = ()

  def __post_init__(self):
    def need(ok, field, rule):
      if not ok:
        raise InputError(f"`{field}` must be {rule}; received "
                         f"{field}={getattr(self, field)!r}.")

    need(bool(self.model_dir), "model_dir", "a directory path")
    need(self.strategy in distribution.STRATEGIES, "strategy",
         "one of " + ", ".join(distribution.STRATEGIES))
    need(self.dataset in datasets.NAMES, "dataset",
         "one of " + ", ".join(datasets.NAMES))
    need(self.optimizer in OPTIMIZERS, "optimizer",
         "one of " + ", ".join(OPTIMIZERS))
    need(self.lr_schedule in SCHEDULES, "lr_schedule",
         "one of " + ", ".join(SCHEDULES))
    need(self.mixed_precision in PRECISIONS, "mixed_precision",
         "one of " + ", ".join(PRECISIONS))
    for field in ("num_cpu_devices", "epochs", "global_batch_size",
                  "image_size", "steps_per_loop", "checkpoint_every",
                  "max_bad_steps"):
      value = getattr(self, field)
      need(isinstance(value, int) and not isinstance(value, bool)
           and value > 0, field, "a positive integer")
    for field in ("validation_size", "train_examples", "warmup_steps",
                  "eval_every", "seed"):
      need(isinstance(getattr(self, field), int) and getattr(self, field) >= 0,
           field, "a non-negative integer")
    need(self.train_steps is None or (isinstance(self.train_steps, int)
                                      and self.train_steps > 0),
         "train_steps", "a positive integer when set")
    need(self.keep_checkpoints >= 2, "keep_checkpoints",
         "at least 2 (so a corrupt newest checkpoint has a fallback)")
    need(self.learning_rate is None or (
        self.learning_rate > 0 and math.isfinite(self.learning_rate)),
         "learning_rate", "a positive finite number")
    need(0 <= self.momentum < 1, "momentum", "in [0, 1)")
    need(len(self.aux_loss_weights) == 2 and all(
        w >= 0 and math.isfinite(w) for w in self.aux_loss_weights),
         "aux_loss_weights", "two non-negative numbers such as 0.3,0.3")
    need(len(self.profile_steps) in (0, 2) and (
        not self.profile_steps or 0 < self.profile_steps[0]
        < self.profile_steps[1]), "profile_steps",
         "empty or two increasing positive steps such as 20,25")

  @property
  def rate(self) -> float:
    """The learning rate, defaulting per optimizer."""
    return self.learning_rate or DEFAULT_LEARNING_RATES[self.optimizer]

  @property
  def fingerprint(self) -> dict:
    """Fields that a checkpoint in `model_dir` must agree with to resume."""
    return {k: getattr(self, k) for k in (
        "dataset", "validation_size", "train_examples", "image_size",
        "global_batch_size", "optimizer", "mixed_precision", "seed")}
