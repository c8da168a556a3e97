"""The outer loop: set up, restore, train in compiled chunks, evaluate,
checkpoint, export. It owns all I/O; the steps it calls own none."""

import dataclasses
import json
import os
import random
import signal
import time
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from core import checkpointing
from core import datasets
from core import distribution
from core import pipeline
from core.errors import InputError, Preempted, TrainingError
from train import export as export_lib
from train import manifest as manifest_lib
from train.config import TrainConfig
from train.engine import Engine
from train.preemption import PreemptionWatcher
from train.summaries import Summaries


@dataclasses.dataclass
class Result:
  """What a finished run reports."""
  global_step: int
  test_accuracy: float
  test_loss: float
  export_path: Optional[str]


def prepare_model_dir(path: str) -> None:
  """Creates `path` and checks that it can be written.

  Raises:
    InputError: If it cannot be created or written.
  """
  try:
    os.makedirs(path, exist_ok=True)
    probe = os.path.join(path, f".write-test-{os.getpid()}")
    with open(probe, "w"):
      pass
    os.remove(probe)
  except OSError as e:
    raise InputError(f"`model_dir` {path!r} cannot be written "
                     f"({e.strerror or e}).") from None


def _seed_everything(config: TrainConfig) -> None:
  random.seed(config.seed)
  np.random.seed(config.seed)
  tf.random.set_seed(config.seed)
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()


def _means(sums, heads) -> dict:
  count = max(float(sums["examples"]), 1.0)
  return {k: float(sums[k]) / count for k in heads}


def run(config: TrainConfig, *, report: Callable[[str], None] = print
        ) -> Result:
  """Trains, evaluates and exports as `config` says; resumes if it can.

  Raises:
    InputError: Bad data, directories or settings (one-line message).
    TrainingError: Training diverged; checkpoints on disk are intact.
    Preempted: SIGTERM/SIGINT arrived; a checkpoint was written.
  """
  distribution.configure_cpu_devices(config.num_cpu_devices)
  prepare_model_dir(config.model_dir)
  manifest_lib.check_compatible(config.model_dir, config.fingerprint)
  splits = datasets.load(config.dataset, data_dir=config.data_dir,
                         validation_size=config.validation_size)
  if config.train_examples:
    train = splits.train
    splits = splits._replace(train=datasets.Split(
        train.images[:config.train_examples],
        train.labels[:config.train_examples]))
  _seed_everything(config)
  strategy = distribution.make_strategy(config.strategy)
  distribution.check_divisible(config.global_batch_size, strategy)
  steps_per_epoch = pipeline.steps_per_epoch(len(splits.train.labels),
                                             config.global_batch_size)
  if steps_per_epoch == 0:
    raise InputError(f"the training set ({len(splits.train.labels)} images) "
                     f"is smaller than `global_batch_size` "
                     f"({config.global_batch_size}).")
  total = config.train_steps or config.epochs * steps_per_epoch
  engine = Engine(config, strategy, steps_per_epoch=steps_per_epoch,
                  total_steps=total)
  checkpointer = checkpointing.Checkpointer(
      config.model_dir, max_to_keep=config.keep_checkpoints,
      report=lambda line: report(f"warning: {line}"),
      **engine.checkpoint_objects())
  restored = checkpointer.restore_latest()
  manifest = manifest_lib.build(config, strategy, splits)
  manifest["resumed_from_step"] = restored
  manifest_lib.write(config.model_dir, manifest)
  export_dir = config.export_dir or os.path.join(config.model_dir, "export")
  export_lib.remove_stale_temporaries(export_dir)
  summaries = Summaries(config.model_dir)
  step = int(engine.state.global_step.numpy())
  report(f"{'resuming at' if restored is not None else 'starting at'} step "
         f"{step}/{total}: {strategy.num_replicas_in_sync} replica(s), "
         f"global batch {config.global_batch_size}, {steps_per_epoch} "
         f"steps per epoch, image size {config.image_size}")
  if restored is None:
    summaries.text("train", "manifest", "```\n" + _pretty(manifest) + "\n```",
                   0)
  try:
    with PreemptionWatcher() as watcher:
      _train(config, engine, splits, summaries, checkpointer, watcher,
             total, steps_per_epoch, report)
    return _finish(config, engine, splits, summaries, export_dir, report)
  finally:
    summaries.close()


def _pretty(manifest: dict) -> str:
  return json.dumps(manifest, indent=2, sort_keys=True, default=str)


