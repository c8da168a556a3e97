"""Assembles a run from its config and hands it to the controller.

The order matters and is the only logic here: the run locks its model_dir
and checks its directories before any work (an unwritable export folder is
found at the start, not after hours of training); devices are split and the
strategy built before any TF op runs (a multi-worker strategy must be); the
data set is loaded and its facts (DatasetInfo) size the model and the
export; the batch split is computed once from the real strategy and passed
down.

In a multi-worker run every worker computes everything, and only the chief
writes: the lock, the manifest, TensorBoard, the kept checkpoints and the
export (core/runtime/cluster.py, BUILD.md "Several machines").
"""

import dataclasses
import os
import random
import uuid
from typing import Callable, Dict, NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf

from core.runtime import checkpointing
from core.runtime import cluster as cluster_lib
from core.data import datasets
from core.data import types
from core.runtime import distribution
from core.runtime import files
from core.data import pipeline
from core.optim import averaging
from core.optim import choices as optim_choices
from core.optim import optimizers
from core.optim import precision
from core.runtime.errors import ClusterError, InputError
from layers.googlenet import GoogLeNet
from train.artefacts import export as export_lib
from train.artefacts.progress import Progress
from train.assembly import finetune
from train.assembly import lost_workers
from train.assembly import manifest as manifest_lib
from train.assembly import start_over
from train.assembly import update
from train.startup.config import RunConfig
from train.assembly.run_lock import RunLock
from train.loop import step as step_lib
from train.loop.controller import Controller, Outputs, Result
from train.loop.evaluator import Evaluator
from train.loop.feed import Feed
from train.loop.preemption import PreemptionWatcher, StopVote
from train.loop.profiling import ProfileWindow
from train.loop.schedule import Schedule
from train.loop.state import Plateau, RunState
from train.loop.summaries import Summaries
from train.loop.trainer import Trainer
from train.loop.weights import FINAL, WeightSets
from train.startup import cli
from train.startup import kernels

Report = Callable[[str], None]

class Parts(NamedTuple):
  """A run's loop: its variables (made in the strategy's scope) and the
  nouns that run them."""
  model: GoogLeNet
  state: RunState
  weights: WeightSets
  vote: StopVote
  evaluator: Evaluator
  trainer: Optional[Trainer] = None  # None: evaluation only (train.evaluate)
  plateau: Optional[Plateau] = None  # --lr_schedule=plateau, --early_stopping

  def checkpoint_objects(self) -> Dict[str, tf.Module]:
    """What a checkpoint holds; the keys are checkpoint names (API)."""
    return {"model": self.model, "state": self.state,
            **(self.trainer.checkpoint_objects() if self.trainer else {}),
            **({"plateau": self.plateau} if self.plateau else {}),
            **self.weights.checkpoint_objects()}


def run(config: RunConfig, *, report: Report = print) -> Result:
  """Trains, evaluates and exports as `config` says; resumes if it can.

  Raises:
    InputError: Bad data, directories or settings (one-line message).
    NoSpaceError: The disk filled up; what was written before is intact.
    TrainingError: Training diverged; checkpoints on disk are intact.
    Preempted: SIGTERM/SIGINT/SIGHUP arrived, or the lease could not be
      renewed; a checkpoint was written.
    ClusterError: A worker of a multi-worker run was lost or never joined.
  """
  report = Progress.of(report)  # one display: a message ends the bar's line
  cluster = (cluster_lib.from_environment()
             if config.strategy == "multi_worker" else None)
  chief = cluster is None or cluster.is_chief
  for line in config.warnings:
    report(f"warning: {line}")
  for flag in ("model_dir", "export_dir", "data_dir"):  # before any write
    files.check_scheme(getattr(config, flag) or "", flag)
  if chief:
    prepare_dir(config.model_dir, "model_dir")
  # The watcher first: a SIGTERM while the lock settles (2 s on object
  # storage) stops the run through the lock's release, not past it.
  with PreemptionWatcher() as watcher, \
      RunLock(config.model_dir, enabled=chief, report=report) as lock, \
      lost_workers.naming_lost_workers(cluster):
    lock.attach(lambda message: _lease_lost(message, lock, watcher))
    resolved, choice = with_precision(config)
    other_model = manifest_lib.check_compatible(config.model_dir,
                                                resolved.fingerprint)
    if other_model:
      start_over.refuse_or_move(config.model_dir, other_model,
                                config.start_over, report)
      # Moved aside: the new run in the empty folder chooses afresh.
      resolved, choice = with_precision(config)
    if choice.requested != choice.chosen:
      report(f"precision: {choice.chosen} (--mixed_precision=auto: "
             f"{choice.why})")
    return build(resolved, cluster, watcher, choice, report=report).run()


