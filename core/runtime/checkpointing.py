"""Checkpoints that survive crashes: restore the newest *good* one.

TF writes a checkpoint's shards to `<prefix>_temp` and publishes the `.index`
last, and rewrites the `checkpoint` state file atomically, so a crash leaves
either a complete checkpoint or an incomplete one that has no index. We go
further: restore scans every `ckpt-N.index` from the newest down and falls
back past any that fail to read (truncated, corrupt, missing data files),
reporting each in one line. `max_to_keep` is at least 2 so a fallback exists.
A save refuses non-finite weights, so no checkpoint on disk holds NaN or Inf.
A save that finds the disk full removes its half-written `ckpt-N_temp` and
raises NoSpaceError naming the space it needs; half-written temporaries left
by a killed process are removed before the next restore.

In a multi-worker run every worker must take part in a save (TF's pattern: a
save may read distributed values through collectives), but only the chief's
is kept: the others (`writer=False`) write into a private temporary folder
that they remove at once, and only read `directory`.
"""

import gc
import os
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from absl import logging
import tensorflow as tf

from core.runtime import files
from core.runtime.errors import InputError, NoSpaceError, is_no_space, megabytes

_PREFIX = "ckpt"
_NUMBER = re.compile(rf"{_PREFIX}-(\d+)\.index")
_DATA = re.compile(rf"{_PREFIX}-\d+\.data-\d+-of-\d+")


def complete_checkpoints(directory: str) -> List[Tuple[int, str]]:
  """(number, prefix) of every checkpoint with an index file, newest first."""
  found = []
  # A listing, not a pattern: `runs/lr[0.1]` must find its own files and
  # `runs/[ab]` never another run's.
  for index in files.matching(directory, _NUMBER.fullmatch):
    match = _NUMBER.fullmatch(os.path.basename(index))
    found.append((int(match.group(1)), index[:-len(".index")]))
  return sorted(found, reverse=True)


class UnusableRun(InputError):
  """A used `model_dir` whose checkpoints cannot be resumed by this run."""


def _silence_failed_restores() -> None:
  """A restore that fails part-way leaves TF's record of the values it did
  not restore attached to the variables, and TF logs it as a screenful of
  warnings when the record dies (at exit); the one-line report says it
  all. The record is TF's `_CheckpointRestoreCoordinator`, whose public
  `expect_partial` (what `status.expect_partial()` sets) silences it."""
  for leftover in gc.get_objects():
    if type(leftover).__name__ == "_CheckpointRestoreCoordinator":
      leftover.expect_partial = True


def first_line(error: BaseException) -> str:
  """An exception's first line, at most 200 characters, or its type."""
  text = str(error).strip()
  return text.splitlines()[0][:200] if text else type(error).__name__


