"""The run manifest: the resolved configuration and environment of a run,
written next to its checkpoints so it can be reproduced and resumed."""

import dataclasses
import json
import os
import platform
import subprocess
from typing import Optional

import tensorflow as tf

from core.data import datasets
from core.data import types
from core.runtime import distribution
from core.runtime import files
from core.runtime.errors import InputError, NoSpaceError, is_no_space
from train.startup import kernels

FILENAME = "manifest.json"


def git_revision() -> Optional[str]:
  """The source tree's git commit, or None outside a git checkout."""
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here,
                         capture_output=True, text=True, timeout=5)
  except (OSError, subprocess.SubprocessError):
    return None
  return out.stdout.strip() or None if out.returncode == 0 else None


def build(config, strategy: tf.distribute.Strategy,
          batch: distribution.BatchSplit, data: datasets.Splits) -> dict:
  """The manifest of a run about to start."""
  return {
      "strategy": config.strategy,
      "num_replicas": batch.num_replicas,
      "input_pipelines": distribution.input_pipelines(strategy),
      "devices": list(getattr(strategy.extended, "worker_devices", [])),
      "global_batch_size": batch.global_batch_size,
      "per_replica_batch_size": batch.per_replica,
      "dataset": config.dataset,
      "data": data.info.as_dict(),
      "examples": {"train": data.train.num_examples,
                   "validation": data.validation.num_examples,
                   "test": data.test.num_examples},
      "image_size": config.image_size,
      "seed": config.seed,
      "tensorflow_version": tf.__version__,
      "cpu_kernels": "oneDNN" if kernels.onednn_enabled() else "Eigen",
      "python_version": platform.python_version(),
      "git_revision": git_revision(),
      "fingerprint": config.fingerprint,
      "flags": dataclasses.asdict(config),
  }


def read(model_dir: str) -> Optional[dict]:
  """The manifest in `model_dir`, or None if it has none.

  Raises:
    InputError: If it cannot be read or is not shaped as this engine
      writes it (hand-edited, say): naming the file and the field.
  """
  path = os.path.join(model_dir, FILENAME)
  if not files.exists(path):
    return None
  try:
    manifest = json.loads(files.read_text(path))
  except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
    raise InputError(f"{path} cannot be read ({e}); move it away or use "
                     "another --model_dir.") from None
  wrong = ("the file" if not isinstance(manifest, dict) else next(
      (f"{key!r}" for key in ("fingerprint", "flags", "data")
       if not isinstance(manifest.get(key, {}), dict)), None))
  if wrong:
    raise InputError(f"{path} is not a manifest this engine wrote ({wrong} "
                     "is not a JSON object); move it away or use another "
                     "--model_dir.")
  return manifest


def check_compatible(model_dir: str, fingerprint: dict) -> Optional[str]:
  """Why the run in `model_dir` has another model configuration than
  `fingerprint` (each field that differs), or None if it has not.

  Raises:
    InputError: If the manifest cannot be read (`read`).
  """
  manifest = read(model_dir)
  if manifest is None:
    return None
  old = manifest.get("fingerprint", {})
  old = {k: tuple(v) if isinstance(v, list) else v for k, v in old.items()}
  # Both sides' keys: an option listed only when set must match its
  # absence too.
  keys = list(fingerprint) + [k for k in old if k not in fingerprint]
  diffs = _differences(old, fingerprint, keys)
  return (f"`model_dir` {model_dir} holds a run with another configuration "
          f"({'; '.join(diffs)})" if diffs else None)


def check_same_data(model_dir: str, info: datasets.DatasetInfo,
                    label_offset: int,
                    input_pipelines: int = 1) -> Optional[str]:
  """Why the run in `model_dir` was trained on other data than `info` (the
  data set, its class count and names, the label offset), or None. For
  TFRecord shards the number of input pipelines (workers) counts too: each
  reads its own share of the shards, so another count reads another stream.

  A checkpoint of another class count fails to restore anyway; the same
  count with other names or another offset restores, and would train the
  head's units on other classes than their names. The data folder itself
  may move (a new mount): a changed --data_dir is a note (changed_flags).
  """
  manifest = read(model_dir)
  if manifest is None or "data" not in manifest:
    return None
  old, new = manifest["data"], info.as_dict()
  diffs = _differences(old, new, ("name", "num_classes"))
  old_names = old.get("class_names")
  if isinstance(old_names, list) and old_names != new["class_names"]:
    diffs.append(_names_differ(old_names, new["class_names"]))
  old_offset = manifest.get("flags", {}).get("label_offset", 0)
  if old_offset != label_offset:
    diffs.append(f"label_offset: {old_offset!r} there, {label_offset!r} now")
  old_pipelines = manifest.get("input_pipelines", 1)
  if types.is_records(new["name"]) and old_pipelines != input_pipelines:
    diffs.append(f"workers reading the shards: {old_pipelines!r} there, "
                 f"{input_pipelines!r} now, which reads them in another "
                 "order; run as many workers")
  return (f"`model_dir` {model_dir} holds a run trained on other data "
          f"({'; '.join(diffs)})" if diffs else None)