def with_precision(config: RunConfig, model_dir: Optional[str] = None
                   ) -> Tuple[RunConfig, precision.Choice]:
  """The config with --mixed_precision=auto resolved: the precision the
  manifest of the run in `model_dir` (default: the config's) records,
  else the fastest one on its devices (core/optim/precision.py)."""
  recorded = (manifest_lib.read(model_dir or config.model_dir) or {}).get(
      "fingerprint", {}).get("mixed_precision")
  gpus = ([tf.config.experimental.get_device_details(gpu)
           for gpu in tf.config.list_physical_devices("GPU")]
          if config.device == "auto" else [])
  choice = precision.resolve(
      config.mixed_precision,
      recorded if recorded in optim_choices.PRECISIONS else None, gpus,
      precision.cpu_flags(), kernels.onednn_enabled())
  return dataclasses.replace(config, mixed_precision=choice.chosen), choice


def _lease_lost(message: str, lock: RunLock,
                watcher: PreemptionWatcher) -> None:
  """The run's lease on object storage is lost (train/assembly/run_lock.py).
  A run that still holds it stops at the next step boundary with a
  checkpoint, as a signal stops it (exit 75: the same command resumes once
  the storage answers). A run another one took over ends at once, from the
  heartbeat's thread: any further write (a checkpoint, an export) would
  land in a folder the other run now owns."""
  if lock.may_write():
    watcher.stop(message)
    return
  # The line may be lost (stderr gone after a hang-up); the exit is not.
  os._exit(cli.fail(message))  # pylint: disable=protected-access


def build(config: RunConfig, cluster: Optional[cluster_lib.Cluster],
          watcher: PreemptionWatcher, choice: precision.Choice, *,
          report: Report = print) -> Controller:
  """Everything a run needs, restored from its newest good checkpoint. A
  signal while it is built stops the run before its first step."""
  chief = cluster is None or cluster.is_chief
  exports = chief and config.export != "none"
  export_dir = _export_dir(config, exports)
  distribution.configure_gpus(use=config.device == "auto",
                              memory_growth=config.gpu_memory_growth)
  distribution.configure_cpu_devices(
      config.num_cpu_devices, warn=lambda line: report(f"warning: {line}"))
  strategy = _strategy(config, cluster)
  watcher.reclaim()
  _check_same_precision(config, strategy)
  data = load_data(config)
  check_validation(config, data)
  check_shards(data, distribution.input_pipelines(strategy))
  batch = distribution.split_batch(config.global_batch_size, strategy)
  steps_per_epoch, total = _steps(config, data.train.num_examples)
  parts, checkpointer, restored, initialised = _restored_parts(
      config, strategy, data, batch, (steps_per_epoch, total), chief, report)
  watcher.attach(parts.vote.request)
  summaries = Summaries(config.model_dir, enabled=chief)
  if exports:  # a crash mid-export left a temporary folder
    export_lib.remove_stale_temporaries(export_dir)
  if chief:
    manifest_lib.record(config, strategy, batch, data, restored, summaries,
                        report, initialised=initialised, precision=choice)
  controller = Controller(
      trainer=parts.trainer, evaluator=parts.evaluator, vote=parts.vote,
      data=data,
      schedule=Schedule(total, config.steps_per_loop, config.checkpoint_every,
                        config.eval_every or steps_per_epoch,
                        config.histogram_every, config.max_bad_steps),
      outputs=Outputs(summaries, checkpointer,
                      _exporter(config, parts, data.info, export_dir,
                                exports, report), config.model_dir),
      watcher=watcher,
      profiler=ProfileWindow(os.path.join(config.model_dir, "train"),
                             config.profile_steps if chief else ()),
      plateau=parts.plateau, report=report)
  controller.announce(restored, batch.num_replicas, config.image_size)
  return controller


