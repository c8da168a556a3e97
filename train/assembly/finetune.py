"""Fine-tuning: what a new run starts from (`--init_from`) and what it
trains (`--trainable`, `--pretrained_lr_multiplier`).

`--init_from` takes a run's `model_dir` (the model weights of its newest
checkpoint: with `--ema_decay`, the raw weights; its export holds the
average), one of our SavedModel exports (the weights it serves: the trunk
and the main head) or the folder tools/import_weights.py writes from the
published torchvision or TF-slim weights (for a run with that --variant).
Every variable of the new model whose name (without the model's scope) and
shape match a source variable takes its value. The
heads (classifier, aux1, aux2) keep their fresh initialisation where they do
not match (another class count; an export holds no auxiliary heads), and so
does whatever `--init_exclude` matches. Any other variable that does not
match (another stem, norm, channel count or block list), or a source that
matches nothing, is one line and exit 2: a fine-tune that silently trains
from scratch is what this guards against. The optimizer, step and data
position start fresh. It applies to a new run only: a run that resumes
restores its own checkpoint, and its manifest keeps what was loaded.

`--trainable` chooses what the optimizer updates: `all`, `head` (the three
heads) or `from:<layer>` (that trunk layer, every later one and the heads).
The frozen layers are not in the gradient's sources, so no gradient is
computed for them (nor, below the first trainable layer, any backward
pass), and their batch normalisation keeps its moving statistics
(layers/normalization.BatchNorm.frozen). `--pretrained_lr_multiplier`
scales the learning rate of the trainable layers outside the heads.
"""

import dataclasses
import hashlib
import json
import os
import re
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from core.optim.optimizers import slot_key
from core.runtime import checkpointing
from core.runtime import files
from core.runtime.errors import InputError
from layers.choices import BLOCKS, layer_names
from layers.googlenet import GoogLeNet
from train.assembly import manifest as manifest_lib

HEADS = ("classifier", "aux1", "aux2")
# What tools/import_weights.py writes: a record of the import and the
# checkpoint of the imported model (`tf.train.Checkpoint(model=...)`).
IMPORTED, IMPORTED_CHECKPOINT = "imported.json", "weights"


def layer_of(variable: tf.Variable) -> str:
  """The layer a variable belongs to: `inception_4a` of
  `googlenet/inception_4a/branch1x1/kernel:0`."""
  parts = variable.name.split("/")
  return parts[1] if len(parts) > 2 else parts[0]


def key_of(name: str) -> str:
  """A variable's name without the model's scope and the `:0`."""
  name = name.split(":")[0]
  return name.split("/", 1)[1] if "/" in name else name


@dataclasses.dataclass(frozen=True)
class Plan:
  """What a run trains."""
  params: Tuple[tf.Variable, ...]       # the optimizer's variables
  frozen: Tuple[str, ...]               # trunk layers left as they are
  rate_scales: Dict[str, float]         # slot key -> rate multiplier


def plan(model: GoogLeNet, trainable: str, lr_multiplier: float = 1.0,
         layer_decay: float = 1.0) -> Plan:
  """The variables `trainable` (RunConfig's) lets train and their rates;
  marks the frozen layers' batch normalisations frozen (call before the
  step is traced).

  A trunk layer's rate is the learning rate times `lr_multiplier` times
  `layer_decay` to the power of its depth from the head: the last
  inception block 1, the one before 2, ... conv1 the most. The heads (the
  classifier and both auxiliary heads) train at the learning rate.
  """
  order = layer_names(model.block_names)
  if trainable == "all":
    first = 0
  elif trainable == "head":
    first = len(order)
  else:
    first = order.index(trainable[len("from:"):])
  frozen = order[:first]
  params = tuple(v for v in model.trainable_variables
                 if layer_of(v) not in frozen)
  for norm in model.norm_layers:
    norm.frozen = layer_of(norm.gamma) in frozen
  depth = {layer: len(order) - i for i, layer in enumerate(order)}
  scales = {slot_key(v): lr_multiplier * layer_decay ** depth[layer_of(v)]
            for v in params if layer_of(v) not in HEADS}
  return Plan(params, tuple(frozen),
              {k: s for k, s in scales.items() if s != 1})


