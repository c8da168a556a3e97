"""`--start_over`: a used `model_dir` this run cannot resume is moved
aside whole, never trained over.

A run that finds another model's or data's run in its folder (or
checkpoints of which none restores) refuses in one line; with
`--start_over` it moves that run (checkpoints, manifest, event files, the
default export folder) into `<model_dir>/replaced-<UTC time>/` and starts
at step 0. Nothing is deleted, and TensorBoard shows the old run beside the
new one (its event files are a subfolder of the --logdir).
"""

import datetime
import os
from typing import Callable

from core.runtime import files
from core.runtime.errors import InputError
from train.assembly.run_lock import LEASE_NAME, LOCK_NAME

PREFIX = "replaced-"


def refuse_or_move(model_dir: str, why: str, start_over: bool,
                   report: Callable[[str], None]) -> None:
  """Moves the run in `model_dir` aside when `start_over`, else refuses.

  Raises:
    InputError: `why` and the two ways on, when not `start_over`.
  """
  if not start_over:
    raise InputError(f"{why}; use another --model_dir, or --start_over to "
                     "move that run aside and start at step 0.")
  moved = move_aside(model_dir)
  report(f"note: {why}; --start_over moved it to {moved}, starting over")


def move_aside(model_dir: str) -> str:
  """Moves every entry of `model_dir` but its lock and earlier replaced
  runs into a new `replaced-<time>` folder there; returns that folder."""
  stamp = datetime.datetime.now(datetime.timezone.utc).strftime(
      "%Y%m%d-%H%M%S")
  target, n = os.path.join(model_dir, PREFIX + stamp), 1
  while files.exists(target):
    n += 1
    target = os.path.join(model_dir, f"{PREFIX}{stamp}-{n}")
  files.makedirs(target)
  for name in files.listdir(model_dir):
    if name in (LOCK_NAME, LEASE_NAME) or name.startswith(PREFIX):
      continue
    files.move(os.path.join(model_dir, name), os.path.join(target, name))
  return target
