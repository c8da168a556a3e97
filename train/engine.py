"""The engine: model, optimizer, counters and compiled loops, built in scope.

What the controller (train/controller.py) asks of it: the global step,
`train` and `evaluate` over a split, and the divergence counters. Facts about
the data (classes, channels) come from the loaded data set's DatasetInfo, and
the batch split from the strategy, computed once (core/distribution.py).
"""

import contextlib
import re
from typing import Dict, NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf

from core import averaging
from core import datasets
from core import distribution
from core.errors import DataError, InputError
from core import metrics
from core import optimizers
from core import pipeline
from core import preprocessing
from core import schedules
from core import shard_stream
from core import tfrecords
from core.loss_scale import DynamicLossScale
from layers import variables as variables_lib
from layers.googlenet import GoogLeNet
from train import step as step_lib
from train.config import TrainConfig
from train.state import TrainState
from train.trainer import Evaluator, Trainer

COMPUTE_DTYPES = {"float32": tf.float32, "mixed_float16": tf.float16,
                  "mixed_bfloat16": tf.bfloat16}
EVAL_METRICS = ("loss/main", "accuracy/main", "accuracy/top5")
# The misclassified-images grid looks at the first GALLERY_SAMPLE examples of
# the validation split (the same ones at every evaluation).
GALLERY_SAMPLE = 256


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


class Evaluation(NamedTuple):
  """Main-head results over a whole split."""
  values: Dict[str, float]   # EVAL_METRICS, as means over the examples
  confusion: np.ndarray      # [classes, classes] counts, rows = true labels
  examples: int
  skipped_images: int = 0    # unreadable images left out (--skip_bad_images)


def _means(sums: Dict[str, np.ndarray], keys) -> Dict[str, float]:
  count = max(float(sums["examples"]), 1.0)
  return {k: float(sums[k]) / count for k in keys}


