"""tf.data input pipelines whose position is a pure function of a cursor.

Training data for a run is the stream of epochs e = 0, 1, ...; epoch e is the
training set permuted by a stateless shuffle seeded with (seed, e), cut into
`steps_per_epoch` global batches (the remainder is dropped; a different
remainder each epoch). Resuming at (epoch, step) rebuilds that epoch's
permutation and skips `step` batches of *indices* (no images are read while
skipping), so a resumed run reads exactly the batches an uninterrupted run
would. This is how we resume exactly even though distributed iterators cannot
be checkpointed (tensorflow#24408, #56372).

Each global batch is split into `num_replicas` contiguous slices; replica r
gets rows [r * B/N, (r + 1) * B/N), the same rows dropout draws its noise for
(layers/dropout.py). Images stay uint8 in memory; scaling happens on the device.
"""

from typing import Callable, Dict, NamedTuple, Optional

import numpy as np
import tensorflow as tf

from core import datasets
from core import distribution

Batch = Dict[str, tf.Tensor]


class Cursor(NamedTuple):
  """A position in the training stream: `step` batches into `epoch`."""
  epoch: int
  step: int


def steps_per_epoch(num_examples: int, global_batch_size: int) -> int:
  """Full global batches in one epoch (the remainder is dropped)."""
  return num_examples // global_batch_size


def epoch_permutation(seed: int, epoch: tf.Tensor, n: int) -> tf.Tensor:
  """The order of epoch `epoch`: a bijection of [0, n) seeded by (seed, epoch)."""
  key = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)])
  return tf.random.experimental.index_shuffle(
      tf.range(n, dtype=tf.int64), seed=key, max_index=n - 1)


def train_indices(num_examples: int, global_batch_size: int, seed: int,
                  start: Cursor) -> tf.data.Dataset:
  """Global batches of example indices from `start` on, forever.

  Returns:
    A dataset of int64 vectors [global_batch_size].
  """
  steps = steps_per_epoch(num_examples, global_batch_size)

  def epoch_batches(epoch):
    order = epoch_permutation(seed, epoch, num_examples)
    return tf.data.Dataset.from_tensor_slices(
        tf.reshape(order[:steps * global_batch_size], [steps, -1]))

  return (tf.data.Dataset.range(start.epoch, np.iinfo(np.int64).max)
          .flat_map(epoch_batches)
          .skip(start.step))


def eval_indices(num_examples: int, global_batch_size: int) -> tf.data.Dataset:
  """Global batches covering [0, num_examples) in order; the last batch is
  padded with index -1 (weight 0) so every example is counted exactly once."""
  padded = -(-num_examples // global_batch_size) * global_batch_size
  order = np.full([padded], -1, np.int64)
  order[:num_examples] = np.arange(num_examples)
  return tf.data.Dataset.from_tensor_slices(
      order.reshape([-1, global_batch_size]))


def eval_steps(num_examples: int, global_batch_size: int) -> int:
  """Global batches in one pass of `eval_indices`."""
  return -(-num_examples // global_batch_size)


def replica_batches(indices: tf.data.Dataset, split: datasets.Split,
                    batch: distribution.BatchSplit,
                    input_context: Optional[tf.distribute.InputContext] = None
                    ) -> tf.data.Dataset:
  """Turns global index batches into this input pipeline's replica batches.

  With k of the `batch.num_replicas` replicas fed by this pipeline, every
  global batch becomes k consecutive elements, in replica order, each a dict
  of `images` (uint8 [B/N, H, W, C]), `labels` (int32), `index` (int64, -1
  for padding) and `weight` (float32, 0 for padding).

  Raises:
    ValueError: If `input_context` counts another number of replicas.
  """
  ctx = input_context or tf.distribute.InputContext(
      num_replicas_in_sync=batch.num_replicas)
  if ctx.num_replicas_in_sync != batch.num_replicas:
    raise ValueError(
        f"`input_context` must count the batch split's replicas "
        f"({batch.num_replicas}); received {ctx.num_replicas_in_sync}.")
  local = batch.num_replicas // ctx.num_input_pipelines
  first = ctx.input_pipeline_id * local
  images = tf.constant(split.images)
  labels = tf.constant(split.labels)

  def own_rows(indices_of_batch):
    rows = tf.reshape(indices_of_batch,
                      [batch.num_replicas, batch.per_replica])
    return tf.data.Dataset.from_tensor_slices(rows[first:first + local])

  def gather(index):
    safe = tf.maximum(index, 0)
    return {
        "images": tf.gather(images, safe),
        "labels": tf.gather(labels, safe),
        "index": index,
        "weight": tf.cast(index >= 0, tf.float32),
    }

  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.OFF)  # we shard by rows ourselves
  return (indices.flat_map(own_rows)
          .map(gather, num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE)
          .with_options(options))


def distribute(strategy: tf.distribute.Strategy,
               make_indices: Callable[[], tf.data.Dataset],
               split: datasets.Split, batch: distribution.BatchSplit):
  """A distributed dataset of replica batches from `make_indices()`."""

  def dataset_fn(ctx):
    return replica_batches(make_indices(), split, batch, input_context=ctx)

  return strategy.distribute_datasets_from_function(dataset_fn)
