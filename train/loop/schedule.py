"""When the outer loop acts, in global steps (`Schedule`), and how long its
steps took (`Timing`), apart from everything the controller does then."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Schedule:
  """When the controller acts, in global steps."""
  total_steps: int
  steps_per_loop: int
  checkpoint_every: int
  eval_every: int
  histogram_every: int = 0  # 0: never
  max_bad_steps: int = 20  # consecutive skipped steps that end the run

  def _next_multiple(self, step: int, every: int) -> int:
    return (step // every + 1) * every

  def next_stop(self, step: int, *extra: int) -> int:
    """The first step after `step` at which the controller must act: the
    end, a chunk's end, a checkpoint, an evaluation, or one of `extra`."""
    return min([self.total_steps,
                self._next_multiple(step, self.steps_per_loop),
                self._next_multiple(step, self.checkpoint_every),
                self._next_multiple(step, self.eval_every),
                *([self._next_multiple(step, self.histogram_every)]
                  if self.histogram_every else []),
                *(s for s in extra if s > step)])

  def histograms_at(self, step: int) -> bool:
    return bool(self.histogram_every) and step % self.histogram_every == 0

  def evaluates_at(self, step: int) -> bool:
    """Every `eval_every` steps and at the end: the final weights are
    always validated (and so can be the best ones --export=best keeps)."""
    return step % self.eval_every == 0 or step == self.total_steps

  def checkpoints_at(self, step: int) -> bool:
    return step % self.checkpoint_every == 0 or step == self.total_steps


@dataclasses.dataclass
class Timing:
  """Steps trained and the seconds they took (evaluations excluded), after
  the process's first chunk: that one traces the step and fills the input
  pipeline (about a minute of make train's 50-step window), and counted in,
  it put make train's first ETA at 2 h 19 min and its ETA at step 1,000
  17 % high (32.5 against 27.9 minutes)."""
  steps: int = 0
  seconds: float = 0.0
  first_done: bool = False

  def __iadd__(self, chunk):
    if self.first_done:
      self.steps += chunk[0]
      self.seconds += chunk[1]
    self.first_done = self.first_done or chunk[0] > 0
    return self
