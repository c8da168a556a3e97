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

import os
import random
import uuid
from typing import Callable, Optional, Tuple

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
from core.optim import metrics
from core.optim import optimizers
from core.optim import schedules
from core.optim.loss_scale import DynamicLossScale
from core.runtime.errors import ClusterError, InputError
from layers import variables as variables_lib
from layers.googlenet import GoogLeNet
from train.artefacts import export as export_lib
from train.assembly import finetune
from train.assembly import lost_workers
from train.assembly import manifest as manifest_lib
from train.assembly import start_over
from train.assembly.config import TrainConfig
from train.loop.controller import Controller, Result, Schedule
from train.loop import step as step_lib
from train.loop.engine import Engine, Training
from train.loop.state import TrainState
from train.loop.preemption import PreemptionWatcher
from train.loop.profiling import ProfileWindow
from train.assembly.run_lock import RunLock
from train.loop.summaries import Summaries
from train.startup import cli

Report = Callable[[str], None]


def run(config: TrainConfig, *, report: Report = print) -> Result:
  """Trains, evaluates and exports as `config` says; resumes if it can.

  Raises:
    InputError: Bad data, directories or settings (one-line message).
    NoSpaceError: The disk filled up; what was written before is intact.
    TrainingError: Training diverged; checkpoints on disk are intact.
    Preempted: SIGTERM/SIGINT/SIGHUP arrived, or the lease could not be
      renewed; a checkpoint was written.
    ClusterError: A worker of a multi-worker run was lost or never joined.
  """
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
    other_model = manifest_lib.check_compatible(config.model_dir,
                                                config.fingerprint)
    if other_model:
      start_over.refuse_or_move(config.model_dir, other_model,
                                config.start_over, report)
    return build(config, cluster, watcher, report=report).run()


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


def build(config: TrainConfig, cluster: Optional[cluster_lib.Cluster],
          watcher: PreemptionWatcher, *, report: Report = print
          ) -> Controller:
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
  data = load_data(config)
  check_shards(data, distribution.input_pipelines(strategy))
  batch = distribution.split_batch(config.global_batch_size, strategy)
  steps_per_epoch, total = _steps(config, data.train.num_examples)
  engine, checkpointer, restored, initialised = _restored_engine(
      config, strategy, data, batch, (steps_per_epoch, total), chief, report)
  watcher.attach(engine.request_stop)
  summaries = Summaries(config.model_dir, enabled=chief)
  if exports:  # a crash mid-export left a temporary folder
    export_lib.remove_stale_temporaries(export_dir)
  if chief:
    manifest_lib.record(config, strategy, batch, data, restored, summaries,
                        report, initialised=initialised)
  controller = Controller(
      engine=engine, data=data,
      schedule=Schedule(total, config.steps_per_loop, config.checkpoint_every,
                        config.eval_every or steps_per_epoch,
                        config.histogram_every),
      summaries=summaries, checkpointer=checkpointer, watcher=watcher,
      profiler=ProfileWindow(os.path.join(config.model_dir, "train"),
                             config.profile_steps if chief else ()),
      export=_exporter(config, engine, data.info, export_dir, exports,
                       report),
      global_batch_size=batch.global_batch_size,
      steps_per_epoch=steps_per_epoch, max_bad_steps=config.max_bad_steps,
      model_dir=config.model_dir, report=report)
  controller.announce(restored, batch.num_replicas, config.image_size)
  return controller


