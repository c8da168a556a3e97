"""Assembles a run from its config and hands it to the controller.

The order matters and is the only logic here: devices are split before any
TF op runs; directories are checked before any work (an unwritable export
folder is found at the start, not after hours of training); the data set is
loaded and its facts (DatasetInfo) size the model and the export; the batch
split is computed once from the real strategy and passed down.
"""

import os
import random
from typing import Callable, Tuple

import numpy as np
import tensorflow as tf

from core import checkpointing
from core import datasets
from core import distribution
from core import pipeline
from core.errors import InputError
from train import export as export_lib
from train import manifest as manifest_lib
from train.config import TrainConfig
from train.controller import Controller, Result, Schedule
from train.engine import Engine
from train.preemption import PreemptionWatcher
from train.profiling import ProfileWindow
from train.summaries import Summaries

Report = Callable[[str], None]


def run(config: TrainConfig, *, report: Report = print) -> Result:
  """Trains, evaluates and exports as `config` says; resumes if it can.

  Raises:
    InputError: Bad data, directories or settings (one-line message).
    NoSpaceError: The disk filled up; what was written before is intact.
    TrainingError: Training diverged; checkpoints on disk are intact.
    Preempted: SIGTERM/SIGINT arrived; a checkpoint was written.
  """
  return build(config, report=report).run()


def build(config: TrainConfig, *, report: Report = print) -> Controller:
  """Everything a run needs, restored from its newest good checkpoint."""
  distribution.configure_cpu_devices(
      config.num_cpu_devices, warn=lambda line: report(f"warning: {line}"))
  export_dir = config.export_dir or os.path.join(config.model_dir, "export")
  prepare_dir(config.model_dir, "model_dir")
  manifest_lib.check_compatible(config.model_dir, config.fingerprint)
  prepare_dir(export_dir, "export_dir")
  data = load_data(config)
  _seed_everything(config)
  strategy = distribution.make_strategy(config.strategy)
  batch = distribution.split_batch(config.global_batch_size, strategy)
  steps_per_epoch, total = _steps(config, data.train.num_examples)
  engine = Engine(config, strategy, data.info, batch,
                  steps_per_epoch=steps_per_epoch, total_steps=total)
  checkpointer = checkpointing.Checkpointer(
      config.model_dir, max_to_keep=config.keep_checkpoints,
      report=lambda line: report(f"warning: {line}"),
      guard=engine.model.trainable_variables, **engine.checkpoint_objects())
  restored = checkpointer.restore_latest()
  export_lib.remove_stale_temporaries(export_dir)
  summaries = Summaries(config.model_dir)
  _record_manifest(config, strategy, batch, data, restored, summaries)
  controller = Controller(
      engine=engine, data=data,
      schedule=Schedule(total, config.steps_per_loop, config.checkpoint_every,
                        config.eval_every or steps_per_epoch),
      summaries=summaries, checkpointer=checkpointer,
      watcher=PreemptionWatcher(on_signal=engine.request_stop),
      profiler=ProfileWindow(os.path.join(config.model_dir, "train"),
                             config.profile_steps),
      export=_exporter(config, engine, data.info, export_dir),
      global_batch_size=batch.global_batch_size,
      steps_per_epoch=steps_per_epoch, max_bad_steps=config.max_bad_steps,
      model_dir=config.model_dir, report=report)
  controller.announce(restored, batch.num_replicas, config.image_size)
  return controller


def prepare_dir(path: str, flag: str) -> None:
  """Creates `path` and checks that it can be written.

  Raises:
    InputError: If it cannot be created or written, naming `flag`.
  """
  try:
    os.makedirs(path, exist_ok=True)
    probe = os.path.join(path, f".write-test-{os.getpid()}")
    with open(probe, "w"):
      pass
    os.remove(probe)
  except OSError as e:
    raise InputError(f"`{flag}` {path!r} cannot be written "
                     f"({e.strerror or e}).") from None


def load_data(config: TrainConfig) -> datasets.Splits:
  """The config's data set, cut to `train_examples` when set."""
  data = datasets.load(config.dataset, data_dir=config.data_dir,
                       validation_size=config.validation_size,
                       label_offset=config.label_offset)
  if config.train_examples:
    if config.dataset == "tfrecord":
      raise InputError("`train_examples` cannot cut TFRecord shards (they "
                       "are streamed, not indexed); write fewer shards "
                       "instead.")
    train, n = data.train, config.train_examples
    data = data._replace(train=type(train)(*(field[:n] for field in train)))
  return data


def _steps(config: TrainConfig, train_examples: int) -> Tuple[int, int]:
  """(steps per epoch, total steps) of the run."""
  steps_per_epoch = pipeline.steps_per_epoch(train_examples,
                                             config.global_batch_size)
  if steps_per_epoch == 0:
    raise InputError(f"the training set ({train_examples} images) is "
                     f"smaller than `global_batch_size` "
                     f"({config.global_batch_size}).")
  return steps_per_epoch, (config.train_steps
                           or config.epochs * steps_per_epoch)


def _seed_everything(config: TrainConfig) -> None:
  random.seed(config.seed)
  np.random.seed(config.seed)
  tf.random.set_seed(config.seed)
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()


def _record_manifest(config, strategy, batch, data, restored,
                     summaries: Summaries) -> None:
  """Writes manifest.json, and shows it in TensorBoard on a fresh start."""
  manifest = manifest_lib.build(config, strategy, batch, data)
  manifest["resumed_from_step"] = restored
  manifest_lib.write(config.model_dir, manifest)
  if restored is None:
    summaries.text("train", "manifest",
                   "```\n" + manifest_lib.pretty(manifest) + "\n```", 0)


def _exporter(config: TrainConfig, engine: Engine,
              info: datasets.DatasetInfo, export_dir: str):
  """The controller's export action: the SavedModel of a step."""

  def export(step: int):
    return export_lib.export(
        engine.model, export_dir, step, image_shape=info.image_shape,
        class_names=info.class_names,
        metadata={"dataset": info.name, "class_names": list(info.class_names),
                  "image_shape": list(info.image_shape),
                  "image_size": config.image_size, "global_step": step})

  return export
