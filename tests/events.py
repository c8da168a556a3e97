"""Reads TensorBoard event files back (public tf.compat.v1 summary_iterator)."""

import glob
import os
from typing import Dict, List, Tuple

import tensorflow as tf


def read(logdir: str) -> Dict[str, List[Tuple[int, object]]]:
  """tag -> [(step, value)] over every event file in `logdir`."""
  tags: Dict[str, List[Tuple[int, object]]] = {}
  for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        data = tf.make_ndarray(value.tensor) if value.HasField("tensor") else (
            value.simple_value)
        tags.setdefault(value.tag, []).append((event.step, data))
  return tags