@dataclasses.dataclass(frozen=True)
class Loaded:
  """What `initialise` did: for the run's lines and its manifest."""
  source: str
  kind: str                               # "checkpoint ckpt-N" | "SavedModel"
  loaded: Tuple[str, ...]
  fresh: Tuple[Tuple[str, str], ...]      # (variable, why)
  unused: int                             # source variables nothing took
  digest: int = 0                         # of the loaded values (56 bits)

  def as_dict(self) -> dict:
    return {"source": self.source, "kind": self.kind,
            "loaded": len(self.loaded),
            "reinitialised": {name: why for name, why in self.fresh},
            "unused_in_source": self.unused}

  def lines(self) -> List[str]:
    """One line for the load, one per group of variables left fresh."""
    out = [f"init: loaded {len(self.loaded)} variables from {self.source} "
           f"({self.kind})" + (f"; {self.unused} of its variables are not "
                               "in this model" if self.unused else "")]
    by_reason: Dict[str, List[str]] = {}
    for name, why in self.fresh:
      by_reason.setdefault(why, []).append(name)
    for why, names in by_reason.items():
      shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more"
                                      if len(names) > 3 else "")
      out.append(f"init: {len(names)} variables start afresh ({why}): "
                 f"{shown}")
    return out


def source_values(path: str, variant: str = "paper"
                  ) -> Tuple[str, Dict[str, np.ndarray], Optional[List[str]]]:
  """(kind, {variable key: value}, class names or None) of the weights at
  `path`, for a model of `variant`.

  Raises:
    InputError: If `path` is neither a SavedModel nor a run's model_dir
      with a checkpoint, naming what it is, or is an import of another
      variant.
  """
  if not files.exists(path):
    raise InputError(f"`init_from` {path!r} does not exist.")
  if files.exists(os.path.join(path, IMPORTED)):
    return _imported_values(path, variant)
  if files.exists(os.path.join(path, "saved_model.pb")):
    try:
      with files.literal(os.path.join(path, "saved_model.pb")) as readable:
        loaded = tf.saved_model.load(os.path.dirname(readable))
    except Exception as e:  # pylint: disable=broad-except
      raise InputError(f"`init_from` {path!r}: the SavedModel cannot be "
                       f"loaded ({checkpointing.first_line(e)}).") from None
    try:
      names = json.loads(files.read_text(os.path.join(
          path, "assets.extra", "metadata.json"))).get("class_names")
    except (OSError, ValueError, AttributeError):
      names = None
    return "SavedModel", {key_of(v.name): v.numpy()
                          for v in getattr(loaded, "weights", [])}, names
  found = checkpointing.complete_checkpoints(path)
  manifest = manifest_lib.read(path) if found else None
  if not found or manifest is None:
    raise InputError(
        f"`init_from` {path!r} is neither a SavedModel (no saved_model.pb) "
        "nor a training run's model_dir with a checkpoint and its "
        "manifest.json.")
  return _newest_readable(path, found, manifest)


def _newest_readable(path: str, found, manifest: dict):
  """source_values of the newest of `found` checkpoints that reads, falling
  back past damaged ones as a resume does (named in the kind)."""
  unusable = []
  for number, prefix in found:
    try:
      values = _checkpoint_values(manifest, prefix)
    except Exception as e:  # pylint: disable=broad-except
      unusable.append(f"ckpt-{number} unusable: "
                      f"{checkpointing.first_line(e)}")
      continue
    return (f"checkpoint ckpt-{number}" + (
        f" ({'; '.join(unusable)})" if unusable else ""), values,
            manifest.get("data", {}).get("class_names"))
  raise InputError(f"`init_from` {path!r}: none of its {len(found)} "
                   f"checkpoint(s) can be read ({unusable[0]}).")


def _imported_values(path: str, variant: str):
  """source_values of an import (tools/import_weights.py): its weights, read
  through a model of the variant it was imported for, which must be the
  run's (`variant`): an import fits only its own architecture."""
  try:
    record = json.loads(files.read_text(os.path.join(path, IMPORTED)))
  except (OSError, ValueError) as e:
    raise InputError(f"`init_from` {path!r}: its {IMPORTED} cannot be read "
                     f"({e}).") from None
  try:
    theirs = record["variant"]
    source = (GoogLeNet(num_classes=record["num_classes"], in_channels=3,
                        image_size=record["image_size"], norm="batch",
                        variant=theirs) if theirs == variant else None)
  except (ValueError, KeyError, TypeError) as e:
    raise InputError(f"`init_from` {path!r}: its {IMPORTED} is not one "
                     f"tools.import_weights wrote ({e}).") from None
  if source is None:
    raise InputError(
        f"`init_from` {path!r} holds {theirs}'s ImageNet GoogLeNet, which "
        f"needs its architecture: add --variant={theirs} (this run has "
        f"--variant={variant}).")
  try:
    with files.literal(os.path.join(path, IMPORTED_CHECKPOINT)) as readable:
      tf.train.Checkpoint(model=source).read(readable).expect_partial()
  except Exception as e:  # pylint: disable=broad-except
    # A damaged or unreadable import fails in many ways (OSError,
    # DataLossError, IndexError from the reader): every one is one line.
    raise InputError(f"`init_from` {path!r}: its weights cannot be read "
                     f"({checkpointing.first_line(e)}); import them again "
                     "with tools.import_weights.") from None
  absent = set(record.get("not_in_source", ()))  # e.g. slim's aux heads
  return (f"imported {record['source']} weights, --variant="
          f"{record['variant']}",
          {key_of(v.name): v.numpy() for v in source.variables
           if key_of(v.name) not in absent}, record.get("class_names"))