def _restored_engine(config: TrainConfig, strategy, data: datasets.Splits,
                     batch: distribution.BatchSplit, steps: Tuple[int, int],
                     chief: bool, report: Report):
  """The engine and its checkpointer, restored from `model_dir`'s newest
  good checkpoint, and what --init_from loaded into a new run: (engine,
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
    engine = training_engine(config, strategy, data.info, batch,
                             steps_per_epoch=steps[0], total_steps=steps[1])
    return engine, checkpointing.Checkpointer(
        config.model_dir, max_to_keep=config.keep_checkpoints,
        report=lambda line: report(f"warning: {line}"),
        guard=engine.model.weights_and_statistics, writer=chief,
        added=engine.added_checkpoint_keys(), **engine.checkpoint_objects())

  engine, checkpointer = fresh()
  try:
    restored = _restore_everywhere(checkpointer, strategy, config.model_dir)
  except checkpointing.UnusableRun as e:
    start_over.refuse_or_move(config.model_dir, str(e), config.start_over,
                              report)
    # A failed restore may have assigned some variables: a new engine, as
    # a run in a fresh folder would have built it.
    engine, checkpointer = fresh()
    restored = None
  initialised = (_initialise(engine, config, data.info.class_names, strategy,
                             report)
                 if restored is None and config.init_from else None)
  return engine, checkpointer, restored, initialised


def _initialise(engine: Engine, config: TrainConfig, class_names, strategy,
                report: Report) -> finetune.Loaded:
  """A new run's weights from --init_from (train/assembly/finetune.py);
  the moving average and best weights start from them too.

  Raises:
    ClusterError: If the workers of a multi-worker run loaded different
      weights (each reads its own copy of the source).
  """
  loaded = finetune.initialise(engine.model, config.init_from,
                               config.init_exclude,
                               class_names=list(class_names))
  if distribution.is_multi_worker(strategy) and not (
      distribution.same_everywhere(strategy, loaded.digest)):
    raise ClusterError(
        f"the workers loaded different weights from `init_from` "
        f"{config.init_from!r} (this one: {loaded.kind}); every worker must "
        "read the same source: put it on storage they share, and not a run "
        "that is still training.")
  for copy in (engine.ema, engine.best):
    if copy is not None:
      copy.copy_from_params()
  for line in loaded.lines():
    report(line)
  return loaded


COMPUTE_DTYPES = {"float32": tf.float32, "mixed_float16": tf.float16,
                  "mixed_bfloat16": tf.bfloat16}


def training_engine(config: TrainConfig, strategy: tf.distribute.Strategy,
                    info: types.DatasetInfo, batch: distribution.BatchSplit,
                    *, steps_per_epoch: int, total_steps: int) -> Engine:
  """The engine of a training run: every variable made in `strategy`'s
  scope (the model sized by `info`), the step and its optimizer."""
  with strategy.scope():
    parts = _evaluation_parts(config, info)
    model = parts["model"]
    trains = finetune.plan(model, config.trainable,
                           config.pretrained_lr_multiplier)
    optimizer = optimizers.create(
        config.optimizer, trains.params,
        make_schedule(config, steps_per_epoch, total_steps),
        weight_decay=config.weight_decay, rate_scales=trains.rate_scales,
        **({"momentum": config.momentum, "nesterov": config.nesterov}
           if config.optimizer == "sgd" else {}))
    loss_scale = (DynamicLossScale()
                  if config.mixed_precision == "mixed_float16" else None)
    sums = metrics.Sums(step_lib.TRAIN_SUMS, name="train_sums")
    grad_norms = (variables_lib.weight(
        tf.zeros([len(trains.params)]), name="grad_norms",
        trainable=False) if config.histogram_every else None)
  step = step_lib.TrainStep(
      model, optimizer, parts["state"], sums, batch=batch,
      aux_weights=config.aux_loss_weights,
      compute_dtype=COMPUTE_DTYPES[config.mixed_precision],
      loss_scale=loss_scale, jit_compile=config.jit_compile,
      grad_norms=grad_norms, label_smoothing=config.label_smoothing,
      clip_norm=config.clip_norm, ema=parts["ema"],
      norm_group_size=_norm_groups(config, batch), params=trains.params)
  return _engine(config, strategy, info, batch, parts, Training(
      step, optimizer, sums, steps_per_epoch, loss_scale, grad_norms))


def evaluation_engine(config: TrainConfig, strategy: tf.distribute.Strategy,
                      info: types.DatasetInfo,
                      batch: distribution.BatchSplit) -> Engine:
  """An engine that only evaluates (train.evaluate): the run's model and
  weight sets, no optimizer and no step counts."""
  with strategy.scope():
    parts = _evaluation_parts(config, info)
  return _engine(config, strategy, info, batch, parts, None)


def _evaluation_parts(config: TrainConfig, info: types.DatasetInfo) -> dict:
  """The model, counters, evaluation sums and weight sets (in scope)."""
  model = GoogLeNet(num_classes=info.num_classes, in_channels=info.channels,
                    image_size=config.image_size, stem=config.stem,
                    norm=config.norm, blocks=config.blocks,
                    variant=config.variant)
  params = model.weights_and_statistics
  return {
      "model": model, "state": TrainState(config.seed),
      "eval_sums": metrics.Sums(step_lib.eval_sums(info.num_classes),
                                name="eval_sums"),
      "ema": (averaging.ExponentialMovingAverage(params, config.ema_decay)
              if config.ema_decay else None),
      "best": (averaging.BestWeights(params)
               if config.export == "best" else None)}


def _engine(config: TrainConfig, strategy, info: types.DatasetInfo, batch,
            parts: dict, training: Optional[Training]) -> Engine:
  reading = pipeline.Reading(
      image_size=config.image_size, channels=info.channels,
      augment=tuple(config.augment), seed=config.seed,
      crop_padding=config.crop_padding,
      skip_bad_images=config.skip_bad_images,
      max_image_pixels=config.max_image_pixels)
  return Engine(strategy, batch, reading=reading,
                compute_dtype=COMPUTE_DTYPES[config.mixed_precision],
                mirror=config.test_mirror, label_offset=config.label_offset,
                training=training, **parts)


def make_schedule(config: TrainConfig, steps_per_epoch: int,
                  total_steps: int):
  """The learning-rate schedule the config names, with its warm-up."""
  warmup = min(config.warmup_steps, total_steps - 1)
  if config.lr_schedule == "cosine":
    # Its warm-up is built in: the cosine starts where the warm-up ends.
    return schedules.WarmupCosine(config.rate, total_steps=total_steps,
                                  warmup_steps=warmup)
  if config.lr_schedule == "step":
    # The paper: 4 % lower every 8 epochs.
    schedule = schedules.StepDecay(config.rate,
                                   decay_steps=8 * steps_per_epoch)
  else:
    schedule = schedules.Constant(config.rate)
  return schedules.Warmup(schedule, warmup) if warmup else schedule


def _norm_groups(config: TrainConfig,
                 batch: distribution.BatchSplit) -> Optional[int]:
  """Examples per batch normalisation group (None without --norm=batch).

  Raises:
    InputError: If the group size does not divide the per-replica batch.
  """
  if config.norm != "batch":
    return None
  if batch.per_replica % config.norm_group_size:
    raise InputError(
        f"`norm_group_size` must divide the per-replica batch "
        f"({batch.per_replica}: global batch {batch.global_batch_size} over "
        f"{batch.num_replicas} replicas); received "
        f"norm_group_size={config.norm_group_size}.")
  return config.norm_group_size


def _strategy(config: TrainConfig,
              cluster: Optional[cluster_lib.Cluster]):
  """The config's strategy; a cluster that does not form is one line."""
  with lost_workers.naming_missing_workers(cluster,
                                           config.cluster_join_timeout):
    return distribution.make_strategy(
        config.strategy, cluster=cluster,
        join_timeout=config.cluster_join_timeout)


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
  files = getattr(data.train, "files", None)
  if files is not None and len(files) < workers:
    raise InputError(f"{len(files)} train-* shard(s) for {workers} workers: "
                     "each worker reads its own shards, so one would have "
                     "none; write at least as many shards as workers "
                     "(tools.convert --shards=N) or run fewer workers.")