def _restored_parts(config: RunConfig, strategy, data: datasets.Splits,
                    batch: distribution.BatchSplit, steps: Tuple[int, int],
                    chief: bool, report: Report):
  """The run's parts and its checkpointer, restored from `model_dir`'s
  newest good checkpoint, and what --init_from loaded into a new run: (parts,
  checkpointer, step or None, finetune.Loaded or None). A run of other
  data, or checkpoints of which none restores, is refused or (with
  --start_over) moved aside: train/assembly/start_over.py."""
  if checkpointing.complete_checkpoints(config.model_dir):
    other_data = manifest_lib.check_same_data(
        config.model_dir, data.info, config.label_offset,
        distribution.input_pipelines(strategy))
    if other_data:
      start_over.refuse_or_move(config.model_dir, other_data,
                                config.start_over, report)

  def fresh():
    _seed_everything(config)
    parts = training_parts(config, strategy, data.info, batch,
                           steps_per_epoch=steps[0], total_steps=steps[1],
                           train_labels=getattr(data.train, "labels", None),
                           in_memory=isinstance(data.train, types.Split))
    return parts, checkpointing.Checkpointer(
        config.model_dir, max_to_keep=config.keep_checkpoints,
        report=lambda line: report(f"warning: {line}"),
        guard=parts.model.weights_and_statistics, writer=chief,
        added=added_checkpoint_keys(parts),
        **parts.checkpoint_objects())

  parts, checkpointer = fresh()
  try:
    restored = _restore_everywhere(checkpointer, strategy, config.model_dir)
  except checkpointing.UnusableRun as e:
    start_over.refuse_or_move(config.model_dir, str(e), config.start_over,
                              report)
    # A failed restore may have assigned some variables: new parts, as a
    # run in a fresh folder would have built them.
    parts, checkpointer = fresh()
    restored = None
  initialised = (_initialise(parts, config, data.info.class_names, strategy,
                             report)
                 if restored is None and config.init_from else None)
  return parts, checkpointer, restored, initialised


def added_checkpoint_keys(parts: Parts):
  """Variables a checkpoint of an earlier version (or of a run with fewer
  options) may lack, and their defaults."""
  step = parts.state.global_step
  return {**parts.weights.added_checkpoint_keys(step),
          **(parts.plateau.added_checkpoint_keys(step)
             if parts.plateau else {})}


def _initialise(parts: Parts, config: RunConfig, class_names, strategy,
                report: Report) -> finetune.Loaded:
  """A new run's weights from --init_from (train/assembly/finetune.py);
  the moving average and best weights start from them too.

  Raises:
    ClusterError: If the workers of a multi-worker run loaded different
      weights (each reads its own copy of the source).
  """
  loaded = finetune.initialise(parts.model, config.init_from,
                               config.init_exclude,
                               class_names=list(class_names))
  if distribution.is_multi_worker(strategy) and not (
      distribution.same_everywhere(strategy, loaded.digest)):
    raise ClusterError(
        f"the workers loaded different weights from `init_from` "
        f"{config.init_from!r} (this one: {loaded.kind}); every worker must "
        "read the same source: put it on storage they share, and not a run "
        "that is still training.")
  parts.weights.start_from_params()
  for line in loaded.lines():
    report(line)
  return loaded


def training_parts(config: RunConfig, strategy: tf.distribute.Strategy,
                   info: types.DatasetInfo, batch: distribution.BatchSplit,
                   *, steps_per_epoch: int, total_steps: int,
                   train_labels: Optional[np.ndarray] = None,
                   in_memory: bool = False) -> Parts:
  """The parts of a training run: every variable made in `strategy`'s
  scope (the model sized by `info`), the step and its optimizer
  (`train_labels` for --class_weight=balanced; `in_memory`: the training
  split is decoded arrays, whose rows all count)."""
  options = update.step_options(config, batch, update.class_weights(
      config, train_labels, info.num_classes), every_example_counts=in_memory)
  parts = evaluation_parts(config, strategy, info, batch)
  with strategy.scope():
    trains = finetune.plan(parts.model, config.trainable,
                           config.pretrained_lr_multiplier,
                           config.layer_decay)
    plateau = update.plateau_record(config)
    optimizer = optimizers.create(
        config.optimizer, trains.params,
        update.make_schedule(config, steps_per_epoch, total_steps,
                             plateau),
        weight_decay=config.weight_decay, rate_scales=trains.rate_scales,
        **({"momentum": config.momentum, "nesterov": config.nesterov}
           if config.optimizer == "sgd" else {}))
    step = step_lib.TrainStep(parts.model, optimizer, parts.state, options,
                              weights=parts.weights)
  return parts._replace(trainer=Trainer(step, parts.evaluator.feed,
                                        parts.vote, steps_per_epoch),
                        plateau=plateau)


