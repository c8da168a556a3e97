"""Per-replica steps: pure functions of a batch and the variables, no I/O.

They run inside `strategy.run`; the distribution convention they follow is
written in core/runtime/distribution.py.
"""

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import tensorflow as tf

from core.data import mixing as mixing_lib
from core.data import preprocessing
from core.optim import losses
from core.optim import metrics
from core.optim.loss_scale import DynamicLossScale
from core.optim.optimizers import Optimizer
from core.runtime import distribution
from layers import variables as variables_lib
from layers.dropout import DropoutNoise
from layers.googlenet import GoogLeNet
from layers.normalization import BatchStatistics
from train.loop.state import RunState
from train.loop.weights import WeightSets

# Each head's name in the metrics -> its field in GoogLeNetOutputs; its loss
# is the HeadLosses field of the same name. Matched by name, never position.
HEADS = {"main": "logits", "aux1": "aux1", "aux2": "aux2"}
# A training batch's fields besides the images, one row per example
# (core/data/pipeline.py).
ROW_FIELDS = ("labels", "weight", "bad")
TRAIN_SUMS = {"examples": [], "bad_images": [], "loss/total": [],
              **{f"loss/{h}": [] for h in HEADS},
              **{f"accuracy/{h}": [] for h in HEADS}}


def _eval_sums(num_classes: int) -> Dict[str, list]:
  """Shapes of the evaluation sums."""
  return {"examples": [], "bad_images": [], "loss/main": [],
          "accuracy/main": [], "accuracy/top5": [],
          "confusion": [num_classes, num_classes]}