class Checkpointer:
  """Numbered checkpoints with fallback restore, a finite-weights guard and
  a sweep that never globs."""

  def __init__(self, directory: str, *, max_to_keep: int = 3,
               report: Callable[[str], None] = logging.warning,
               guard: Sequence[tf.Variable] = (), writer: bool = True,
               added: Optional[Dict[str, Tuple[tf.Variable,
                                               Callable[[], None]]]] = None,
               **objects: tf.Module):
    """Tracks `objects` (model, optimizer, counters) in `directory`.

    Args:
      directory: Where checkpoints live.
      max_to_keep: Newest checkpoints kept; at least 2.
      report: Receives one line per checkpoint that cannot be used.
      guard: Variables that must be finite for a save to happen (the
        model's weights).
      writer: False for a worker that saves only to take part (see above):
        it never writes, moves or removes anything in `directory`.
      added: Checkpoint keys of variables a later version added, each with
        (the variable, what to do when an older checkpoint lacks it: set a
        default): such a checkpoint still restores; any other unmatched
        object refuses it.
      **objects: What to save; the keyword names are checkpoint keys (API).

    Raises:
      ValueError: If `max_to_keep` < 2.
    """
    if not isinstance(max_to_keep, int) or max_to_keep < 2:
      raise ValueError(f"`max_to_keep` must be an integer >= 2 so a fallback "
                       f"exists; received max_to_keep={max_to_keep!r}.")
    self.directory, self.writer = directory, writer
    self._report = report
    self._added = dict(added or {})
    self._guard = tuple(guard)
    # What one checkpoint writes: every variable of every object (a module's
    # variables, or the object itself when it is a variable).
    self._bytes = sum(v.shape.num_elements() * v.dtype.size
                      for o in objects.values()
                      for v in getattr(o, "variables", [o]))
    self.checkpoint = tf.train.Checkpoint(**objects)
    self._keep = max_to_keep

  def restore_latest(self) -> Optional[int]:
    """Restores the newest readable checkpoint, falling back past damaged
    ones (each reported).

    Returns:
      Its number (the global step), or None if there is none.

    Raises:
      UnusableRun: There are checkpoints and not one restores (another
        model's, say a head of another class count): starting at step 0
        would train over that run, so the caller decides.
    """
    if self.writer:
      self.remove_temporaries()
    found = complete_checkpoints(self.directory)
    reasons = []
    for number, prefix in found:
      if self._try_restore(prefix, reasons):
        return number
    if found:
      raise UnusableRun(
          f"`model_dir` {self.directory} holds {len(found)} checkpoint(s) "
          f"and none restores into this model: the newest, "
          f"{os.path.basename(found[0][1])}, fails with {reasons[0]}")
    return None

  def _try_restore(self, prefix: str, reasons: List[str]) -> bool:
    """Restores `prefix`; False and its reason reported if it fails."""
    try:
      with files.literal(prefix) as readable:
        status = self.checkpoint.restore(readable)
        missing = ([k for k in self._added if k not in {
            name for name, _ in tf.train.list_variables(readable)}]
                   if self._added else [])
      try:
        status.assert_existing_objects_matched()
      except AssertionError as e:
        # An older checkpoint without the variables a later version added
        # (and nothing else unmatched): restored, those set by default.
        if not missing or f"Found {len(missing)} Python object" not in str(
            e) or not all(self._added[k][0].name in str(e) for k in missing):
          raise
        for key in missing:
          self._added[key][1]()
      # Values no object claims (counters an older version kept) are
      # ignored, not warned about at exit.
      status.expect_partial()
    except Exception as e:  # pylint: disable=broad-except
      # A damaged file fails in many ways (DataLossError, IndexError from
      # the reader, ValueError, ...); every one means "use an older one".
      reasons.append(first_line(e))
      _silence_failed_restores()
      self._report(f"checkpoint {prefix} is unusable ({reasons[-1]}); "
                   "trying the previous one")
      return False
    return True

  def restore(self, step: int) -> int:
    """Restores `ckpt-<step>` (for evaluation: values no object claims are
    ignored).

    Raises:
      InputError: If there is no such checkpoint, naming the ones there are.
    """
    prefix = os.path.join(self.directory, f"{_PREFIX}-{step}")
    if not files.exists(prefix + ".index"):
      have = [n for n, _ in complete_checkpoints(self.directory)]
      raise InputError(f"no checkpoint {step} in {self.directory}; it has "
                       f"{', '.join(map(str, sorted(have))) or 'none'}.")
    with files.literal(prefix) as readable:
      self.checkpoint.restore(readable).expect_partial()
    return step

  def remove_temporaries(self) -> None:
    """Deletes half-written `ckpt-N_temp` files and folders (a killed or
    failed save's; never a complete checkpoint), reporting each."""
    for leftover in files.matching(self.directory, lambda name: re.match(
        rf"{_PREFIX}-.*_temp", name)):
      if files.isdir(leftover):
        files.rmtree(leftover)
      else:
        files.remove(leftover)
      self._report(f"removed half-written checkpoint {leftover}")

  def save(self, step: int) -> Optional[str]:
    """Saves as `ckpt-<step>` unless a guarded weight is non-finite.

    Args:
      step: The global step, used as the checkpoint number.

    Returns:
      The checkpoint prefix, or None if the save was refused.

    Raises:
      NoSpaceError: The disk filled up; the half-written files are removed
        and the checkpoints written before are intact.
    """
    if not all(bool(tf.reduce_all(tf.math.is_finite(w)))
               for w in self._guard):
      self._report(f"not saving step {step}: weights are not finite")
      return None
    if not self.writer:
      with files.scratch(f"{_PREFIX}-{step}-worker-") as scratch:
        self.checkpoint.write(os.path.join(scratch, _PREFIX))
      return None
    prefix = os.path.join(self.directory, f"{_PREFIX}-{step}")
    # Counted as TF's CheckpointManager counted (every checkpoint holds
    # `save_counter`, so old and new ones restore alike).
    self.checkpoint.save_counter.assign_add(1)
    try:
      self.checkpoint.write(prefix)
    except (tf.errors.OpError, OSError) as e:
      if not is_no_space(e):
        raise
      self.remove_temporaries()
      free = files.free_bytes(self.directory)
      raise NoSpaceError(
          f"no space left in {self.directory} for checkpoint {step}: it "
          f"needs about {megabytes(self._bytes)}" + (
              f" and {megabytes(free)} are free" if free is not None else "")
          + "; the checkpoints written before are intact: free space and "
          "run the same command to resume.") from None
    self._sweep()
    return prefix

  def _sweep(self) -> None:
    """Keeps the newest `max_to_keep` complete checkpoints and rewrites the
    `checkpoint` state file (for TF's `latest_checkpoint`; we never read it).

    Our own sweep rather than `tf.train.CheckpointManager`'s: TF's globs each
    prefix, so in a folder named `runs/exp[1]` it deleted `runs/exp1`'s
    checkpoints and never its own. Here every name comes from a listing of
    this folder. The index goes first: a sweep cut short leaves a checkpoint
    without an index, which restore never reads and the next sweep removes.
    """
    names = files.listdir(self.directory)  # one listing serves it all
    numbers = sorted((int(match.group(1)) for match in map(
        _NUMBER.fullmatch, names) if match), reverse=True)
    for number in numbers[self._keep:]:
      files.remove(os.path.join(self.directory,
                                f"{_PREFIX}-{number}.index"))
    # Data files of a checkpoint not kept: the old ones, and any a sweep
    # cut short left without an index.
    kept = tuple(f"{_PREFIX}-{number}." for number in numbers[:self._keep])
    for name in names:
      if _DATA.fullmatch(name) and not name.startswith(kept):
        files.remove(os.path.join(self.directory, name))
    files.write_atomic(os.path.join(self.directory, "checkpoint"), "".join(
        [f'model_checkpoint_path: "{kept[0][:-1]}"\n'] +
        [f'all_model_checkpoint_paths: "{prefix[:-1]}"\n'
         for prefix in reversed(kept)]))