def evaluation_parts(config: RunConfig, strategy: tf.distribute.Strategy,
                     info: types.DatasetInfo,
                     batch: distribution.BatchSplit) -> Parts:
  """The parts that only evaluate (train.evaluate): the run's model, its
  counters and weight sets, no optimizer."""
  with strategy.scope():
    model = GoogLeNet(num_classes=info.num_classes,
                      in_channels=info.channels,
                      image_size=config.image_size, stem=config.stem,
                      norm=config.norm, blocks=config.blocks,
                      variant=config.variant)
    state = RunState(config.seed)
    scoring = lambda crops: step_lib.EvalStep(
        model, compute_dtype=update.compute_dtype(config),
        mirror=config.test_mirror, crops=crops)
    step = scoring("1")
    final = scoring(config.test_crops) if config.test_crops != "1" else None
    params = model.weights_and_statistics
    weights = WeightSets(
        ema=(averaging.ExponentialMovingAverage(params, config.ema_decay)
             if config.ema_decay else None),
        best=(averaging.BestWeights(params)
              if config.export == "best" else None))
  # Outside the scope: one copy per process.
  vote = StopVote(strategy)
  feed = Feed(strategy, batch, _reading(config, info), info.num_classes,
              config.label_offset)
  # Validation scores one crop (a multi-crop one at every validation would
  # cost its views each time); the final test and train.evaluate the
  # config's crops.
  return Parts(model, state, weights, vote, Evaluator(
      step, feed, vote, weights, final_step=final))


def _reading(config: RunConfig,
             info: types.DatasetInfo) -> pipeline.Reading:
  return pipeline.Reading(
      image_size=config.image_size, channels=info.channels,
      augment=tuple(config.augment), seed=config.seed,
      crop_padding=config.crop_padding,
      randaugment_ops=config.randaugment_ops,
      randaugment_magnitude=config.randaugment_magnitude,
      skip_bad_images=config.skip_bad_images,
      max_image_pixels=config.max_image_pixels)


def _strategy(config: RunConfig,
              cluster: Optional[cluster_lib.Cluster]):
  """The config's strategy; a cluster that does not form is one line."""
  with lost_workers.naming_missing_workers(cluster,
                                           config.cluster_join_timeout):
    return distribution.make_strategy(
        config.strategy, cluster=cluster,
        join_timeout=config.cluster_join_timeout)


def _check_same_precision(config: RunConfig, strategy) -> None:
  """The workers of a multi-worker run compute in one precision.

  Raises:
    ClusterError: If --mixed_precision=auto chose differently on unlike
      machines (a new run; a resume reads the manifest everywhere).
  """
  if distribution.is_multi_worker(strategy) and not (
      distribution.same_everywhere(strategy, optim_choices.PRECISIONS.index(
          config.mixed_precision))):
    raise ClusterError(
        f"the workers compute in different precisions (this one: "
        f"{config.mixed_precision}; --mixed_precision=auto chooses by each "
        "machine's hardware); pass the same --mixed_precision to every "
        "worker.")


def _restore_everywhere(checkpointer: checkpointing.Checkpointer,
                        strategy, model_dir: str) -> Optional[int]:
  """Restores the newest checkpoint; with several workers, checks that all
  of them restored the same step (they read the chief's model_dir, which
  must be storage every worker sees: NFS, GCS, a shared volume).

  Raises:
    ClusterError: If the workers found different checkpoints.
  """
  restored = checkpointer.restore_latest()
  if not distribution.is_multi_worker(strategy):
    return restored
  if not distribution.same_everywhere(
      strategy, -1 if restored is None else restored):
    raise ClusterError(
        f"the workers found different checkpoints in {model_dir!r} (this "
        f"one: {restored}); every worker must read the chief's model_dir: "
        "put it on storage they share (NFS, GCS, a shared volume).")
  return restored


def prepare_dir(path: str, flag: str) -> None:
  """Creates `path` and checks that it can be written (local, NFS, or any
  file system TensorFlow knows: core/runtime/files.py).

  Raises:
    InputError: If its scheme is unknown, or it cannot be created or
      written, naming `flag`.
  """
  files.check_scheme(path, flag)
  try:
    files.makedirs(path)
    # Unique across machines: containers sharing a bucket repeat pids.
    probe = os.path.join(path, f".write-test-{uuid.uuid4().hex}")
    files.write_atomic(probe, b"", durable=False)
    files.remove(probe)
  except OSError as e:
    raise InputError(f"`{flag}` {path!r} cannot be written "
                     f"({e.strerror or e}).") from None


