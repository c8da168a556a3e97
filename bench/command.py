"""The engine's command as a user runs it, timed: whole `python -m
train.main` runs of two lengths, whose difference cancels start-up, tracing,
the final test and the last checkpoint, and the wall clock between the
progress lines it prints."""

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import List, NamedTuple, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PROGRESS = re.compile(r"^step (\d+)/\d+ ")


class Run(NamedTuple):
  """One whole run: its steps, its wall time in seconds, and (step, seconds
  since start) for each progress line as it arrived."""
  steps: int
  seconds: float
  marks: Tuple[Tuple[int, float], ...]


def run(flags: Sequence[str], steps: int, steps_per_loop: int) -> Run:
  """Runs `python -m train.main FLAGS` for `steps` steps in a fresh
  model_dir, with no validation and no export.

  Raises:
    RuntimeError: If the command fails (with its last line of output).
  """
  with tempfile.TemporaryDirectory() as model_dir:
    args = [sys.executable, "-u", "-m", "train.main", *flags,
            f"--train_steps={steps}", f"--steps_per_loop={steps_per_loop}",
            "--validation_size=0", "--export=none",
            f"--model_dir={model_dir}/run"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    marks, last = [], "no output"
    start = time.perf_counter()
    with subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as child:
      for line in child.stdout:
        now = time.perf_counter() - start
        last = line.strip() or last
        progress = _PROGRESS.match(line)
        if progress:
          marks.append((int(progress.group(1)), now))
    seconds = time.perf_counter() - start
  if child.returncode:
    raise RuntimeError(f"train.main exited {child.returncode}: {last}")
  return Run(steps, seconds, tuple(marks))


def per_step(short: Run, long: Run) -> float:
  """Seconds per step from two whole runs: (T(long) - T(short)) /
  (long.steps - short.steps); what both runs pay once cancels.

  Raises:
    ValueError: If `long` is not the longer run.
  """
  if long.steps <= short.steps:
    raise ValueError(f"`long` must run more steps than `short`; received "
                     f"{long.steps} and {short.steps} steps.")
  return (long.seconds - short.seconds) / (long.steps - short.steps)


def between_progress_lines(marks: Sequence[Tuple[int, float]]
                           ) -> Optional[float]:
  """Median wall seconds per step between consecutive progress lines, the
  first line (which includes tracing) only as a start; None with fewer than
  two lines."""
  rates: List[float] = [(t1 - t0) / (s1 - s0) for (s0, t0), (s1, t1)
                        in zip(marks, marks[1:]) if s1 > s0]
  return statistics.median(rates) if rates else None