def _names_differ(old: list, new: list) -> str:
  """The class names' difference in a few words, at any class count."""
  gone = [n for n in old if n not in set(new)]
  added = [n for n in new if n not in set(old)]
  if not gone and not added:
    return "class_names: the same names in another order"
  parts = [f"{label} {len(names)} ({', '.join(map(repr, names[:3]))}"
           + (", ..." if len(names) > 3 else "") + ")"
           for label, names in (("added", added), ("gone", gone)) if names]
  return "class_names: " + ", ".join(parts)


def changed_flags(model_dir: str, flags: dict) -> list:
  """The flags that differ from those in `model_dir`'s manifest, one
  "name: old there, new now" each (none without a readable manifest).

  check_compatible refuses a different model; these are the rest (the
  schedule's length, the learning rate, augmentation...), which a resume
  may change but then trains a different run than one command would have.
  """
  try:
    old = (read(model_dir) or {}).get("flags", {})
  except InputError:
    return []
  new = json.loads(json.dumps(flags, default=str))  # as the manifest has it
  return _differences(old, new, [k for k in sorted(new) if k in old
                                 and k not in ("model_dir", "start_over")])


def _differences(old: dict, new: dict, keys) -> list:
  """One "name: old there, new now" for each of `keys` whose values differ."""
  return [f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in keys
          if old.get(k) != new.get(k)]


def write(model_dir: str, manifest: dict) -> None:
  """Writes `manifest.json` atomically (core/runtime/files.write_atomic).

  Raises:
    NoSpaceError: The disk is full; the previous manifest is intact.
  """
  try:
    files.write_atomic(os.path.join(model_dir, FILENAME), json.dumps(
        manifest, indent=2, sort_keys=True, default=str))
  except OSError as e:
    if is_no_space(e):
      raise NoSpaceError(f"no space left in {model_dir} to write "
                         f"{FILENAME}: free space and run the same command "
                         "again.") from None
    raise


def pretty(manifest: dict) -> str:
  """The manifest as indented JSON, for TensorBoard's text dashboard."""
  return json.dumps(manifest, indent=2, sort_keys=True, default=str)


def record(config, strategy: tf.distribute.Strategy,
           batch: distribution.BatchSplit, data: datasets.Splits,
           restored: Optional[int], summaries, report, *,
           initialised=None, precision=None) -> None:
  """Writes manifest.json, and shows it in TensorBoard (`summaries`) on a
  fresh start; a resume with other flags than the run's says which, in one
  line to `report`. `initialised` (train/assembly/finetune.Loaded): what a
  new run loaded with --init_from, kept by its resumes. `precision`
  (core/optim/precision.Choice): what --mixed_precision asked, what runs,
  and why."""
  changed = (changed_flags(config.model_dir, dataclasses.asdict(config))
             if restored is not None else [])
  if changed:
    report(f"note: resuming with other flags than the run's before "
           f"({'; '.join(changed)}): it continues with the new values")
  before = (read(config.model_dir) or {}) if restored is not None else {}
  manifest = build(config, strategy, batch, data)
  manifest["resumed_from_step"] = restored
  # What the run began with, and why, kept by its resumes.
  chosen = before.get("precision") or (precision._asdict() if precision
                                       else None)
  if chosen:
    manifest["precision"] = chosen
  init = (initialised.as_dict() if initialised is not None
          else before.get("initialised_from"))
  if init:
    manifest["initialised_from"] = init
  write(config.model_dir, manifest)
  if restored is None:
    summaries.text("train", "manifest",
                   "```\n" + pretty(manifest) + "\n```", 0)
    summaries.hparams(dataclasses.asdict(config), run=os.path.basename(
        os.path.normpath(config.model_dir)))

