"""tf.data input pipelines whose position is a pure function of a cursor.

Training data for a run is the stream of epochs e = 0, 1, ...; epoch e is the
training set permuted by a stateless shuffle seeded with (seed, e), cut into
`steps_per_epoch` global batches (the remainder is dropped; a different
remainder each epoch). Resuming at (epoch, step) rebuilds that epoch's
permutation and skips `step` batches of *indices* (no images are read while
skipping), so a resumed run reads exactly the batches an uninterrupted run
would. This is how we resume exactly even though distributed iterators cannot
be checkpointed (tensorflow#24408, #56372).

Each global batch is split into `num_replicas` contiguous slices; replica r gets
rows [r * B/N, (r + 1) * B/N), the same rows dropout draws its noise for
(layers/dropout.py). Images stay uint8 in memory; scaling happens on the device.
TFRecord shards, which cannot be indexed, stream through
core/data/shard_stream.py.

In-memory sets (IDX, synthetic) gather whole rows; image folders read, decode
and resize each file in parallel (an order-keeping interleave), so only the file
list is in memory. Augmentation, when on, runs per example, keyed on (seed,
step, index) (core/data/augment.py). An image that cannot be read or decoded
stops the run with one line naming the file, or with `skip_bad_images` gets
weight 0 and is counted in `bad`.
"""

import dataclasses
import os
from typing import Dict, NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf

from core.data import augment as augment_lib
from core.runtime import distribution
from core.data import images as images_lib

Batch = Dict[str, tf.Tensor]

# What the pipelines map has no Python control flow on a tensor (branches
# are explicit tf.cond), so the functions handed to tf.data skip AutoGraph,
# which it would otherwise apply to each: re-reading the augmentation's
# source cost 0.6 s of every run's start. The datasets such a function
# builds map theirs unconverted too. (Python `if` on a tensor then fails
# loudly, never silently.)
as_graph = tf.autograph.experimental.do_not_convert


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
          .flat_map(as_graph(epoch_batches))
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


@dataclasses.dataclass(frozen=True)
class Reading:
  """How an example becomes a model input on the host.

  Attributes:
    image_size: For files and records: the side images are brought to
      (resize, or random-resized crop when training with "crop"). Ignored
      for in-memory sets, whose images keep their size (the device resizes).
    channels: Channels images are decoded to.
    augment: Training augmentation (core/data/augment.py); evaluation never
      augments.
    seed: The run's seed (augmentation draws are keyed on it).
    crop_padding: Pixels "crop" pads images of one fixed size by before
      cropping back (0: an eighth of the side); files take Inception's crop.
    skip_bad_images: Skip (weight 0, counted) an image that cannot be read
      or decoded, instead of stopping with a one-line error naming it.
    max_image_pixels: Images whose header declares more pixels are bad
      ones (never decoded): the bound on an image's bytes in flight.
    randaugment_ops: "randaugment"'s N, ops per image.
    randaugment_magnitude: "randaugment"'s M, a magnitude bin of 0..30.
  """
  image_size: int = 0
  channels: int = 1
  augment: Tuple[str, ...] = ()
  seed: int = 0
  crop_padding: int = 0
  skip_bad_images: bool = False
  max_image_pixels: int = images_lib.DEFAULT_MAX_PIXELS
  randaugment_ops: int = 2
  randaugment_magnitude: int = 9


BAD_IMAGE = images_lib.UNREADABLE
# Marks the bad-input assertion's message, which train/loop/feed.py turns
# into one line: "<<bad input:", "<where>: <problem>", ">>".
BAD_INPUT = "bad input"


def numbered(indices: tf.data.Dataset, first_step: int) -> tf.data.Dataset:
  """Index batches as {"step", "indices"}: the global step each feeds (its
  augmentation draws are keyed on it)."""
  steps = tf.data.Dataset.range(first_step, np.iinfo(np.int64).max)
  return tf.data.Dataset.zip(steps, indices).map(
      as_graph(lambda step, idx: {"step": step, "indices": idx}))