def load_data(config: TrainConfig) -> datasets.Splits:
  """The config's data set, cut to `train_examples` when set."""
  data = datasets.load(config.dataset, data_dir=config.data_dir,
                       validation_size=config.validation_size,
                       label_offset=config.label_offset,
                       skip_bad=config.skip_bad_images)
  if config.export == "best" and not data.validation.num_examples:
    raise InputError("`export=best` chooses by validation accuracy, and the "
                     f"{data.info.name} data here has no validation split; "
                     "set --validation_size or use --export=last.")
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


def _export_dir(config: TrainConfig, exports: bool) -> str:
  """Where versions go, checked writable before any work when this process
  exports (run() has already checked and locked model_dir)."""
  export_dir = config.export_dir or os.path.join(config.model_dir, "export")
  if exports:
    prepare_dir(export_dir, "export_dir")
  return export_dir


def _exporter(config: TrainConfig, engine: Engine,
              info: datasets.DatasetInfo, export_dir: str, exports: bool,
              report: Report = print):
  """The controller's export action: the SavedModel of a step (nothing
  where this process does not export: another worker, --export=none)."""
  if not exports:
    return lambda step: None

  def export(step: int):
    # The version is the last step (TF Serving serves the highest); the
    # weights are the final ones (Engine.weights): with --export=best those
    # validated at `weights_step`.
    weights_step = engine.final_weights_step()
    with engine.weights("final"):
      return export_lib.export(
          engine.model, export_dir, step, image_shape=info.image_shape,
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
