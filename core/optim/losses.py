"""GoogLeNet's weighted multi-head loss, on logits.

loss = main + w1 * aux1 + w2 * aux2 per example (w1 = w2 = 0.3 in the paper),
then reduced to the *global* batch: each replica sums its examples and divides
by the global batch size, so the replicas' gradients add up to the gradient of
the mean over the global batch (core/runtime/distribution.py).
"""

from typing import NamedTuple, Optional, Sequence

import numpy as np
import tensorflow as tf


class HeadLosses(NamedTuple):
  """Per-example losses [N]: the weighted total and each head's own."""
  total: tf.Tensor
  main: tf.Tensor
  aux1: tf.Tensor
  aux2: tf.Tensor


def cross_entropy(logits: tf.Tensor, labels: tf.Tensor,
                  label_smoothing: float = 0.0) -> tf.Tensor:
  """Per-example softmax cross-entropy from logits, computed in float32 for
  stability whatever the compute dtype.

  With `label_smoothing` e > 0 the target is 1 - e + e/K on the true class
  and e/K on each other of the K classes (Szegedy et al. 2016, as Keras'
  `label_smoothing` defines it).
  """
  logits = tf.cast(logits, tf.float32)
  if not label_smoothing:
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=logits)
  classes = tf.shape(logits)[-1]
  target = (tf.one_hot(tf.cast(labels, tf.int32), classes)
            * (1.0 - label_smoothing)
            + label_smoothing / tf.cast(classes, tf.float32))
  return tf.nn.softmax_cross_entropy_with_logits(labels=target,
                                                 logits=logits)


class Targets(NamedTuple):
  """What a training batch's heads are scored against.

  Attributes:
    labels: int labels [N].
    partner_labels: With mixup or CutMix (core/data/mixing.py), each
      example's partner's label [N]; None: no mixing.
    lam: The share [N] of an example's own label in its mixed target.
    class_weights: [K] float32, each class's loss weight; None: all 1.
  """
  labels: tf.Tensor
  partner_labels: Optional[tf.Tensor] = None
  lam: Optional[tf.Tensor] = None
  class_weights: Optional[tf.Tensor] = None


def balanced_class_weights(labels: np.ndarray,
                           num_classes: int) -> np.ndarray:
  """Keras' and scikit-learn's "balanced" weights, examples / (classes x
  the class's examples), so every class weighs as much in the loss; a class
  without examples gets 1 (it never occurs)."""
  counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes)
  weights = len(labels) / (num_classes * np.maximum(counts, 1))
  return np.where(counts > 0, weights, 1.0).astype(np.float32)


def target_loss(logits: tf.Tensor, targets: Targets,
                label_smoothing: float = 0.0) -> tf.Tensor:
  """Per-example cross-entropy against `targets`: the labels' (smoothed),
  mixed with the partners' by lam, each label's term times its class
  weight."""
  def term(labels):
    loss = cross_entropy(logits, labels, label_smoothing)
    if targets.class_weights is None:
      return loss
    return loss * tf.gather(targets.class_weights, tf.cast(labels, tf.int32))

  own = term(targets.labels)
  if targets.partner_labels is None:
    return own
  lam = tf.cast(targets.lam, tf.float32)
  return lam * own + (1.0 - lam) * term(targets.partner_labels)


def googlenet_loss(outputs, labels, aux_weights: Sequence[float] = (0.3, 0.3),
                   label_smoothing: float = 0.0) -> HeadLosses:
  """Per-example weighted loss of the three heads.

  Args:
    outputs: GoogLeNetOutputs with all three heads (training mode).
    labels: int labels [N], or Targets (mixed labels, class weights).
    aux_weights: Weights of aux1 and aux2.
    label_smoothing: Applied to every head's targets (cross_entropy).

  Returns:
    HeadLosses of [N] float32 tensors.

  Raises:
    ValueError: If the outputs lack the aux heads or the weights are not two.
  """
  if len(aux_weights) != 2:
    raise ValueError("`aux_weights` must have two entries; received "
                     f"aux_weights={tuple(aux_weights)!r}.")
  if outputs.aux1 is None or outputs.aux2 is None:
    raise ValueError("googlenet_loss needs the aux heads' logits; call the "
                     "model with training=True.")
  targets = labels if isinstance(labels, Targets) else Targets(labels)
  main = target_loss(outputs.logits, targets, label_smoothing)
  aux1 = target_loss(outputs.aux1, targets, label_smoothing)
  aux2 = target_loss(outputs.aux2, targets, label_smoothing)
  total = main + aux_weights[0] * aux1 + aux_weights[1] * aux2
  return HeadLosses(total, main, aux1, aux2)


def global_batch_mean(per_example: tf.Tensor, global_batch_size: int,
                      weights: Optional[tf.Tensor] = None) -> tf.Tensor:
  """This replica's share of the global-batch mean: sum(w * loss) / B."""
  if weights is not None:
    per_example = per_example * weights
  return tf.reduce_sum(per_example) / tf.cast(global_batch_size,
                                              per_example.dtype)