def memory_batches(batches: tf.data.Dataset, split, batch:
                   distribution.BatchSplit,
                   input_context: Optional[tf.distribute.InputContext] = None,
                   *, reading: Reading = Reading(),
                   training: bool = False) -> tf.data.Dataset:
  """Turns global index batches of an in-memory split (`types.Split`) into
  this input pipeline's replica batches.

  With k of the `batch.num_replicas` replicas fed by this pipeline, every
  global batch becomes k consecutive elements, in replica order, each a dict
  of `images` (uint8 [B/N, H, W, C]), `labels` (int32), `index` (int64, -1
  for padding), `weight` (float32, 0 for padding and skipped images) and
  `bad` (float32, 1 for a skipped image).

  Args:
    batches: Index batches [B], or {"step", "indices"} from `numbered`.
    split: An in-memory `types.Split`.
    batch: The run's batch split.
    input_context: This pipeline's place among several (multi-worker).
    reading: How examples are read, decoded and augmented.
    training: Augment (as `reading` says); evaluation never does.

  Raises:
    ValueError: If `input_context` counts another number of replicas.
  """
  augment = reading.augment if training else ()
  return ready(_own_rows(batches, batch, input_context).map(
      as_graph(_gather_rows(split, reading, augment)),
      num_parallel_calls=tf.data.AUTOTUNE))


def file_batches(batches: tf.data.Dataset, split, batch:
                 distribution.BatchSplit,
                 input_context: Optional[tf.distribute.InputContext] = None,
                 *, reading: Reading = Reading(),
                 training: bool = False) -> tf.data.Dataset:
  """`memory_batches` for an image folder (`folders.FileSplit`): each file
  is read, decoded and resized (or cropped) in parallel, in order."""
  augment = reading.augment if training else ()
  return read_in_order(
      _own_rows(batches, batch, input_context).flat_map(
          as_graph(_one_per_example)),
      as_graph(_example_reader(split, reading, augment)), batch.per_replica)


def _own_rows(batches: tf.data.Dataset, batch: distribution.BatchSplit,
              input_context: Optional[tf.distribute.InputContext]):
  """This pipeline's replicas' rows of every global index batch, each
  {"step", "index"}."""
  ctx = input_context or tf.distribute.InputContext(
      num_replicas_in_sync=batch.num_replicas)
  if ctx.num_replicas_in_sync != batch.num_replicas:
    raise ValueError(
        f"`input_context` must count the batch split's replicas "
        f"({batch.num_replicas}); received {ctx.num_replicas_in_sync}.")
  local = batch.num_replicas // ctx.num_input_pipelines
  first = ctx.input_pipeline_id * local

  def own_rows(element):
    if not isinstance(element, dict):
      element = {"step": tf.constant(-1, tf.int64), "indices": element}
    rows = tf.reshape(element["indices"],
                      [batch.num_replicas, batch.per_replica])
    return tf.data.Dataset.from_tensor_slices(rows[first:first + local]).map(
        lambda row: {"step": element["step"], "index": row})

  return batches.flat_map(as_graph(own_rows))


def read_in_order(examples: tf.data.Dataset, read,
                  per_replica: int) -> tf.data.Dataset:
  """Replica batches of `read(example)` (a one-element dataset each), read
  in parallel but kept in order: an interleave of one-element datasets."""
  return ready(examples.interleave(read, cycle_length=8, block_length=1,
                                   num_parallel_calls=tf.data.AUTOTUNE,
                                   deterministic=True).batch(per_replica))


def ready(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """Prefetched, and not auto-sharded: each input pipeline takes its own
  rows (or shards) itself."""
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.OFF)
  return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


def _one_per_example(row):
  return tf.data.Dataset.from_tensor_slices(row["index"]).map(
      lambda index: {"step": row["step"], "index": index})


