"""tf.data streams of TFRecord shards, for training and evaluation.

TFRecord shards are streamed, not indexed: there is no random access into a
shard. Epoch e reads the shards in an order permuted by (seed, e),
interleaved record by record, shuffled in blocks keyed by (seed, e, block),
and cuts the stream into `steps_per_epoch` global batches of *serialized*
records. Resuming at (epoch, step) rebuilds that epoch's stream and skips
`step` batches of records before anything is parsed or decoded: it costs
reading those records' bytes again, not decoding them. Each input pipeline
(one per worker) reads its own share of the shards. Records become replica
batches of the same form as core/data/pipeline.py's.

A damaged shard (a CRC mismatch or a record cut short) cannot be read past
the damage: TFRecordDataset stops there with an error that names no file.
Each shard's stream therefore drops its errors and ends with a check that the
bytes it read (16 + length per record) add up to the file's size; when they
do not, one bad element names the shard and the record, which the run stops
on or, with --skip_bad_images, skips and counts (the rest of that shard is
not read). A record that is not an Example holding an image is bad the same
way.
"""

import numpy as np
import tensorflow as tf

from core.runtime import distribution
from core.runtime import files
from core.data import tfrecords
from core.data.pipeline import (Reading, as_graph, epoch_permutation,
                                eval_steps, finish, read_image, read_in_order)

# Records shuffled together: memory holds one block of serialized records
# (about 110 MB of ImageNet JPEGs), whatever the data set's size.
SHUFFLE_BLOCK = 1024
_CYCLE = 16  # shards read at once


_DAMAGED = ("is damaged after this record's start (a CRC mismatch or a "
            "record cut short); the rest of the shard cannot be read")
_NOT_AN_EXAMPLE = (f"is not a tf.train.Example holding an image in "
                   f"{tfrecords.ENCODED}")


def _shard_table(split) -> tf.Tensor:
  """[shards, 4] strings: each shard's path, its size in bytes and the
  features its records keep the image and the label in."""
  sizes = split.sizes or tuple(files.size(f) for f in split.files)
  return tf.constant([[f, str(n), *split.features]
                      for f, n in zip(split.files, sizes)])


def _epoch_records(table: tf.Tensor, seed: int, epoch: tf.Tensor,
                   ctx: tf.distribute.InputContext,
                   block: int) -> tf.data.Dataset:
  """(where, serialized record, damaged) of one epoch, shuffled."""
  order = tf.gather(table, epoch_permutation(seed, epoch, table.shape[0]))
  mine = order[ctx.input_pipeline_id::ctx.num_input_pipelines]

  def shuffled(block_number, block):
    # A stateless shuffle of each block of records, keyed on (seed, epoch,
    # block): tf.data's shuffle takes no tensor seed, and a permutation
    # of a block mixes as well as a shuffle buffer of the block's size.
    size = tf.shape(block["record"])[0]
    key = tf.random.experimental.stateless_fold_in(
        tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)]),
        block_number)
    order = tf.random.experimental.index_shuffle(
        tf.range(tf.cast(size, tf.int64)), seed=key,
        max_index=tf.cast(size, tf.int64) - 1)
    return tf.data.Dataset.from_tensor_slices(
        {k: tf.gather(v, order) for k, v in block.items()})

  return (tf.data.Dataset.from_tensor_slices(mine)
          .interleave(as_graph(_named_records), cycle_length=_CYCLE,
                      block_length=1,
                      num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True)
          .batch(block).enumerate().flat_map(as_graph(shuffled)))


def _named_records(shard: tf.Tensor) -> tf.data.Dataset:
  """{"where": "<shard> record <n>", "record": bytes, "damaged": bool,
  "features": [2] strings} of one shard ([path, size, image and label
  feature]): its records, then, if the shard is damaged, one damaged
  element in place of the rest."""
  path, size = shard[0], tf.strings.to_number(shard[1], tf.int64)
  records = tf.data.TFRecordDataset(path).map(
      lambda record: {"record": record, "end": tf.constant(False)})
  end = tf.data.Dataset.from_tensors({"record": tf.constant(""),
                                      "end": tf.constant(True)})

  def step(state, element):
    read, number = state
    where = tf.strings.join([path, " record ", tf.strings.as_string(number)])
    damaged = element["end"] & tf.not_equal(read, size)
    after = (read + 16 + tf.cast(tf.strings.length(element["record"]),
                                 tf.int64), number + 1)
    return after, {"where": where, "record": element["record"],
                   "damaged": damaged,
                   "keep": tf.logical_not(element["end"]) | damaged}

  return (records.ignore_errors().concatenate(end)
          .scan((tf.constant(0, tf.int64), tf.constant(0, tf.int64)), step)
          .filter(lambda e: e["keep"])
          .map(lambda e: {"where": e["where"], "record": e["record"],
                          "damaged": e["damaged"], "features": shard[2:]}))


