"""How the run's splits become its replicas' batches.

One frozen value, `Feed`, holds what every reader of a split needs (the
strategy, the batch split, how images are read, the label facts); the
trainer and the evaluator both read through it, and core/data/batches.py is
the one place that knows the kinds of split. A bad image surfaces from the
pipeline as an assertion inside a compiled call; `naming_bad_images` turns it
into the one-line DataError users see.
"""

import contextlib
import dataclasses
import re

import tensorflow as tf

from core.data import batches as batches_lib
from core.data import pipeline
from core.runtime import distribution
from core.runtime.errors import DataError


@dataclasses.dataclass(frozen=True)
class Feed:
  """The reading side of a run.

  Attributes:
    strategy: The strategy the batches are distributed over.
    batch: The run's batch split.
    reading: How examples are read, decoded and augmented.
    num_classes: Shards: labels outside [0, num_classes) are bad records.
    label_offset: Shards: subtracted from every stored label.
  """
  strategy: tf.distribute.Strategy
  batch: distribution.BatchSplit
  reading: pipeline.Reading
  num_classes: int
  label_offset: int = 0

  def distributed(self, split, *, training: bool, **kwargs):
    """The distributed replica batches of `split` (`kwargs` as
    core/data/batches.replica_batches's: start_step, steps_per_epoch)."""
    return batches_lib.distributed(
        self.strategy, split, self.batch, self.reading, training=training,
        num_classes=self.num_classes, label_offset=self.label_offset,
        **kwargs)

  def first(self, split, count: int) -> dict:
    """The first `count` examples of `split` as one batch on this host,
    read as evaluation reads them."""
    dataset = batches_lib.replica_batches(
        split, distribution.BatchSplit(count, 1), self.reading,
        training=False, num_classes=self.num_classes,
        label_offset=self.label_offset)
    return next(iter(dataset.take(1)))


@contextlib.contextmanager
def naming_bad_images():
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