class Engine:
  """Every variable of a run, created eagerly inside `strategy.scope()`,
  and the two compiled loops (train, evaluate)."""

  def __init__(self, config: TrainConfig, strategy: tf.distribute.Strategy,
               info: datasets.DatasetInfo, batch: distribution.BatchSplit, *,
               steps_per_epoch: int, total_steps: int):
    self.config, self.strategy, self.batch = config, strategy, batch
    self.steps_per_epoch = steps_per_epoch
    self.num_classes = info.num_classes
    self.reading = pipeline.Reading(
        image_size=config.image_size, channels=info.channels,
        augment=tuple(config.augment), seed=config.seed,
        crop_padding=config.crop_padding, skip_bad_images=config.skip_bad_images)
    self.compute_dtype = COMPUTE_DTYPES[config.mixed_precision]
    with strategy.scope():
      self._make_variables(config, info, steps_per_epoch, total_steps)
    self.train_step = step_lib.TrainStep(
        self.model, self.optimizer, self.state, self.train_sums,
        batch=batch, aux_weights=config.aux_loss_weights,
        compute_dtype=self.compute_dtype, loss_scale=self.loss_scale,
        jit_compile=config.jit_compile, grad_norms=self.grad_norms,
        label_smoothing=config.label_smoothing, clip_norm=config.clip_norm,
        ema=self.ema, norm_group_size=_norm_groups(config, batch))
    # `stop`: set from the preemption watcher's thread. `stopped`: what the
    # workers agreed, written by the loops only. Not part of the
    # checkpoint, and outside the strategy: one copy per process.
    self.stop = tf.Variable(False, trainable=False, name="stop_requested")
    self.stopped = tf.Variable(False, trainable=False, name="stop_agreed")
    self.trainer = Trainer(strategy, self.train_step, self.train_sums,
                           self.stop, self.stopped, self.state)
    self.evaluator = Evaluator(
        strategy, step_lib.EvalStep(self.model, self.eval_sums,
                                    compute_dtype=self.compute_dtype,
                                    mirror=config.test_mirror),
        self.eval_sums, self.stop, self.stopped)
    self._vote = tf.function(
        lambda: distribution.agree_any(strategy, self.stop))
    # Cross-replica, on this host's default device: no collective.
    self._predict = tf.function(lambda images: tf.argmax(self.model.classify(
        preprocessing.preprocess(images, image_size=config.image_size,
                                 channels=info.channels,
                                 dtype=self.compute_dtype),
        mirror=config.test_mirror), axis=1, output_type=tf.int32))

  def _make_variables(self, config: TrainConfig, info: datasets.DatasetInfo,
                      steps_per_epoch: int, total_steps: int) -> None:
    """The model, optimizer, counters and sums (inside the strategy's
    scope)."""
    self.model = GoogLeNet(num_classes=info.num_classes,
                           in_channels=info.channels,
                           image_size=config.image_size, stem=config.stem,
                           norm=config.norm)
    kwargs = ({"momentum": config.momentum, "nesterov": config.nesterov}
              if config.optimizer == "sgd" else {})
    kwargs["weight_decay"] = config.weight_decay
    self.optimizer = optimizers.create(
        config.optimizer, self.model.trainable_variables,
        make_schedule(config, steps_per_epoch, total_steps), **kwargs)
    self.loss_scale = (DynamicLossScale()
                       if config.mixed_precision == "mixed_float16" else None)
    self.state = TrainState(config.seed)
    self.train_sums = metrics.Sums(step_lib.TRAIN_SUMS, name="train_sums")
    self.eval_sums = metrics.Sums(step_lib.eval_sums(info.num_classes),
                                  name="eval_sums")
    params = self.model.weights_and_statistics
    self.ema = (averaging.ExponentialMovingAverage(params, config.ema_decay)
                if config.ema_decay else None)
    self.best = (averaging.BestWeights(params)
                 if config.export == "best" else None)
    self.grad_norms = (variables_lib.weight(
        tf.zeros([len(self.model.trainable_variables)]), name="grad_norms",
        trainable=False)
                       if config.histogram_every else None)

  def checkpoint_objects(self) -> Dict[str, tf.Module]:
    """What a checkpoint holds; the keys are checkpoint names (API)."""
    objects = {"model": self.model, "optimizer": self.optimizer,
               "state": self.state}
    if self.loss_scale is not None:
      objects["loss_scale"] = self.loss_scale
    if self.ema is not None:
      objects["ema"] = self.ema
    if self.best is not None:
      objects["best"] = self.best
    return objects

  def weights(self, purpose: str = "validation"):
    """A context in which the model holds the weights `purpose` uses:
    "validation": the moving average when --ema_decay is set, else the
    trained weights; "final" (the last test and the export): the best
    validated weights with --export=best once a validation ran, else the
    same as validation. Outside it the model holds the trained weights."""
    if purpose == "final" and self.best is not None and self.best.found:
      return self.best.swapped_in()
    if self.ema is not None:
      return self.ema.swapped_in()
    return contextlib.nullcontext()

  def offer_best(self, accuracy: float, step: int) -> bool:
    """With --export=best: keeps the validated weights (the average when
    --ema_decay is set) if `accuracy` is the best so far."""
    if self.best is None:
      return False
    with self.weights("validation"):
      return self.best.offer(accuracy, step)

  def final_weights_step(self) -> int:
    """The step the final weights were validated at, or -1 for the last
    ones."""
    return (int(self.best.step.numpy()) if self.best is not None
            and self.best.found else -1)

  def request_stop(self) -> None:
    """Ends the running compiled loop at its next step (any thread)."""
    self.stop.assign(True)

  def agree_stop(self, requested: bool) -> bool:
    """Whether any worker was asked to stop (this one if `requested`).

    Every worker calls it at the same point between compiled calls: with
    several workers it is a collective, and it doubles as a barrier.
    """
    if requested:
      self.stop.assign(True)
    return bool(self._vote())

  def histograms(self) -> Dict[str, np.ndarray]:
    """Every trainable weight by name, and the last step's per-variable
    gradient norms (when --histogram_every is set)."""
    out = {f"weights/{v.name.split(':')[0]}": v.numpy()
           for v in self.model.trainable_variables}
    if self.grad_norms is not None:
      out["gradient_norms"] = self.grad_norms.numpy()
    return out

  @property
  def global_step(self) -> int:
    return int(self.state.global_step.numpy())

  def divergence(self) -> Tuple[int, int]:
    """(consecutive skipped steps, the last skipped step)."""
    return (int(self.state.consecutive_bad.numpy()),
            int(self.state.last_bad_step.numpy()))

  def train_iterator(self, split, start_step: int):
    """A distributed iterator over the training stream from `start_step`."""
    n, seed = split.num_examples, self.config.seed
    if isinstance(split, tfrecords.RecordSplit):
      return iter(self._records(lambda ctx: shard_stream.train_batches(
          split, self.batch, seed, start_step, self.steps_per_epoch, ctx),
                                training=True))
    cursor = pipeline.Cursor(*divmod(start_step, self.steps_per_epoch))
    return iter(pipeline.distribute(
        self.strategy,
        lambda: pipeline.numbered(pipeline.train_indices(
            n, self.batch.global_batch_size, seed, cursor), start_step),
        split, self.batch, reading=self.reading, training=True))

  def train(self, iterator, num_steps: int) -> Dict[str, float]:
    """Runs `num_steps` steps; returns their mean metrics (skipped steps
    count for nothing), the images skipped as unreadable, the next learning
    rate and the counters.

    Raises:
      DataError: An image cannot be read or decoded (and skipping is off).
    """
    with _naming_bad_images():
      sums = self.trainer.run(iterator, num_steps)
    values = _means(sums, [k for k in sums
                           if k not in ("examples", "bad_images")])
    values["skipped_images"] = float(sums["bad_images"])
    values["learning_rate"] = float(self.optimizer.learning_rate())
    values["skipped_steps"] = float(self.state.skipped_steps.numpy())
    if self.loss_scale is not None:
      values["loss_scale"] = float(self.loss_scale.scale.numpy())
    return values

  def evaluate(self, split, purpose: str = "validation") -> Evaluation:
    """Main-head results over every example of `split` (padding and
    skipped images ignored), with the weights `purpose` uses (`weights`).

    Raises:
      DataError: An image cannot be read or decoded (and skipping is off).
    """
    n, batch = split.num_examples, self.batch.global_batch_size
    if isinstance(split, tfrecords.RecordSplit):
      dataset = self._records(lambda ctx: shard_stream.eval_batches(
          split, self.batch, ctx), training=False)
    else:
      dataset = pipeline.distribute(
          self.strategy, lambda: pipeline.eval_indices(n, batch), split,
          self.batch, reading=self.reading)
    with _naming_bad_images(), self.weights(purpose):
      sums = self.evaluator.run(iter(dataset), pipeline.eval_steps(n, batch))
    return Evaluation(_means(sums, EVAL_METRICS), sums["confusion"],
                      int(sums["examples"]), int(sums["bad_images"]))


  def misclassified(self, split, limit: int = 16) -> Tuple[
      np.ndarray, np.ndarray, np.ndarray]:
    """Up to `limit` of the first GALLERY_SAMPLE examples of `split` that
    the model gets wrong, read as evaluation reads them: (uint8 images,
    true labels, predicted labels)."""
    count = min(GALLERY_SAMPLE, split.num_examples)
    one = distribution.BatchSplit(count, 1)
    if isinstance(split, tfrecords.RecordSplit):
      dataset = shard_stream.replica_batches(
          shard_stream.eval_batches(split, one, tf.distribute.InputContext()),
          one, self.reading, self.num_classes, self.config.label_offset,
          training=False)
    else:
      dataset = pipeline.replica_batches(pipeline.eval_indices(count, count),
                                         split, one, reading=self.reading)
    with _naming_bad_images(), self.weights("validation"):
      batch = next(iter(dataset.take(1)))
      predicted = self._predict(batch["images"]).numpy()
    labels = batch["labels"].numpy()
    wrong = np.flatnonzero((predicted != labels)
                           & (batch["weight"].numpy() > 0))[:limit]
    return batch["images"].numpy()[wrong], labels[wrong], predicted[wrong]

  def _records(self, make_batches, *, training: bool):
    """A distributed dataset of replica batches from TFRecord batches."""
    return self.strategy.distribute_datasets_from_function(
        lambda ctx: shard_stream.replica_batches(
            make_batches(ctx), self.batch, self.reading, self.num_classes,
            self.config.label_offset, training))


@contextlib.contextmanager
def _naming_bad_images():
  """Turns the input pipeline's bad-image assertion into a one-line
  DataError naming the file."""
  try:
    yield
  except tf.errors.InvalidArgumentError as e:
    found = re.search(rf"<<{pipeline.BAD_IMAGE}:\]? \[?(.*?)\]? \[?>>",
                      e.message, re.S)
    if not found:
      raise
    raise DataError(f"{found.group(1).strip()}: {pipeline.BAD_IMAGE}; fix "
                    "or remove it, or pass --skip_bad_images to skip such "
                    "files.") from None
