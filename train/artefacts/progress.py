"""The progress display: a bar rewritten in place on a terminal, the plain
progress lines everywhere else (logs, CI, a pipe).

Every line a run reports goes through one `Progress` (build.run makes it),
so a message (a validation, a warning) first ends the bar's line instead of
landing in the middle of it. The bar moves once per compiled chunk: the
host sees no step in between (train/loop/compiled.py).
"""

import os
import sys
from typing import Callable, NamedTuple, Optional, TextIO

BAR_CELLS = 30  # Keras's width, shrunk to fit a narrower terminal
MIN_BAR_CELLS = 8  # narrower, a bar says nothing: it goes
# Room kept after the bar for the numbers, as wide as they usually get:
# " 9999 img/s loss 0.0000 acc 0.0000 lr 1.0e-03 eta 12m03s".
TAIL_WIDTH = 56
DEFAULT_COLUMNS = 80  # a terminal that does not say (a fresh pty says 0)


def duration(seconds: float) -> str:
  """45s, 12m03s, 2h05m: a duration for progress lines."""
  seconds = int(round(seconds))
  if seconds < 60:
    return f"{seconds}s"
  if seconds < 3600:
    return f"{seconds // 60}m{seconds % 60:02d}s"
  return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Point(NamedTuple):
  """Where a run is after a compiled chunk: its step and the chunk's
  means."""
  step: int
  total_steps: int
  epoch: float
  loss: float
  accuracy: float
  learning_rate: float
  images_per_second: float
  # None after the process's first chunk, whose time includes tracing.
  seconds_per_epoch: Optional[float] = None
  eta_seconds: Optional[float] = None
  skipped_images: float = 0.0

  def line(self) -> str:
    """The plain progress line (logs and tests grep it: keep it stable)."""
    return (
        f"step {self.step}/{self.total_steps} epoch {self.epoch:.2f} loss "
        f"{self.loss:.4f} acc {self.accuracy:.4f} lr "
        f"{self.learning_rate:.2e} {self.images_per_second:.1f} img/s "
        + (f"{duration(self.seconds_per_epoch)}/epoch eta "
           f"{duration(self.eta_seconds)}" if self.eta_seconds is not None
           else "(tracing included; eta from the next line)")
        + (f" ({self.skipped_images:.0f} unreadable images skipped)"
           if self.skipped_images else ""))

  def bar(self, columns: int) -> str:
    """Keras's bar and the chunk's numbers (the epoch is left to the plain
    line) in at most `columns` - 1 characters: a full line would wrap, and
    `\\r` then returns to the wrapped half."""
    digits = len(str(self.total_steps))
    head = f"{self.step:>{digits}}/{self.total_steps}"
    tail = (f" {self.images_per_second:.0f} img/s loss {self.loss:.4f} "
            f"acc {self.accuracy:.4f} lr {self.learning_rate:.1e}"
            + (f" eta {duration(self.eta_seconds)}"
               if self.eta_seconds is not None else "")
            + (f" {self.skipped_images:.0f} skipped"
               if self.skipped_images else ""))
    # The bar's width stays put while the numbers' widths change.
    cells = min(BAR_CELLS, columns - 1 - len(head) - 3 - TAIL_WIDTH)
    if cells < MIN_BAR_CELLS:
      return (head + tail)[:columns - 1]
    done = cells * self.step // max(self.total_steps, 1)
    arrow = "=" * done if done == cells else "=" * done + ">"
    return f"{head} [{arrow:.<{cells}}]{tail}"[:columns - 1]


class Progress:
  """Shows a run's messages and its progress.

  Messages are lines, through `report`. Progress is a plain line per chunk
  through `report` too, or, on a terminal, one bar rewritten in place with
  `\\r` (padded with spaces over a longer previous bar, no terminal
  codes); a message ends the bar's line first, so the last bar stays above
  it and the next chunk starts a new one.

  Args:
    report: Receives each line.
    terminal: The terminal to draw the bar on, the one `report` writes to;
      None: no bar, lines only.
  """

  def __init__(self, report: Callable[[str], None] = print,
               terminal: Optional[TextIO] = None):
    self.report, self.terminal = report, terminal
    self._drawn = 0  # characters of the bar on the current line (0: none)

  @classmethod
  def of(cls, report: Callable[[str], None]) -> "Progress":
    """The display for a report callable: `report` itself when it is one;
    for `print`, a bar when stdout is a terminal; lines for the rest."""
    if isinstance(report, Progress):
      return report
    terminal = sys.stdout if report is print and sys.stdout.isatty() else None
    return cls(report, terminal)

  def __call__(self, line: str) -> None:
    """Reports a message on a line of its own."""
    self.end_bar()
    self.report(line)

  def show(self, point: Point) -> None:
    """Shows where the run is: the bar, or a plain line."""
    if self.terminal is None:
      self.report(point.line())
      return
    text = point.bar(self._columns())
    self.terminal.write("\r" + text.ljust(self._drawn))
    self.terminal.flush()
    self._drawn = len(text)

  def end_bar(self) -> None:
    """Ends the bar's line, if one is drawn (before a message, and before
    the run ends: an error's line on stderr then starts a line too)."""
    if self._drawn:
      self.terminal.write("\n")
      self.terminal.flush()
      self._drawn = 0

  def _columns(self) -> int:
    try:
      columns = os.get_terminal_size(self.terminal.fileno()).columns
    except (OSError, ValueError, AttributeError):
      columns = 0
    return columns or DEFAULT_COLUMNS