def check_shards(data: datasets.Splits, workers: int) -> None:
  """Each worker reads its own train-* shards: fewer shards than workers
  would leave a worker's epoch empty (it would wait in the collectives).

  Raises:
    InputError: Naming the counts and the two ways out.
  """
  shards = data.train.num_shards
  if shards is not None and shards < workers:
    raise InputError(f"{shards} train-* shard(s) for {workers} workers: "
                     "each worker reads its own shards, so one would have "
                     "none; write at least as many shards as workers "
                     "(tools.convert --shards=N; a TFDS set: `tfds build` "
                     "with more shards) or run fewer workers.")


def load_data(config: RunConfig) -> datasets.Splits:
  """The config's data set, cut to `train_examples` when set."""
  data = datasets.load(config.dataset, data_dir=config.data_dir,
                       validation_size=config.validation_size,
                       label_offset=config.label_offset,
                       skip_bad=config.skip_bad_images)
  if config.train_examples:
    data = data._replace(train=data.train.take(config.train_examples))
  return data


def check_validation(config: RunConfig, data: datasets.Splits) -> None:
  """Training options that decide by validation accuracy need a validation
  split (train.evaluate and the converters, which also load the data, do
  not ask).

  Raises:
    InputError: Naming the first such option and the way out.
  """
  if data.validation.num_examples:
    return
  where = (f"the {data.info.name} data here has no validation split; "
           + ("write validation-* shards or "
              if config.dataset == "tfrecord" else
              "" if types.is_records(config.dataset)  # TFDS: as built
              else "set --validation_size or "))
  if config.export == "best":
    raise InputError("`export=best` chooses by validation accuracy, and "
                     f"{where}use --export=last.")
  if config.lr_schedule == "plateau":
    raise InputError("`lr_schedule=plateau` lowers the rate when validation "
                     f"accuracy stalls, and {where}choose another "
                     "--lr_schedule.")
  if config.early_stopping:
    raise InputError("`early_stopping` stops when validation accuracy "
                     f"stalls, and {where}set --early_stopping=0.")


def _steps(config: RunConfig, train_examples: int) -> Tuple[int, int]:
  """(steps per epoch, total steps) of the run."""
  steps_per_epoch = pipeline.steps_per_epoch(train_examples,
                                             config.global_batch_size)
  if steps_per_epoch == 0:
    raise InputError(f"the training set ({train_examples} images) is "
                     f"smaller than `global_batch_size` "
                     f"({config.global_batch_size}).")
  return steps_per_epoch, (config.train_steps
                           or config.epochs * steps_per_epoch)


def _seed_everything(config: RunConfig) -> None:
  random.seed(config.seed)
  np.random.seed(config.seed)
  tf.random.set_seed(config.seed)
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()


def _export_dir(config: RunConfig, exports: bool) -> str:
  """Where versions go, checked writable before any work when this process
  exports (run() has already checked and locked model_dir)."""
  export_dir = config.export_dir or os.path.join(config.model_dir, "export")
  if exports:
    prepare_dir(export_dir, "export_dir")
  return export_dir


def _exporter(config: RunConfig, parts: Parts,
              info: datasets.DatasetInfo, export_dir: str, exports: bool,
              report: Report = print):
  """The controller's export action: the SavedModel of a step (nothing
  where this process does not export: another worker, --export=none)."""
  if not exports:
    return lambda step: None

  def export(step: int):
    # The version is the last step (TF Serving serves the highest); the
    # weights are the final ones (train/loop/weights.py): with --export=best
    # those validated at `weights_step`.
    weights_step = parts.weights.final_step()
    with parts.weights(FINAL):
      return export_lib.export(
          parts.model, export_dir, step, image_shape=info.image_shape,
          class_names=info.class_names, mirror=config.test_mirror,
          max_image_pixels=config.max_image_pixels,
          report=lambda line: report(f"note: {line}"),
          metadata={"dataset": info.name,
                    "class_names": list(info.class_names),
                    "image_shape": list(info.image_shape),
                    "image_size": config.image_size, "global_step": step,
                    "weights": config.export,
                    "weights_step": step if weights_step < 0 else weights_step,
                    "moving_average": bool(config.ema_decay),
                    "test_mirror": config.test_mirror})

  return export