def _checkpoint_values(manifest: dict, prefix: str) -> Dict[str, np.ndarray]:
  """The model weights of checkpoint `prefix`, read through a model built as
  the manifest's run built it (the checkpoint's keys are object paths)."""
  flags, data = manifest.get("flags", {}), manifest.get("data", {})
  source = GoogLeNet(
      num_classes=data["num_classes"], in_channels=data["image_shape"][-1],
      image_size=flags["image_size"], stem=flags.get("stem", "paper"),
      norm=flags.get("norm", "none"), variant=flags.get("variant", "paper"),
      blocks=tuple(flags.get("blocks") or BLOCKS))
  with files.literal(prefix) as readable:
    tf.train.Checkpoint(model=source).restore(readable).expect_partial()
  return {key_of(v.name): v.numpy() for v in source.variables}


def _why_fresh(key: str, shape: tuple, there: Optional[np.ndarray],
               head: bool, kind: str, other_classes: bool,
               pattern) -> Optional[str]:
  """Why variable `key` (of `shape`; `there`, the source's value or None)
  does not load, or None when it does."""
  if pattern is not None and pattern.search(key):
    return "--init_exclude"
  if there is None:
    return ("not in the source: an export holds the main head only"
            if kind == "SavedModel" and head else "not in the source")
  if tuple(there.shape) != shape:
    return ("another class count" if head else
            f"shape {list(shape)} here, {list(there.shape)} there")
  if other_classes and key.split("/")[-2] == "classifier":
    return "other class names"  # the same count of units, other classes
  return None


def initialise(model: GoogLeNet, path: str, exclude: Optional[str] = None,
               *, class_names: Optional[List[str]] = None,
               values: Optional[Callable[[str], tuple]] = None) -> Loaded:
  """Assigns the matching weights of `path` to `model` (see above). With
  `class_names` (this run's), heads trained on classes of other names start
  afresh too, even at the same count: their units mean other classes.

  Raises:
    InputError: Nothing matches, or a variable outside the heads does not,
      naming the first few and why.
  """
  kind, source, names = (values(path) if values
                         else source_values(path, model.variant))
  other_classes = bool(class_names and names
                       and list(names) != list(class_names))
  pattern = re.compile(exclude) if exclude else None
  loaded, fresh, wrong = [], [], []
  for variable in model.variables:
    key, head = key_of(variable.name), layer_of(variable) in HEADS
    there = source.get(key)
    why = _why_fresh(key, tuple(variable.shape), there, head, kind,
                     other_classes, pattern)
    if why is None:
      variable.assign(there.astype(variable.dtype.as_numpy_dtype))
      loaded.append(key)
    else:
      (fresh if head or why in ("--init_exclude", "other class names")
       else wrong).append((key, why))
  if wrong or not loaded:
    detail = "; ".join(f"{k}: {why}" for k, why in wrong[:3]) + (
        f"; and {len(wrong) - 3} more" if len(wrong) > 3 else "")
    raise InputError(
        f"`init_from` {path!r} ({kind}) does not fit this model: " + (
            f"no variable matches (it holds {len(source)}, none with this "
            "model's names and shapes)" if not loaded else
            f"{len(wrong)} variable(s) outside the heads do not match "
            f"({detail})")
        + "; use the same --variant, --stem, --norm, --blocks and image "
        "channels as "
        "the source, or --init_exclude for what should start afresh.")
  ours = {key_of(v.name) for v in model.variables}
  return Loaded(path, kind, tuple(loaded), tuple(fresh),
                sum(1 for k in source if k not in ours),
                _digest(model, set(loaded)))


def _digest(model: GoogLeNet, keys) -> int:
  """56 bits of the sha256 of the variables `keys` names: what workers
  compare to know they loaded the same weights."""
  digest = hashlib.sha256()
  for variable in model.variables:
    if key_of(variable.name) in keys:
      digest.update(key_of(variable.name).encode()
                    + np.ascontiguousarray(variable.numpy()).tobytes())
  return int.from_bytes(digest.digest()[:7], "big")
