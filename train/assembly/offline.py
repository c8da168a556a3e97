"""Evaluation and prediction outside training (the TensorFlow side of
train/evaluate.py and train/predict.py): a checkpoint through an
evaluation-only assembly, a SavedModel through its serving signatures."""

import os
from typing import Optional

import numpy as np
import tensorflow as tf

from core.runtime import checkpointing
from core.data import batches
from core.data import types
from core.runtime import distribution
from core.runtime import files
from core.runtime.errors import InputError
from train.assembly import build
from train.startup.config import RunConfig
from train.artefacts.report import Report
from train.loop.weights import FINAL


def _split(data: types.Splits, name: str):
  split = getattr(data, name)
  if not split.num_examples:
    raise InputError(f"the {data.info.name} data set has no {name} split "
                     "here; choose --split=train, validation or test.")
  return split


def evaluate_checkpoint(config: RunConfig, model_dir: str,
                        step: Optional[int], split_name: str) -> Report:
  """The engine's own evaluation of a checkpoint (the run's strategy and
  replica split, so the numbers are the run's)."""
  config, _ = build.with_precision(config, model_dir)  # its flags say auto
  distribution.configure_gpus(use=config.device == "auto",
                              memory_growth=config.gpu_memory_growth)
  distribution.configure_cpu_devices(config.num_cpu_devices)
  strategy = distribution.make_strategy(config.strategy)
  data = build.load_data(config)
  split = _split(data, split_name)
  parts = build.evaluation_parts(config, strategy, data.info,
                                 distribution.split_batch(
                                     config.global_batch_size, strategy))
  checkpointer = checkpointing.Checkpointer(model_dir, writer=False,
                                            **parts.checkpoint_objects())
  try:
    restored = (checkpointer.restore(step) if step is not None
                else checkpointer.restore_latest())
  except checkpointing.UnusableRun as e:
    raise InputError(f"{e}; evaluate with the data the run was trained "
                     "on.") from None
  if restored is None:
    raise InputError(f"no checkpoint in {model_dir} to evaluate.")
  # The weights the run tested and exported (the average, or the best).
  result = parts.evaluator.evaluate(split, FINAL)
  return Report(f"checkpoint {restored} of {model_dir}", restored, split_name,
                result.examples, result.values["loss/main"],
                result.values["accuracy/main"],
                result.values["accuracy/top5"], list(data.info.class_names),
                np.asarray(result.confusion).astype(int).tolist())


SIGNATURES = ("serving_default", "serving_bytes")
OUTPUTS = ("logits", "probabilities", "classes", "class_names")


def load_saved_model(path: str):
  """The SavedModel's serving signatures.

  Raises:
    InputError: If `path` is not a SavedModel this engine exported (two
      signatures taking `images` and returning OUTPUTS), in one line that
      says what it holds instead.
  """
  try:
    with files.literal(os.path.join(path, "saved_model.pb")) as readable:
      loaded = tf.saved_model.load(os.path.dirname(readable))
  except (OSError, IOError, ValueError, tf.errors.OpError) as e:
    raise InputError(f"`saved_model` {path!r} cannot be loaded ("
                     f"{str(e).strip().splitlines()[0][:200]}).") from None
  found = []
  for name, signature in loaded.signatures.items():
    inputs = sorted(signature.structured_input_signature[1])
    outputs = sorted(signature.structured_outputs)
    found.append(f"{name}({', '.join(inputs)}) -> {', '.join(outputs)}")
  if not all(name in loaded.signatures
             and list(loaded.signatures[name].structured_input_signature[1])
             == ["images"]
             and set(OUTPUTS) <= set(loaded.signatures[name].structured_outputs)
             for name in SIGNATURES):
    raise InputError(
        f"`saved_model` {path!r} is not a model this engine exported: it "
        f"needs signatures {' and '.join(SIGNATURES)} taking `images` and "
        f"returning {', '.join(OUTPUTS)}; it has "
        f"{'; '.join(found) or 'no signatures'}.")
  return loaded


def logits_of(loaded, split, batch_size: int = 256) -> np.ndarray:
  """The SavedModel's logits for every example of a split, sent as a
  client would (core/data/batches.serving_inputs)."""
  return np.concatenate([
      loaded.signatures[signature](images=images)["logits"].numpy()
      for signature, images in batches.serving_inputs(split, batch_size)])


def evaluate_saved_model(config: RunConfig, path: str,
                         split_name: str) -> Report:
  """The SavedModel, through its serving signature, on a split of the run's
  data."""
  loaded = load_saved_model(path)
  data = build.load_data(config)
  split = _split(data, split_name)
  logits = logits_of(loaded, split)
  if logits.shape[1] != data.info.num_classes:
    raise InputError(f"`saved_model` {path!r} scores {logits.shape[1]} "
                     f"classes, but {config.model_dir}'s data has "
                     f"{data.info.num_classes}.")
  labels = np.asarray(split.labels, np.int64)
  shifted = logits - logits.max(axis=1, keepdims=True)
  log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
  top5 = np.argsort(-logits, axis=1)[:, :5]
  n = data.info.num_classes
  confusion = np.zeros([n, n], np.int64)
  np.add.at(confusion, (labels, logits.argmax(axis=1)), 1)
  return Report(f"SavedModel {path}", None, split_name, len(labels),
                float(-log_probs[np.arange(len(labels)), labels].mean()),
                float((logits.argmax(axis=1) == labels).mean()),
                float((top5 == labels[:, None]).any(axis=1).mean()),
                list(data.info.class_names), confusion.tolist())
