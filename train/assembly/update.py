"""How the config's update is computed: the step's options (precision,
batch cut, mixing, class weights), the learning-rate schedule and the
validations' record the plateau schedule and early stopping read. The
assembler (build.py) makes the parts from these."""

from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from core.data import mixing
from core.optim import choices as optim_choices
from core.optim import losses
from core.optim import schedules
from core.runtime import distribution
from core.runtime.errors import InputError
from train.loop import step as step_lib
from train.loop.state import Plateau
from train.startup.config import RunConfig

COMPUTE_DTYPES = {precision: tf.as_dtype(dtype) for precision, dtype
                  in optim_choices.COMPUTE_DTYPES.items()}


def step_options(config: RunConfig, batch: distribution.BatchSplit,
                 class_weights: Optional[Tuple[float, ...]] = None,
                 every_example_counts: bool = False
                 ) -> step_lib.StepOptions:
  """How the config's training step computes its update.

  Raises:
    InputError: If the batch cannot be cut as the config asks.
  """
  rows = groups(config, batch)
  return step_lib.StepOptions(
      batch=batch, aux_weights=tuple(config.aux_loss_weights),
      compute_dtype=compute_dtype(config),
      jit_compile=config.jit_compile,
      label_smoothing=config.label_smoothing, clip_norm=config.clip_norm,
      norm_group_size=rows if config.norm == "batch" else None,
      gradient_norms=bool(config.histogram_every),
      accumulate_steps=config.accumulate_steps,
      mixing=mixing.Mixing(config.mixup_alpha, config.cutmix_alpha,
                           config.mix_switch_prob, rows),
      class_weights=class_weights,
      every_example_counts=every_example_counts)


def class_weights(config: RunConfig, labels: Optional[np.ndarray],
                  num_classes: int) -> Optional[Tuple[float, ...]]:
  """--class_weight=balanced's weights from the training labels.

  Raises:
    InputError: If the split has no labels up front (streamed records).
  """
  if config.class_weight == "none":
    return None
  if labels is None:
    raise InputError("`class_weight` must be none for a data set whose "
                     "labels are not known before training (streamed "
                     "records); received class_weight=balanced.")
  return tuple(float(w) for w in losses.balanced_class_weights(
      labels, num_classes))


def plateau_record(config: RunConfig) -> Optional[Plateau]:
  """The validations' record, when the plateau schedule or early stopping
  reads it (only then: a run without either writes the checkpoint keys it
  always wrote)."""
  if config.lr_schedule != "plateau" and not config.early_stopping:
    return None
  return Plateau(patience=(config.plateau_patience
                           if config.lr_schedule == "plateau" else 0),
                 factor=config.plateau_factor,
                 stop_after=config.early_stopping)


def compute_dtype(config: RunConfig) -> tf.DType:
  """The config's compute dtype (ValueError while it still says auto:
  `with_precision` resolves it)."""
  if config.mixed_precision not in COMPUTE_DTYPES:
    raise ValueError(f"`mixed_precision` {config.mixed_precision!r} must be "
                     "resolved first (build.with_precision).")
  return COMPUTE_DTYPES[config.mixed_precision]


def make_schedule(config: RunConfig, steps_per_epoch: int,
                  total_steps: int, plateau: Optional[Plateau] = None):
  """The learning-rate schedule the config names, with its warm-up
  (`plateau`: the record whose scale the plateau schedule reads)."""
  warmup = min(config.warmup_steps, total_steps - 1)
  if config.lr_schedule == "cosine":
    # Its warm-up is built in: the cosine starts where the warm-up ends.
    return schedules.WarmupCosine(config.rate, total_steps=total_steps,
                                  warmup_steps=warmup)
  if config.lr_schedule == "step":
    # The paper: 4 % lower every 8 epochs.
    schedule = schedules.StepDecay(config.rate,
                                   decay_steps=8 * steps_per_epoch)
  elif config.lr_schedule == "plateau":
    # The rate, lowered by the controller when validation stalls.
    schedule = schedules.Scaled(schedules.Constant(config.rate),
                                plateau.rate_scale)
  else:
    schedule = schedules.Constant(config.rate)
  return schedules.Warmup(schedule, warmup) if warmup else schedule


def groups(config: RunConfig, batch: distribution.BatchSplit) -> int:
  """Examples per batch normalisation group and per mixing group: the same
  --norm_group_size, which must divide a replica's (micro-)batch.

  Raises:
    InputError: If it does not, where the config uses groups.
  """
  mixes = config.mixup_alpha or config.cutmix_alpha
  rows = batch.per_replica // config.accumulate_steps
  if batch.per_replica % config.accumulate_steps:
    raise InputError(
        f"`accumulate_steps` must divide the per-replica batch "
        f"({batch.per_replica}: global batch {batch.global_batch_size} over "
        f"{batch.num_replicas} replicas); received "
        f"accumulate_steps={config.accumulate_steps}.")
  if (config.norm == "batch" or mixes) and rows % config.norm_group_size:
    raise InputError(
        f"`norm_group_size` must divide the per-replica "
        + ("micro-batch" if config.accumulate_steps > 1 else "batch")
        + f" ({rows}: global batch {batch.global_batch_size} over "
        f"{batch.num_replicas} replicas"
        + (f" in {config.accumulate_steps} micro-batches"
           if config.accumulate_steps > 1 else "")
        + ("; it also sizes the mixing groups" if mixes else "")
        + f"); received norm_group_size={config.norm_group_size}.")
  return config.norm_group_size
