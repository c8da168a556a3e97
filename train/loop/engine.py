"""The engine: the variables of a run and its compiled loops.

What the controller (train/loop/controller.py) asks of it: the global step,
`train` and `evaluate` over a split, the weights to validate and export,
and the divergence counters. It creates nothing from a config: the one
assembler (train/assembly/build.py) makes every variable inside the
strategy's scope and hands the parts over; an evaluation-only engine (for
train.evaluate) has no `Training` part. Splits become batches in one place
(core/data/batches.py).
"""

import contextlib
import re
from typing import Callable, Dict, NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf

from core.data import batches as batches_lib
from core.data import pipeline
from core.data import preprocessing
from core.optim import metrics
from core.optim.loss_scale import DynamicLossScale
from core.optim.optimizers import Optimizer
from core.runtime import distribution
from core.runtime.errors import DataError
from layers.googlenet import GoogLeNet
from train.loop import step as step_lib
from train.loop.state import TrainState
from train.loop.trainer import Evaluator, Trainer

EVAL_METRICS = ("loss/main", "accuracy/main", "accuracy/top5")
# The misclassified-images grid looks at the first GALLERY_SAMPLE examples of
# the validation split (the same ones at every evaluation).
GALLERY_SAMPLE = 256


class Training(NamedTuple):
  """What only a training engine has: the step and what it updates."""
  step: step_lib.TrainStep
  optimizer: Optimizer
  sums: metrics.Sums                 # the training metrics' sums
  steps_per_epoch: int
  loss_scale: Optional[DynamicLossScale] = None
  grad_norms: Optional[tf.Variable] = None   # with --histogram_every


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
  """The model and the weight sets swapped into it (moving average, best
  validated), the counters, and the compiled loops over them.

  Args:
    strategy: The strategy every variable was created under.
    batch: The run's batch split.
    model: The network.
    state: The checkpointed counters (global step, seed, bad steps).
    eval_sums: The evaluation metrics' sums (step_lib.eval_sums).
    reading: How the input pipeline reads examples.
    compute_dtype: The forward pass's dtype (float32, or a mixed one).
    mirror: Test-time mirroring in evaluation and prediction.
    label_offset: Shards: subtracted from every stored label.
    ema: The moving average of the weights, or None.
    best: The best validated weights (--export=best), or None.
    training: The training parts; None for an evaluation-only engine.
  """

  def __init__(self, strategy: tf.distribute.Strategy,
               batch: distribution.BatchSplit, *, model: GoogLeNet,
               state: TrainState, eval_sums: metrics.Sums,
               reading: pipeline.Reading, compute_dtype: tf.DType = tf.float32,
               mirror: bool = False, label_offset: int = 0, ema=None,
               best=None, training: Optional[Training] = None):
    self.strategy, self.batch, self.model, self.state = (
        strategy, batch, model, state)
    self.reading, self.label_offset = reading, label_offset
    self.ema, self.best, self.training = ema, best, training
    self.num_classes = model.num_classes
    # `stop`: set from the preemption watcher's thread. `stopped`: what the
    # workers agreed, written by the loops only. Not part of the
    # checkpoint, and outside the strategy: one copy per process.
    self.stop = tf.Variable(False, trainable=False, name="stop_requested")
    self.stopped = tf.Variable(False, trainable=False, name="stop_agreed")
    self.trainer = (Trainer(strategy, training.step, training.sums,
                            self.stop, self.stopped, state)
                    if training is not None else None)
    self.evaluator = Evaluator(
        strategy, step_lib.EvalStep(model, eval_sums,
                                    compute_dtype=compute_dtype,
                                    mirror=mirror),
        eval_sums, self.stop, self.stopped)
    # No AutoGraph in these (nor in the loops' steps, trainer.py): the
    # model holds no Python control flow on tensors.
    self._vote = tf.function(
        lambda: distribution.agree_any(strategy, self.stop), autograph=False)
    # Cross-replica, on this host's default device: no collective.
    self._predict = tf.function(lambda images: tf.argmax(model.classify(
        preprocessing.preprocess(images, image_size=model.image_size,
                                 channels=model.in_channels,
                                 dtype=compute_dtype),
        mirror=mirror), axis=1, output_type=tf.int32), autograph=False)

  @property
  def optimizer(self) -> Optional[Optimizer]:
    """The optimizer (None in an evaluation-only engine)."""
    return self.training.optimizer if self.training is not None else None

  @property
  def loss_scale(self) -> Optional[DynamicLossScale]:
    return self.training.loss_scale if self.training is not None else None

  @property
  def grad_norms(self) -> Optional[tf.Variable]:
    return self.training.grad_norms if self.training is not None else None

  @property
  def steps_per_epoch(self) -> int:
    """Global batches per training epoch.

    Raises:
      ValueError: In an evaluation-only engine, which has no training stream.
    """
    if self.training is None:
      raise ValueError("an evaluation-only engine has no training stream; "
                       "build it with build.training_engine to train.")
    return self.training.steps_per_epoch

  def checkpoint_objects(self) -> Dict[str, tf.Module]:
    """What a checkpoint holds; the keys are checkpoint names (API)."""
    objects = {"model": self.model, "state": self.state}
    if self.optimizer is not None:
      objects["optimizer"] = self.optimizer
    if self.loss_scale is not None:
      objects["loss_scale"] = self.loss_scale
    if self.ema is not None:
      objects["ema"] = self.ema
    if self.best is not None:
      objects["best"] = self.best
    return objects

  def added_checkpoint_keys(self) -> Dict[str, Tuple[tf.Variable,
                                                     Callable[[], None]]]:
    """Variables checkpoints of earlier versions lack, and their default
    (core/runtime/checkpointing.Checkpointer's `added`): `best/validated`
    came with the redone validation; an older checkpoint is taken as
    validated at its step, which is what that version did."""
    if self.best is None:
      return {}
    return {"best/validated/.ATTRIBUTES/VARIABLE_VALUE": (
        self.best.validated,
        lambda: self.best.validated.assign(self.global_step))}

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

  def validation_missed(self, step: int) -> bool:
    """With --export=best: whether the weights restored at `step` were
    never offered (a signal interrupted their validation)."""
    return self.best is not None and int(self.best.validated.numpy()) < step

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
    return iter(self._batches(split, training=True, start_step=start_step,
                              steps_per_epoch=self.steps_per_epoch))

  def train(self, iterator, num_steps: int) -> Dict[str, float]:
    """Runs `num_steps` steps; returns their mean metrics (skipped steps
    count for nothing), the images skipped as unreadable, the next learning
    rate and the counters.

    Raises:
      DataError: An image cannot be read or decoded (and skipping is off).
      ValueError: In an evaluation-only engine.
    """
    if self.trainer is None:
      raise ValueError("an evaluation-only engine cannot train; build it "
                       "with build.training_engine to train.")
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
    dataset = self._batches(split, training=False)
    steps = pipeline.eval_steps(split.num_examples,
                                self.batch.global_batch_size)
    with _naming_bad_images(), self.weights(purpose):
      sums = self.evaluator.run(iter(dataset), steps)
    return Evaluation(_means(sums, EVAL_METRICS), sums["confusion"],
                      int(sums["examples"]), int(sums["bad_images"]))


  def misclassified(self, split, limit: int = 16) -> Tuple[
      np.ndarray, np.ndarray, np.ndarray]:
    """Up to `limit` of the first GALLERY_SAMPLE examples of `split` that
    the model gets wrong, read as evaluation reads them: (uint8 images,
    true labels, predicted labels)."""
    count = min(GALLERY_SAMPLE, split.num_examples)
    dataset = batches_lib.replica_batches(
        split, distribution.BatchSplit(count, 1), self.reading,
        training=False, num_classes=self.num_classes,
        label_offset=self.label_offset)
    with _naming_bad_images(), self.weights("validation"):
      batch = next(iter(dataset.take(1)))
      predicted = self._predict(batch["images"]).numpy()
    labels = batch["labels"].numpy()
    wrong = np.flatnonzero((predicted != labels)
                           & (batch["weight"].numpy() > 0))[:limit]
    return batch["images"].numpy()[wrong], labels[wrong], predicted[wrong]

  def _batches(self, split, *, training: bool, **kwargs):
    """The distributed replica batches of `split` (core/data/batches.py)."""
    return batches_lib.distributed(
        self.strategy, split, self.batch, self.reading, training=training,
        num_classes=self.num_classes, label_offset=self.label_offset,
        **kwargs)


@contextlib.contextmanager
def _naming_bad_images():
  """Turns the input pipeline's bad-image assertion into a one-line
  DataError naming the file."""
  try:
    yield
  except (tf.errors.InvalidArgumentError, UnicodeDecodeError) as e:
    if isinstance(e, UnicodeDecodeError):
      # The message names a file whose name is not UTF-8: TensorFlow fails
      # to decode its own error. Its bytes are the message.
      if not isinstance(e.object, bytes):
        raise
      message = e.object.decode("utf-8", "backslashreplace")
    else:
      message = e.message
    found = re.search(rf"<<{pipeline.BAD_INPUT}:\]? \[?(.*?)\]? \[?>>",
                      message, re.S)
    if not found:
      raise
    raise DataError(f"{found.group(1).strip()}; fix or remove it, or pass "
                    "--skip_bad_images to skip (and count) such images."
                    ) from None