def train_batches(split, batch: distribution.BatchSplit, seed: int,
                  start_step: int, epoch_steps: int,
                  ctx: tf.distribute.InputContext,
                  shuffle_block: int = SHUFFLE_BLOCK) -> tf.data.Dataset:
  """This pipeline's batches of serialized records from `start_step` on,
  each {"step", "where", "record", "position"} with a leading batch axis of
  the pipeline's rows (its replicas' share of a global batch)."""
  table = _shard_table(split)
  local = batch.per_replica * (batch.num_replicas // ctx.num_input_pipelines)
  epoch0, skip = divmod(start_step, epoch_steps)

  def epoch_batches(epoch):
    first = epoch * epoch_steps * local
    return (_epoch_records(table, seed, epoch, ctx, shuffle_block).repeat()
            .take(epoch_steps * local).enumerate()
            .map(lambda i, r: dict(r, position=first + i))
            .batch(local, drop_remainder=True))

  batches = (tf.data.Dataset.range(epoch0, np.iinfo(np.int64).max)
             .flat_map(as_graph(epoch_batches)).skip(skip))
  return _with_steps(batches, start_step)


def _with_steps(batches: tf.data.Dataset, first_step: int):
  """Adds the global step each batch feeds to its dict."""
  steps = tf.data.Dataset.range(first_step, np.iinfo(np.int64).max)
  return tf.data.Dataset.zip(steps, batches).map(
      as_graph(lambda step, b: dict(b, step=step)))


def eval_batches(split, batch: distribution.BatchSplit,
                 ctx: tf.distribute.InputContext) -> tf.data.Dataset:
  """Every record of `split` once, in shard order, as this pipeline's rows
  of padded global batches (padding: position -1)."""
  steps = eval_steps(split.num_examples, batch.global_batch_size)
  padding = tf.data.Dataset.from_tensors(
      {"where": tf.constant("padding"), "record": tf.constant(b""),
       "damaged": tf.constant(False),
       "features": tf.constant(tfrecords.FEATURES)}).repeat()
  stream = (tf.data.Dataset.from_tensor_slices(_shard_table(split))
            .flat_map(as_graph(_named_records))
            .enumerate().map(as_graph(lambda i, r: dict(r, position=i)))
            .concatenate(padding.map(as_graph(lambda r: dict(
                r, position=tf.constant(-1, tf.int64)))))
            .take(steps * batch.global_batch_size)
            .batch(batch.global_batch_size))
  local = batch.num_replicas // ctx.num_input_pipelines
  first = ctx.input_pipeline_id * local * batch.per_replica
  rows = local * batch.per_replica
  return _with_steps(stream.map(as_graph(
      lambda b: {k: v[first:first + rows] for k, v in b.items()})), -1)


def replica_batches(batches: tf.data.Dataset, batch, reading: Reading,
                    num_classes: int, label_offset: int,
                    training: bool) -> tf.data.Dataset:
  """Parses, decodes and augments record batches into replica batches
  (the same dict as core/data/pipeline.memory_batches makes)."""
  augment = reading.augment if training else ()

  def examples(element):
    rows = tf.data.Dataset.from_tensor_slices(
        {k: element[k] for k in ("where", "record", "features", "position",
                                 "damaged")})
    return rows.map(lambda r: dict(r, step=element["step"]))

  def load(row):
    parsed = tfrecords.parse(row["record"], row["features"])
    return parsed["encoded"], {"label": parsed["label"]}

  def read(row):
    element = {"step": row["step"], "index": row["position"]}
    decoded = read_image(load, {k: row[k] for k in ("record", "features")},
                         element, reading, augment,
                         unreadable=_NOT_AN_EXAMPLE)

    def checked(d):
      label = d["extra"]["label"] - label_offset
      in_range = (label >= 0) & (label < num_classes)
      problem = tf.where(
          row["damaged"], _DAMAGED, tf.where(
              d["ok"] & tf.logical_not(in_range),
              f"label outside [0, {num_classes}) after "
              f"--label_offset={label_offset}", d["problem"]))
      ok = d["ok"] & in_range & tf.logical_not(row["damaged"])
      return finish(dict(d, ok=ok, problem=problem), element,
                    tf.cast(tf.maximum(label, 0), tf.int32), reading,
                    augment, row["where"])

    return decoded.map(checked)

  return read_in_order(batches.flat_map(as_graph(examples)), as_graph(read),
                       batch.per_replica)