def _next_stop(step: int, total: int, config: TrainConfig,
               steps_per_epoch: int) -> int:
  """The next step at which the outer loop must act."""
  stops = [total, (step // config.steps_per_loop + 1) * config.steps_per_loop,
           (step // config.checkpoint_every + 1) * config.checkpoint_every]
  every = config.eval_every or steps_per_epoch
  stops.append((step // every + 1) * every)
  for boundary in config.profile_steps:
    if boundary > step:
      stops.append(boundary)
  return min(stops)


def _train(config, engine, splits, summaries, checkpointer, watcher, total,
           steps_per_epoch, report) -> None:
  state = engine.state
  step = int(state.global_step.numpy())
  if step >= total:
    return
  cursor = pipeline.Cursor(*divmod(step, steps_per_epoch))
  iterator = engine.train_iterator(splits.train, cursor)
  heads = [k for k in engine.train_sums.sums if k != "examples"]
  every_eval = config.eval_every or steps_per_epoch
  profiling = False
  while step < total:
    if config.profile_steps and step == config.profile_steps[0]:
      tf.profiler.experimental.start(os.path.join(config.model_dir, "train"))
      profiling = True
    stop = _next_stop(step, total, config, steps_per_epoch)
    started = time.perf_counter()
    sums = engine.trainer.run(iterator, stop - step)
    elapsed = time.perf_counter() - started
    if profiling and stop >= config.profile_steps[1]:
      tf.profiler.experimental.stop()
      profiling = False
    images = (stop - step) * config.global_batch_size
    step = int(state.global_step.numpy())
    epoch, in_epoch = divmod(step, steps_per_epoch)
    state.epoch.assign(epoch)
    state.step_in_epoch.assign(in_epoch)
    values = _means(sums, heads)
    values["learning_rate"] = float(engine.optimizer.learning_rate())
    values["images_per_second"] = images / max(elapsed, 1e-9)
    values["skipped_steps"] = float(state.skipped_steps.numpy())
    if engine.loss_scale is not None:
      values["loss_scale"] = float(engine.loss_scale.scale.numpy())
    summaries.scalars("train", values, step)
    report(f"step {step}/{total} epoch {step / steps_per_epoch:.2f} "
           f"loss {values['loss/total']:.4f} acc {values['accuracy/main']:.4f}"
           f" lr {values['learning_rate']:.2e} "
           f"{values['images_per_second']:.1f} img/s")
    bad = int(state.consecutive_bad.numpy())
    if bad >= config.max_bad_steps:
      summaries.flush()
      raise TrainingError(
          f"training diverged: {bad} consecutive steps up to step "
          f"{int(state.last_bad_step.numpy())} had a non-finite loss or "
          f"gradient and were skipped; lower --learning_rate (checkpoints in "
          f"{config.model_dir} hold only finite weights).")
    if step % every_eval == 0 and len(splits.validation.labels):
      _evaluate(engine, splits.validation, summaries, "eval", step, report)
    if (step % config.checkpoint_every == 0 or step == total
        or watcher.requested):
      checkpointer.save(step, engine.model.trainable_variables)
      summaries.flush()
    if watcher.requested and step < total:
      name = signal.Signals(watcher.signal).name
      raise Preempted(f"preempted by {name} at step {step}: checkpoint "
                      f"saved in {config.model_dir}; run the same command "
                      "to resume.")


def _evaluate(engine, split, summaries, name, step, report) -> dict:
  sums = engine.evaluate(split)
  values = _means(sums, ["loss/main", "accuracy/main", "accuracy/top5"])
  summaries.scalars(name, values, step)
  summaries.confusion(name, sums["confusion"],
                      datasets.CLASS_NAMES[engine.config.dataset], step)
  report(f"{name} at step {step}: loss {values['loss/main']:.4f} accuracy "
         f"{values['accuracy/main']:.4f} ({int(sums['examples'])} images)")
  return values


def _finish(config, engine, splits, summaries, export_dir, report) -> Result:
  step = int(engine.state.global_step.numpy())  # _train saved this step
  test = _evaluate(engine, splits.test, summaries, "test", step, lambda _: 0)
  path = export_lib.export(engine.model, export_dir, max(step, 1), metadata={
      "dataset": config.dataset,
      "class_names": list(datasets.CLASS_NAMES[config.dataset]),
      "image_size": config.image_size, "global_step": step})
  if path:
    report(f"exported SavedModel to {path}")
  summaries.flush()
  report(f"test accuracy {test['accuracy/main']:.4f} "
         f"(loss {test['loss/main']:.4f}, {len(splits.test.labels)} images, "
         f"step {step})")
  return Result(step, test["accuracy/main"], test["loss/main"], path)
