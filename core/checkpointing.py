"""Checkpoints that survive crashes: restore the newest *good* one.

TF writes a checkpoint's shards to `<prefix>_temp` and publishes the `.index`
last, and rewrites the `checkpoint` state file atomically, so a crash leaves
either a complete checkpoint or an incomplete one that has no index. We go
further: restore scans every `ckpt-N.index` from the newest down and falls
back past any that fail to read (truncated, corrupt, missing data files),
reporting each in one line. `max_to_keep` is at least 2 so a fallback exists.
A save refuses non-finite weights, so no checkpoint on disk holds NaN or Inf.
"""

import glob
import os
import re
from typing import Callable, List, Optional, Tuple

from absl import logging
import tensorflow as tf

_PREFIX = "ckpt"
_NUMBER = re.compile(rf"{_PREFIX}-(\d+)\.index$")


def complete_checkpoints(directory: str) -> List[Tuple[int, str]]:
  """(number, prefix) of every checkpoint with an index file, newest first."""
  found = []
  for index in glob.glob(os.path.join(directory, f"{_PREFIX}-*.index")):
    match = _NUMBER.search(os.path.basename(index))
    if match:
      found.append((int(match.group(1)), index[:-len(".index")]))
  return sorted(found, reverse=True)


class Checkpointer:
  """A CheckpointManager with fallback restore and a finite-weights guard."""

  def __init__(self, directory: str, *, max_to_keep: int = 3,
               report: Callable[[str], None] = logging.warning,
               **objects: tf.Module):
    """Tracks `objects` (model, optimizer, counters) in `directory`.

    Args:
      directory: Where checkpoints live.
      max_to_keep: Newest checkpoints kept; at least 2.
      report: Receives one line per checkpoint that cannot be used.
      **objects: What to save; the keyword names are checkpoint keys (API).

    Raises:
      ValueError: If `max_to_keep` < 2.
    """
    if not isinstance(max_to_keep, int) or max_to_keep < 2:
      raise ValueError(f"`max_to_keep` must be an integer >= 2 so a fallback "
                       f"exists; received max_to_keep={max_to_keep!r}.")
    self.directory = directory
    self._report = report
    self.checkpoint = tf.train.Checkpoint(**objects)
    try:
      self.manager = self._manager(max_to_keep)
    except ValueError as e:  # an empty or garbled `checkpoint` state file
      state = os.path.join(directory, "checkpoint")
      kept = f"{state}.unreadable"
      os.replace(state, kept)
      report(f"checkpoint state file unreadable ({e}); moved it to {kept} "
             "and will scan for checkpoints instead")
      self.manager = self._manager(max_to_keep)

  def _manager(self, max_to_keep: int) -> tf.train.CheckpointManager:
    return tf.train.CheckpointManager(self.checkpoint, self.directory,
                                      max_to_keep=max_to_keep,
                                      checkpoint_name=_PREFIX)

  def restore_latest(self) -> Optional[int]:
    """Restores the newest readable checkpoint.

    Returns:
      Its number (the global step), or None if there is none.
    """
    for leftover in sorted(glob.glob(os.path.join(self.directory,
                                                  f"{_PREFIX}-*_temp*"))):
      self._report(f"ignoring half-written checkpoint {leftover}")
    for number, prefix in complete_checkpoints(self.directory):
      try:
        self.checkpoint.restore(prefix).assert_existing_objects_matched()
      except Exception as e:  # pylint: disable=broad-except
        # A damaged file fails in many ways (DataLossError, IndexError from
        # the reader, ValueError, ...); every one means "use an older one".
        reason = str(e).strip().splitlines()[0][:200] if str(e) else type(
            e).__name__
        self._report(f"checkpoint {prefix} is unusable ({reason}); "
                     "trying the previous one")
        continue
      return number
    return None

  def save(self, step: int, weights) -> Optional[str]:
    """Saves as `ckpt-<step>` unless a weight is non-finite.

    Args:
      step: The global step, used as the checkpoint number.
      weights: Variables that must be finite for the save to happen.

    Returns:
      The checkpoint prefix, or None if the save was refused.
    """
    if not all(bool(tf.reduce_all(tf.math.is_finite(w))) for w in weights):
      self._report(f"not saving step {step}: weights are not finite")
      return None
    return self.manager.save(checkpoint_number=step)