def all_finite(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
  """False if any element of `tensors` is Inf or NaN.

  One pass of sums instead of an elementwise test and a reduction per
  tensor: Inf or NaN anywhere makes the total Inf or NaN. A total beyond
  float32's range (3.4e38) of finite elements also counts as not finite, a
  step no training run should take anyway (apex's loss scaler uses the same
  test).
  """
  return tf.math.is_finite(tf.add_n(
      [tf.reduce_sum(tf.cast(t, tf.float32)) for t in tensors]))


@dataclasses.dataclass(frozen=True)
class StepOptions:
  """How a training step computes its update: one value, built by the
  assembler (train/assembly/build.py) from the config.

  Attributes:
    batch: The run's batch split (the loss is a mean over the global batch).
    aux_weights: The auxiliary heads' loss weights.
    compute_dtype: The forward pass's dtype (float32, or a mixed one; with
      float16 the loss is scaled).
    jit_compile: XLA-compile the forward and backward pass.
    label_smoothing: Of every head's targets.
    clip_norm: Clip the reduced gradients to this global norm; 0: off.
    norm_group_size: Examples per batch normalisation group
      (layers/normalization.py); None: a replica's whole slice.
    gradient_norms: Keep each reduced gradient's norm for histograms.
    accumulate_steps: Micro-batches a replica's slice is cut into, run one
      after another, their gradients added: the same update in less
      memory.
    mixing: Mixup and CutMix (core/data/mixing.py); falsy: off.
    class_weights: Each class's loss weight; None: all 1.
    every_example_counts: No training row can have weight 0 (data in
      memory: no padding, nothing to decode), so batch normalisation
      normalises whole groups without partitioning the counted rows out
      (layers/normalization.py; 15 % of make train's step).
  """
  batch: distribution.BatchSplit
  aux_weights: Tuple[float, ...] = (0.3, 0.3)
  compute_dtype: tf.DType = tf.float32
  jit_compile: bool = False
  label_smoothing: float = 0.0
  clip_norm: float = 0.0
  norm_group_size: Optional[int] = None
  gradient_norms: bool = False
  accumulate_steps: int = 1
  mixing: mixing_lib.Mixing = mixing_lib.Mixing()
  class_weights: Optional[Tuple[float, ...]] = None
  every_example_counts: bool = False

  @property
  def micro_batch(self) -> int:
    """Rows of a replica's micro-batch.

    Raises:
      ValueError: If the micro-batches do not cut the slice evenly.
    """
    rows, parts = self.batch.per_replica, self.accumulate_steps
    if rows % parts:
      raise ValueError(f"`accumulate_steps` must divide the per-replica "
                       f"batch ({rows}); received accumulate_steps={parts}.")
    return rows // parts


class TrainStep:
  """One optimisation step on one replica's slice of a global batch.

  Forward and backward run under a GradientTape (optionally XLA-compiled);
  the gradients are all-reduced once; the update is applied only if every
  reduced gradient and the loss are finite; otherwise the step is counted as
  skipped and the weights do not move. Clipping by global norm acts on the
  reduced gradients, after the finiteness test (an infinite norm would
  turn every gradient into NaN). With batch normalisation the layers'
  batch statistics ride in the same all-reduce, and the moving statistics
  move with the weights, only when the step is applied.
  """

  def __init__(self, model: GoogLeNet, optimizer: Optimizer,
               state: RunState, options: "StepOptions", *,
               weights: Optional[WeightSets] = None):
    """Builds the step and the variables only it writes (the metric sums,
    the loss scale, the gradient norms): call it in the strategy's scope.

    Args:
      model: The network.
      optimizer: Updates the variables it was made for (all the trainable
        ones, or fine-tuning's part: no gradient is computed for the rest).
      state: The counters the step moves (the skipped steps).
      options: How the update is computed.
      weights: Their moving average follows each applied step; None: none.
    """
    self.model, self.optimizer, self.state = model, optimizer, state
    self.options, self.weights = options, weights or WeightSets()
    self.params = optimizer.params
    self.sums = metrics.Sums(TRAIN_SUMS, name="train_sums")
    self.loss_scale = (DynamicLossScale()
                       if options.compute_dtype == tf.float16 else None)
    # [len(params)]: each reduced gradient's norm, for histograms; None:
    # not computed at all.
    self.grad_norms = (variables_lib.weight(
        tf.zeros([len(self.params)]), name="grad_norms", trainable=False)
                       if options.gradient_norms else None)
    self._grads = tf.function(self._forward_backward, jit_compile=True,
                              autograph=False) if options.jit_compile else (
                                  self._forward_backward)

  def _forward_backward(self, images, targets, weight, seed, row_offset):
    global_batch = self.options.batch.global_batch_size
    noise = DropoutNoise(seed, row_offset, global_batch)
    stats = BatchStatistics(
        self.options.norm_group_size,
        None if self.options.every_example_counts else weight,
        fused=not self.options.jit_compile)
    with tf.GradientTape() as tape:
      outputs = self.model(images, training=True, noise=noise, stats=stats)
      head = losses.googlenet_loss(outputs, targets,
                                   self.options.aux_weights,
                                   self.options.label_smoothing)
      # A skipped image (weight 0) adds nothing; the mean stays over B.
      loss = losses.global_batch_mean(head.total, global_batch, weight)
      scaled = self.loss_scale.scale_loss(loss) if self.loss_scale else loss
    grads = tape.gradient(scaled, self.params)
    stats = (stats.sums() + [stats.total_weight()]
             if self.model.norm_layers else [])
    return loss, grads, head, outputs, stats

  def _micro_step(self, images, batch, seed, row_offset):
    """Loss, gradients, metric sums and batch statistics of one
    (micro-)batch of a replica, before any all-reduce."""
    # Training batches are always full (the stream never ends), but file
    # pipelines do not say so: with the size stated, batch normalisation
    # takes its fused kernel whatever the source and however the slice is
    # accumulated (layers/normalization.py).
    rows = self.options.micro_batch
    images = tf.ensure_shape(images, [rows, *images.shape[1:]])
    batch = {k: tf.ensure_shape(batch[k], [rows, *batch[k].shape[1:]])
             for k in ROW_FIELDS}
    labels, weight = batch["labels"], batch["weight"]
    targets = losses.Targets(labels, class_weights=(
        None if self.options.class_weights is None
        else tf.constant(self.options.class_weights, tf.float32)))
    if self.options.mixing:
      mixed = mixing_lib.mix(images, labels, weight, self.options.mixing,
                             seed, row_offset,
                             self.options.batch.global_batch_size)
      images = mixed.images
      targets = targets._replace(partner_labels=mixed.partner_labels,
                                 lam=mixed.lam)
    loss, grads, head, outputs, stats = self._grads(
        images, targets, weight, seed, row_offset)
    values = {"examples": tf.reduce_sum(weight),
              "bad_images": tf.reduce_sum(batch["bad"]),
              "loss/total": tf.reduce_sum(head.total * weight)}
    for name, field in HEADS.items():
      values[f"loss/{name}"] = tf.reduce_sum(getattr(head, name) * weight)
      values[f"accuracy/{name}"] = tf.reduce_sum(
          metrics.top_k_correct(getattr(outputs, field), labels) * weight)
    return loss, list(grads), values, list(stats)

  def _accumulated(self, images, batch, seed, row_offset):
    """`_micro_step` over the slice's micro-batches in turn (a while loop,
    one micro-batch in memory at a time), everything added. Each keeps its
    rows' place in the global batch, so dropout, mixing and normalisation
    groups see what one pass over the slice would."""
    parts, rows = self.options.accumulate_steps, self.options.micro_batch
    cut = lambda t: tf.reshape(t, [parts, rows, *t.shape[1:]])
    images, batch = cut(images), {k: cut(batch[k]) for k in ROW_FIELDS}

    def body(i, loss, grads, values, stats):
      out = self._micro_step(images[i], {k: v[i] for k, v in batch.items()},
                             seed, row_offset + i * rows)
      added = tf.nest.map_structure(tf.add, (loss, grads, values, stats), out)
      return (i + 1,) + added

    zeros = (tf.constant(0.0), [tf.zeros(p.shape, p.dtype)
                                for p in self.params],
             {k: tf.constant(0.0) for k in TRAIN_SUMS},
             [tf.zeros([layer.channels]) for layer in self.model.norm_layers
              for _ in range(2)] + ([tf.constant(0.0)]
                                    if self.model.norm_layers else []))
    return tf.while_loop(lambda i, *_: i < parts, body,
                         (tf.constant(0),) + zeros,
                         parallel_iterations=1)[1:]

  def __call__(self, batch: Dict[str, tf.Tensor]) -> None:
    images = preprocessing.preprocess(
        batch["images"], image_size=self.model.image_size,
        channels=self.model.in_channels, dtype=self.options.compute_dtype)
    seed = tf.random.experimental.stateless_fold_in(
        tf.stack([self.state.seed, tf.constant(0x5EED, tf.int64)]),
        self.state.global_step)
    offset = distribution.replica_row_offset(self.options.batch.per_replica)
    run = (self._micro_step if self.options.accumulate_steps == 1
           else self._accumulated)
    loss, grads, values, stats = run(images, batch, seed, offset)
    reduced = distribution.all_reduce_sum([loss] + list(stats) + list(grads))
    loss, stats, grads = (reduced[0], reduced[1:1 + len(stats)],
                          reduced[1 + len(stats):])
    if self.loss_scale:
      grads = self.loss_scale.unscale(grads)
    if self.grad_norms is not None:
      self.grad_norms.assign(tf.stack([tf.norm(tf.cast(g, tf.float32))
                                       for g in grads]))
    finite = all_finite([loss] + list(stats) + list(grads))
    tf.cond(finite, lambda: self._apply(grads, stats), lambda: None)
    if self.loss_scale:
      self.loss_scale.update(finite)
    self._count(finite)
    # A skipped step counts for nothing (its NaN sums would poison the mean).
    self.sums.add({k: tf.where(finite, v, 0.0) for k, v in values.items()})

  def _apply(self, grads, stats) -> None:
    """The update from finite, all-reduced gradients: clipped to the global
    norm (the same on every replica, since the gradients are), applied;
    the moving statistics follow the reduced batch statistics `stats`
    (sums, then their total weight); then all of it is averaged into the
    moving average (when there is one)."""
    if self.options.clip_norm:
      grads, _ = tf.clip_by_global_norm(grads, self.options.clip_norm)
    self.optimizer.apply(grads)
    if self.model.norm_layers:
      self.model.update_statistics(stats[:-1], stats[-1],
                                   self.optimizer.iterations)
    self.weights.update(self.optimizer.iterations)

  def _count(self, finite: tf.Tensor) -> None:
    bad = tf.logical_not(finite)
    state = self.state
    state.skipped_steps.assign_add(tf.cast(bad, tf.int64))
    state.consecutive_bad.assign(
        tf.where(bad, state.consecutive_bad + 1, tf.zeros_like(
            state.consecutive_bad)))
    state.last_bad_step.assign(
        tf.where(bad, state.global_step, state.last_bad_step))


class EvalStep:
  """Main-head loss, accuracy and confusion counts on one replica's slice;
  padding rows (weight 0) count for nothing."""

  def __init__(self, model: GoogLeNet, *,
               compute_dtype: tf.DType = tf.float32, mirror: bool = False,
               crops: str = "1"):
    """Builds the step and its sums: call it in the strategy's scope.
    `mirror` and `crops` are GoogLeNet.classify's test-time views."""
    self.model, self.compute_dtype = model, compute_dtype
    self.mirror, self.crops = mirror, crops
    self.sums = metrics.Sums(_eval_sums(model.num_classes), name="eval_sums")

  def __call__(self, batch: Dict[str, tf.Tensor]) -> None:
    weight, labels = batch["weight"], batch["labels"]
    logits = self.logits(batch["images"])
    self.sums.add({
        "examples": tf.reduce_sum(weight),
        "bad_images": tf.reduce_sum(batch["bad"]),
        "loss/main": tf.reduce_sum(losses.cross_entropy(logits, labels)
                                   * weight),
        "accuracy/main": tf.reduce_sum(
            metrics.top_k_correct(logits, labels) * weight),
        "accuracy/top5": tf.reduce_sum(
            metrics.top_k_correct(logits, labels, 5) * weight),
        "confusion": metrics.confusion_matrix(
            labels, logits, self.model.num_classes, weight),
    })

  def logits(self, images: tf.Tensor) -> tf.Tensor:
    """The main head's logits of uint8 `images` with the step's views:
    multi-crop takes its crops from the images as delivered, one crop is
    the images resized to the model's side."""
    multi = self.crops != "1"
    return self.model.classify(preprocessing.preprocess(
        images, image_size=None if multi else self.model.image_size,
        channels=self.model.in_channels, dtype=self.compute_dtype),
                               crops=self.crops, mirror=self.mirror)
