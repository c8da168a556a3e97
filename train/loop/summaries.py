"""TensorBoard writers for the outer loop: scalars, text, images, flushes."""

import os
from typing import Dict, Mapping, Sequence

import numpy as np
from tensorboard.plugins.hparams import api as hp
import tensorflow as tf

from train.artefacts import confusion


class Summaries:
  """One event-file writer per split under `logdir/<split>`; TF's no-op
  writers when not `enabled` (the non-chief workers of a multi-worker run,
  which compute the same values and write nothing)."""

  def __init__(self, logdir: str, *, enabled: bool = True):
    self.logdir, self.enabled = logdir, enabled
    self._writers: Dict[str, tf.summary.SummaryWriter] = {}

  def _writer(self, split: str) -> tf.summary.SummaryWriter:
    if split not in self._writers:
      self._writers[split] = (tf.summary.create_file_writer(
          os.path.join(self.logdir, split)) if self.enabled
                              else tf.summary.create_noop_writer())
    return self._writers[split]

  def scalars(self, split: str, values: Mapping[str, float],
              step: int) -> None:
    """Writes each value as a scalar at `step`."""
    with self._writer(split).as_default(step=step):
      for tag, value in values.items():
        tf.summary.scalar(tag, float(value))

  def text(self, split: str, tag: str, markdown: str, step: int) -> None:
    """Writes a markdown text summary."""
    with self._writer(split).as_default(step=step):
      tf.summary.text(tag, markdown)

  def confusion(self, split: str, matrix: np.ndarray,
                class_names: Sequence[str], step: int) -> None:
    """Writes what train/artefacts/confusion.py draws of the counts, bounded at
    any class count: the heat map `confusion_matrix` (an image drawn with
    NumPy, so no plotting library is needed; above FULL_MAP classes, only
    the classes the most confused pairs involve), the counts or the most
    confused pairs `confusion_table`, per-class accuracy worst first
    `per_class_accuracy` and their distribution as a histogram."""
    counts = np.asarray(matrix, np.int64)
    classes = confusion.shown_classes(counts)
    accuracy = confusion.per_class_accuracy(counts)
    with self._writer(split).as_default(step=step):
      tf.summary.image("confusion_matrix",
                       confusion.heat_map(counts, classes, class_names)[None],
                       description=self._shown(class_names, classes))
      # Tags of their own: TensorBoard files a tag under one plugin only,
      # and a table sharing the image's tag hid the image from Images.
      tf.summary.text("confusion_table",
                      confusion.count_table(counts, class_names))
      tf.summary.text("per_class_accuracy",
                      confusion.accuracy_table(counts, class_names))
      tf.summary.histogram("per_class_accuracy_distribution",
                           accuracy[~np.isnan(accuracy)])

  @staticmethod
  def _shown(names: Sequence[str], classes: np.ndarray) -> str:
    if len(classes) == len(names):
      return f"rows: true class, columns: predicted; all {len(names)}"
    return (f"rows: true class, columns: predicted; the {len(classes)} of "
            f"{len(names)} classes the most confused pairs involve: "
            + ", ".join(names[i] for i in classes))

  def image(self, split: str, tag: str, image: np.ndarray,
            step: int) -> None:
    """Writes one uint8 image [H, W, C] at `step`."""
    with self._writer(split).as_default(step=step):
      tf.summary.image(tag, np.asarray(image, np.uint8)[None])

  def histograms(self, split: str, values: Mapping[str, np.ndarray],
                 step: int) -> None:
    """Writes each array as a histogram at `step`."""
    with self._writer(split).as_default(step=step):
      for tag, value in values.items():
        tf.summary.histogram(tag, value)

  def hparams(self, config: Mapping[str, object], run: str) -> None:
    """The run's configuration for TensorBoard's HParams dashboard, which
    compares the runs of one --logdir in one table, with their scalars
    (validation and test accuracy, ...) as metric columns. Written in the
    run's top folder, the session TensorBoard groups its splits under."""
    values = {k: v if isinstance(v, (bool, int, float, str)) else str(v)
              for k, v in config.items()}
    with self._writer("").as_default(step=0):
      hp.hparams(values, trial_id=run)

  def flush(self) -> None:
    """Writes everything buffered to disk."""
    for writer in self._writers.values():
      writer.flush()

  def close(self) -> None:
    """Flushes and closes every writer."""
    for writer in self._writers.values():
      writer.close()
    self._writers.clear()