def _gather_rows(split, reading: Reading, augment: Tuple[str, ...] = ()):
  """Whole rows of an in-memory split at once, augmented in one loop over
  the row (the same per-example draws as `finish`, without a dataset per
  example: ~1.5x the images/s of Fashion-MNIST training on 2 cores)."""
  images, labels = tf.constant(split.images), tf.constant(split.labels)

  def augmented(row, batch):
    return tf.map_fn(
        lambda args: _augmented(args[0], row["step"], args[1], reading,
                                augment), (batch, row["index"]),
        fn_output_signature=tf.TensorSpec(batch.shape[1:], batch.dtype))

  def gather(row):
    index = row["index"]
    safe = tf.maximum(index, 0)
    batch = tf.gather(images, safe)
    if augment:
      batch = augmented(row, batch)
    return {"images": batch,
            "labels": tf.gather(labels, safe), "index": index,
            "weight": tf.cast(index >= 0, tf.float32),
            "bad": tf.zeros(tf.shape(index), tf.float32)}

  return gather


def _example_reader(split, reading: Reading, augment):
  """index -> a one-element dataset of the decoded (augmented) example of
  an image folder (in-memory sets take `_gather_rows`)."""
  labels = tf.constant(split.labels)
  # Bytes, as the file system has them: a name that is not UTF-8 is still
  # a file (os.fsencode undoes Python's surrogate escapes).
  paths = tf.constant([os.fsencode(p) for p in split.paths], tf.string)

  def read(element):
    safe = tf.maximum(element["index"], 0)
    decoded = read_image(
        lambda i: (tf.io.read_file(tf.gather(paths, i)), {}), safe,
        element, reading, augment)
    return decoded.map(lambda d: finish(d, element, tf.gather(labels, safe),
                                         reading, augment,
                                         tf.gather(paths, safe)))

  return read


def read_image(load, key, element, reading: Reading, augment, *,
               unreadable: str = BAD_IMAGE) -> tf.data.Dataset:
  """The one-element dataset of one file's or record's image, decoded only
  as far as its crop needs (core/data/images.read_or_flagged): training with
  "crop" takes Inception's random window, drawn from the header's shape with
  this example's crop seed; evaluation after such training the central
  87.5 %; otherwise the whole image, resized."""
  if "crop" in augment:
    seed = augment_lib.example_seed(reading.seed, element["step"],
                                    element["index"])
    crop_seed = augment_lib.seeds(seed)[0]
    window = lambda h, w: augment_lib.crop_window(h, w, crop_seed)
  elif "crop" in reading.augment:  # evaluation after Inception-style crops
    window = images_lib.central_window(0.875)
  else:
    window = None
  return images_lib.read_or_flagged(
      load, key, reading.channels, reading.image_size, window=window,
      max_pixels=reading.max_image_pixels, unreadable=unreadable)


def _augmented(image, step, index, reading: Reading, augment, *,
               cropped: bool = False):
  """`image` (example `index` at global `step`) augmented as `reading`
  says (core/data/augment.py)."""
  return augment_lib.augment(
      image, augment_lib.example_seed(reading.seed, step, index), augment,
      padding=reading.crop_padding, cropped=cropped,
      randaugment_ops=reading.randaugment_ops,
      randaugment_magnitude=reading.randaugment_magnitude)


def finish(decoded, element, label, reading: Reading, augment, where):
  """Augments (when training asks: what follows the crop) one image read
  by `read_image`, in uint8 at its final size, and handles a bad one
  (in-memory rows: `_gather_rows`): it stops the run naming `where` and the
  problem, or has weight 0 and is counted."""
  index, ok = element["index"], decoded["ok"]
  size = reading.image_size
  # Crops and resizes with tensor sizes lose the static shape batching (and
  # the policies) need.
  image = tf.ensure_shape(decoded["image"], [size, size, reading.channels])
  if augment:
    image = _augmented(image, element["step"], index, reading, augment,
                       cropped=True)
  if not reading.skip_bad_images:
    with tf.control_dependencies([tf.debugging.Assert(
        ok | (index < 0), [f"<<{BAD_INPUT}:",
                           tf.strings.join([where, ": ", decoded["problem"]]),
                           ">>"])]):
      image = tf.identity(image)
  usable = tf.cast(ok & (index >= 0), tf.float32)
  return {"images": image, "labels": label, "index": index,
          "weight": usable,
          "bad": tf.cast(tf.logical_not(ok) & (index >= 0), tf.float32)}
