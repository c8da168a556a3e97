"""How a split becomes batches: the one place that knows the three kinds of
split (in-memory rows, image files, TFRecord shards) and picks their reader.

Everything above it (the engine, the evaluation commands, the benchmarks)
asks for "the training stream from step s" or "one pass for evaluation" of
a split and never looks at its type. In-memory sets and folders are indexed
(core/data/pipeline.py: a pure function of the cursor); shards are streamed
record by record (core/data/shard_stream.py). All three give the same
replica batches: dicts of `images`, `labels`, `index`, `weight` and `bad`.
"""

import os
from typing import Iterator, Optional, Tuple

import tensorflow as tf

from core.data import folders
from core.data import pipeline
from core.data import shard_stream
from core.data import tfrecords
from core.data import types
from core.runtime import distribution
from core.runtime.errors import InputError

MEMORY, FILES, RECORDS = "memory", "files", "records"


def _kind(split) -> str:
  """The reader a split takes (the only type test on splits)."""
  if isinstance(split, types.Split):
    return MEMORY
  if isinstance(split, folders.FileSplit):
    return FILES
  if isinstance(split, tfrecords.RecordSplit):
    return RECORDS
  raise TypeError(f"`split` must be a types.Split, folders.FileSplit or "
                  f"tfrecords.RecordSplit; received {type(split).__name__}.")


def replica_batches(split, batch: distribution.BatchSplit,
                    reading: pipeline.Reading, *, training: bool,
                    start_step: int = 0, steps_per_epoch: int = 1,
                    num_classes: int = 0, label_offset: int = 0,
                    input_context: Optional[tf.distribute.InputContext] = None,
                    shuffle_block: int = shard_stream.SHUFFLE_BLOCK
                    ) -> tf.data.Dataset:
  """This input pipeline's replica batches of `split`.

  Args:
    split: Any split of `types.Splits`.
    batch: The run's batch split.
    reading: How examples are read, decoded and augmented (its seed keys
      the training order and the augmentation).
    training: The endless, shuffled, augmented training stream from
      `start_step`; else one pass over every example in order, the last
      global batch padded (weight 0).
    start_step: The global step the stream's first batch feeds.
    steps_per_epoch: Global batches in one training epoch.
    num_classes: Shards: labels outside [0, num_classes) are bad records.
    label_offset: Shards: subtracted from every stored label.
    input_context: This pipeline's place among several (multi-worker).
    shuffle_block: Shards: records shuffled together in training.
  """
  ctx = input_context or tf.distribute.InputContext(
      num_replicas_in_sync=batch.num_replicas)
  kind = _kind(split)
  if kind == RECORDS:
    if training:
      records = shard_stream.train_batches(split, batch, reading.seed,
                                           start_step, steps_per_epoch, ctx,
                                           shuffle_block)
    else:
      records = shard_stream.eval_batches(split, batch, ctx)
    return shard_stream.replica_batches(records, batch, reading, num_classes,
                                        label_offset, training)
  n, size = split.num_examples, batch.global_batch_size
  if training:
    cursor = pipeline.Cursor(*divmod(start_step, steps_per_epoch))
    indices = pipeline.numbered(
        pipeline.train_indices(n, size, reading.seed, cursor), start_step)
  else:
    indices = pipeline.eval_indices(n, size)
  read = pipeline.memory_batches if kind == MEMORY else pipeline.file_batches
  return read(indices, split, batch, ctx, reading=reading, training=training)


def distributed(strategy: tf.distribute.Strategy, split,
                batch: distribution.BatchSplit, reading: pipeline.Reading,
                **kwargs) -> tf.distribute.DistributedDataset:
  """`replica_batches` for every input pipeline of `strategy` (one per
  worker), as one distributed dataset. `kwargs` as `replica_batches`'s."""
  return strategy.distribute_datasets_from_function(
      lambda ctx: replica_batches(split, batch, reading, input_context=ctx,
                                  **kwargs))


def serving_inputs(split, batch_size: int
                   ) -> Iterator[Tuple[str, tf.Tensor]]:
  """(signature name, `images` input) for every `batch_size` examples of
  `split`, as a client of the exported model would send them: uint8 pixels
  for in-memory sets, the files' encoded bytes for folders.

  Raises:
    InputError: For shards (evaluate the run's checkpoint instead).
  """
  kind = _kind(split)
  if kind == RECORDS:
    raise InputError("a SavedModel is evaluated on IDX or image-folder "
                     "data; evaluate the run's checkpoint for TFRecord "
                     "shards.")
  for start in range(0, split.num_examples, batch_size):
    if kind == MEMORY:
      yield "serving_default", tf.constant(
          split.images[start:start + batch_size])
    else:
      yield "serving_bytes", tf.stack([
          tf.io.read_file(os.fsencode(p))
          for p in split.paths[start:start + batch_size]])
