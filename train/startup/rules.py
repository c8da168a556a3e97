"""The rules a run's configuration obeys: what RunConfig refuses on creation
(one line, InputError) and what build warns of (allowed, likely not meant).
Like config.py it imports no TensorFlow."""

import dataclasses
import math
import os
import re
from typing import Tuple

from core.data import types
from core.data.choices import AUGMENTATIONS
from core.runtime.errors import InputError
from layers.choices import BLOCKS, layer_names

# --trainable's words; `from:<layer>` names a layer of layer_names.
TRAINABLE = ("all", "head")


def check(config) -> None:
  """Raises InputError, one line naming the field and its rule, on the first
  rule `config` (a RunConfig) breaks. A published variant sets its batch
  normalisation here (_check_variant)."""
  def need(ok, field, rule):
    if not ok:
      raise InputError(f"`{field}` must be {rule}; received "
                       f"{field}={getattr(config, field)!r}.")

  need(bool(config.model_dir), "model_dir", "a directory path")
  for rule in (_check_fields, _check_rates, _check_lists, _check_variant,
               _check_fine_tuning, _check_data, _check_recipe):
    rule(config, need)


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _check_fields(config, need) -> None:
  """Choices, counts and the distribution's combinations."""
  for field in dataclasses.fields(config):
    choices = field.metadata.get("choices")
    if choices is not None:
      need(getattr(config, field.name) in choices, field.name,
           "one of " + ", ".join(choices))
  for field in ("num_cpu_devices", "cluster_join_timeout", "epochs",
                "global_batch_size", "image_size", "steps_per_loop",
                "checkpoint_every", "norm_group_size", "max_bad_steps",
                "max_image_pixels", "accumulate_steps", "plateau_patience",
                "randaugment_ops"):
    value = getattr(config, field)
    need(_is_int(value) and value > 0, field, "a positive integer")
  for field in ("validation_size", "train_examples", "warmup_steps",
                "eval_every", "seed", "label_offset", "histogram_every",
                "early_stopping"):
    value = getattr(config, field)
    need(_is_int(value) and value >= 0, field, "a non-negative integer")
  need(config.train_steps is None or (_is_int(config.train_steps)
                                      and config.train_steps > 0),
       "train_steps", "a positive integer when set")
  need(_is_int(config.keep_checkpoints) and config.keep_checkpoints >= 2,
       "keep_checkpoints",
       "at least 2 (so a corrupt newest checkpoint has a fallback)")
  need(config.strategy != "multi_worker" or config.num_cpu_devices == 1,
       "num_cpu_devices", "1 with --strategy=multi_worker (TF's "
       "multi-worker strategy uses one CPU device per worker; run more "
       "workers instead)")
  need(not (config.start_over and config.strategy == "multi_worker"),
       "start_over", "off with --strategy=multi_worker (every worker "
       "would decide alone what to move; move the old run aside by hand)")


def _check_recipe(config, need) -> None:
  """The modern recipe's options: ranges, and combinations that cannot
  work (each refused before anything loads)."""
  for field in ("mixup_alpha", "cutmix_alpha"):
    value = getattr(config, field)
    need(value >= 0 and math.isfinite(value), field,
         "a non-negative finite number (0: off)")
  need(0 <= config.mix_switch_prob <= 1, "mix_switch_prob", "in [0, 1]")
  need(0 < config.plateau_factor < 1, "plateau_factor", "in (0, 1)")
  need(0 < config.layer_decay <= 1, "layer_decay", "in (0, 1] (1: off)")
  need(0 <= config.randaugment_magnitude <= 30, "randaugment_magnitude",
       "an integer from 0 to 30")
  need(not {"randaugment", "trivialaugment"} <= set(config.augment),
       "augment", "at most one of randaugment and trivialaugment (each is "
       "a whole policy)")
  need(config.global_batch_size % config.accumulate_steps == 0,
       "accumulate_steps", f"a divisor of --global_batch_size="
       f"{config.global_batch_size} (each micro-batch is an equal part)")
  # IDX sets without held-out images have no validation split; files
  # may (their own), which the assembler checks once they are listed.
  validates = (config.validation_size > 0
               or config.dataset not in ("mnist", "fashion_mnist",
                                         "synthetic"))
  need(validates or config.lr_schedule != "plateau", "lr_schedule",
       "constant, step or cosine with --validation_size=0 (plateau lowers "
       "the rate when validation stalls, and there is no validation)")
  need(validates or not config.early_stopping, "early_stopping",
       "0 with --validation_size=0 (there is no validation to stop on)")
  need(not (config.mixup_alpha or config.cutmix_alpha)
       or config.norm_group_size % 2 == 0, "norm_group_size",
       "even with --mixup_alpha or --cutmix_alpha (partners pair up inside "
       "each group of that many rows)")
  need(config.class_weight == "none" or not types.is_records(config.dataset),
       "class_weight", "none with streamed records (balanced weights need "
       "every label before the first step; a folder or IDX set has them)")


def _check_data(config, need) -> None:
  need(types.is_known(config.dataset), "dataset",
       "one of " + ", ".join(types.NAMES) + ", or tfds:NAME")
  need(not (config.train_examples and types.is_records(config.dataset)),
       "train_examples",
       f"0 with --dataset={config.dataset} (records are streamed, not "
       "indexed, so cannot be cut; write fewer shards instead)")


def _check_variant(config, need) -> None:
  """A published network's variant implies its batch normalisation and
  needs the paper's stem (layers/googlenet.check_variant)."""
  if config.variant != "paper" and config.norm == "none":
    object.__setattr__(config, "norm", "batch")  # the variants' own
  need(config.variant == "paper" or config.stem == "paper", "stem",
       f"paper with --variant={config.variant} (its network's stem)")


def _check_fine_tuning(config, need) -> None:
  need(config.trainable in TRAINABLE or (
      config.trainable.startswith("from:")
      and config.trainable[len("from:"):] in layer_names(config.blocks)),
       "trainable", "all, head or from:<layer> with a layer of "
       + ", ".join(layer_names(config.blocks)))
  try:
    re.compile(config.init_exclude or "")
  except re.error as e:
    need(False, "init_exclude", f"a regular expression ({e})")
  need(config.pretrained_lr_multiplier > 0
       and math.isfinite(config.pretrained_lr_multiplier),
       "pretrained_lr_multiplier", "a positive finite number")


def _check_rates(config, need) -> None:
  need(config.learning_rate is None or (
      config.learning_rate > 0 and math.isfinite(config.learning_rate)),
       "learning_rate", "a positive finite number")
  need(0 <= config.momentum < 1, "momentum", "in [0, 1)")
  for field in ("label_smoothing", "ema_decay"):
    need(0 <= getattr(config, field) < 1, field, "in [0, 1)")
  for field in ("weight_decay", "clip_norm"):
    value = getattr(config, field)
    need(value >= 0 and math.isfinite(value), field,
         "a non-negative finite number")


def _check_lists(config, need) -> None:
  need(len(config.aux_loss_weights) == 2 and all(
      w >= 0 and math.isfinite(w) for w in config.aux_loss_weights),
       "aux_loss_weights", "two non-negative numbers such as 0.3,0.3")
  need(config.crop_padding >= 0, "crop_padding", "a non-negative number")
  need(all(op in AUGMENTATIONS for op in config.augment)
       and len(set(config.augment)) == len(config.augment), "augment",
       "distinct entries of " + ", ".join(AUGMENTATIONS))
  order = [BLOCKS.index(b) if b in BLOCKS else -1 for b in config.blocks]
  need(-1 not in order and order == sorted(set(order))
       and {"4a", "4d"} <= set(config.blocks), "blocks",
       "inception blocks of " + ",".join(BLOCKS) + " in that order, "
       "keeping 4a and 4d (the auxiliary heads' places), such as 4a,4d")
  need(len(config.profile_steps) in (0, 2) and (
      not config.profile_steps or 0 < config.profile_steps[0]
      < config.profile_steps[1]), "profile_steps",
       "empty or two increasing positive steps such as 20,25")


def warnings(config) -> Tuple[str, ...]:
  """Settings that are allowed but likely not meant, one line each."""
  lines = []
  if not config.init_from and config.trainable != "all":
    lines.append(f"--trainable={config.trainable} without --init_from "
                 "freezes randomly initialised layers.")
  if not config.init_from and config.pretrained_lr_multiplier != 1:
    lines.append("--pretrained_lr_multiplier applies to pre-trained "
                 "layers, and without --init_from there are none.")
  exports = config.export_dir or os.path.join(config.model_dir, "export")
  if config.export != "none" and re.search(r"\[.*\]", exports):
    lines.append(f"the export folder {exports!r} has a [...] in its path, "
                 "which tf.saved_model.load and TF Serving read as a "
                 "pattern: load the exports through a path without one "
                 "(a symbolic link), or set --export_dir.")
  if config.test_mirror and "flip" not in config.augment:
    lines.append("--test_mirror scores each image with its mirror image "
                 "too, but --augment has no flip: training never shows "
                 "the network a mirrored image (add flip to --augment, "
                 "or drop --test_mirror).")
  if config.crop_padding and "crop" not in config.augment:
    lines.append("--crop_padding sets the padding of --augment=crop, but "
                 "--augment has no crop: it changes nothing (add crop to "
                 "--augment, or drop --crop_padding).")
  elif config.crop_padding and types.is_streamed(config.dataset):
    lines.append(f"--crop_padding pads images of one fixed size (the IDX "
                 f"sets), but --dataset={config.dataset} reads files, which "
                 "--augment=crop crops with Inception's random-resized "
                 "crop: it changes nothing (drop --crop_padding).")
  return tuple(lines)
