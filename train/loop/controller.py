"""The outer loop as one object, in the spirit of Orbit's `Controller`.

It drives a trainer and an evaluator (Orbit's split: train/loop/trainer.py,
train/loop/evaluator.py) over the data, holds the summaries, the checkpointer,
the preemption watcher and the profiler, and owns all I/O; the compiled loops
it calls own none. Each method does one job. The schedule (when to stop a
compiled chunk, evaluate, checkpoint) is a value of its own, `Schedule`
(train/loop/schedule.py), so it can be read and tested apart from everything
else.
"""

import dataclasses
import signal
import time
from typing import Callable, Dict, List, NamedTuple, Optional

from core.data import datasets
from core.runtime.errors import Preempted, TrainingError
from train.artefacts import gallery
from train.artefacts.progress import Point, Progress, duration
from train.loop.evaluator import Evaluation, Evaluator
from train.loop.preemption import PreemptionWatcher, StopVote
from train.loop.profiling import ProfileWindow
from train.loop.schedule import Schedule, Timing
from train.loop.state import Plateau
from train.loop.weights import FINAL, VALIDATION


@dataclasses.dataclass
class Result:
  """What a finished run reports."""
  global_step: int
  test_accuracy: Optional[float]
  test_loss: Optional[float]
  export_path: Optional[str]
  # One entry per validation: step, epoch, the last chunk's training loss
  # and accuracy, the validation loss and accuracy.
  history: List[Dict[str, float]] = dataclasses.field(default_factory=list)


class Outputs(NamedTuple):
  """Where a run writes."""
  summaries: object  # TensorBoard writers (train/loop/summaries.py)
  checkpointer: object  # saves `ckpt-<step>` (core/runtime/checkpointing.py)
  export: Callable[[int], Optional[str]]  # a step's SavedModel: its path
  model_dir: str  # named in messages


class Controller:
  """Trains in compiled chunks, then evaluates, checkpoints and exports."""

  def __init__(self, *, trainer, evaluator: Evaluator, vote: StopVote,
               data: datasets.Splits, schedule: Schedule, outputs: Outputs,
               watcher: PreemptionWatcher, profiler: ProfileWindow,
               plateau: Optional[Plateau] = None,
               report: Callable[[str], None] = print,
               clock: Callable[[], float] = time.perf_counter):
    """Holds a run's parts; `build.py` assembles them from a config.

    Args:
      trainer: Runs update steps (train/loop/trainer.py).
      evaluator: Evaluates splits with a weight set
        (train/loop/evaluator.py).
      vote: The workers' agreement to stop, asked between compiled calls.
      data: The splits and their DatasetInfo.
      schedule: When to stop chunks, evaluate and checkpoint.
      outputs: TensorBoard, the checkpointer, the export.
      watcher: Records SIGTERM/SIGINT/SIGHUP and other stop requests
        (train/loop/preemption.py).
      profiler: The profiler window (train/loop/profiling.py).
      plateau: The validations' record the plateau schedule and early
        stopping decide by (train/loop/state.py); None: neither is on.
      report: Receives each line; a Progress (train/artefacts/progress.py)
        draws a bar on a terminal, `print` does when stdout is one.
      clock: Seconds, for throughput (a fake in tests).
    """
    self.trainer, self.evaluator, self.vote = trainer, evaluator, vote
    self.weights = evaluator.weights
    self.data, self.schedule = data, schedule
    self.summaries, self.checkpointer, self.export, self.model_dir = outputs
    self.watcher, self.profiler = watcher, profiler
    self.global_batch_size = trainer.feed.batch.global_batch_size
    self.steps_per_epoch = trainer.steps_per_epoch
    self.plateau = plateau
    self.progress, self.clock = Progress.of(report), clock
    # Whether the workers agreed to stop (a signal reached any of them); set
    # by `vote.agree` at each boundary, identically on every worker.
    self.stopping = False
    self.history: List[Dict[str, float]] = []
    self._trained = Timing()  # training steps and seconds, for the ETA
    self._started = None

  def run(self) -> Result:
    """Trains to the end (or resumes there), then tests and exports.

    Raises:
      TrainingError: Training diverged; checkpoints on disk are intact.
      Preempted: SIGTERM/SIGINT/SIGHUP arrived, or the lease could not be
        renewed; a checkpoint was written.
    """
    self._started = self.clock()
    try:
      with self.watcher, self.profiler:
        self.validate_what_a_signal_interrupted()
        self.train_to_end()
        return self.finish()
    finally:
      self.progress.end_bar()
      self.summaries.close()

  def validate_what_a_signal_interrupted(self) -> None:
    """With --export=best, the plateau schedule or early stopping, a run
    resumed at a validation step whose validation a signal interrupted (the
    checkpoint was written without it) runs that validation first and
    saves the step again, so the best weights, the export, the rate and
    the stop equal an uninterrupted run's.

    Raises:
      Preempted: Another signal arrived meanwhile (the checkpoint is intact).
    """
    step = self.trainer.global_step
    missed = self.weights.validation_missed(step) or (
        self.plateau is not None and self.plateau.validation_missed(step))
    if not (step and self.schedule.evaluates_at(step)
            and self.data.validation.num_examples and missed):
      return
    self.progress(f"validating step {step} first: a signal interrupted its "
                "validation before the checkpoint")
    if self.maybe_evaluate(step) is None or self.stopping:
      raise Preempted(f"preempted by {self._cause()} at step {step}: "
                      f"checkpoint saved in {self.model_dir}; run the same "
                      "command to resume.")
    self.checkpointer.save(step)
    self.summaries.flush()

  def train_to_end(self) -> None:
    """Runs compiled chunks up to the last step, or until early stopping
    ends training, acting between them."""
    step = self.trainer.global_step
    if self.trained(step):
      return
    iterator = self.trainer.iterator(self.data.train, step)
    while not self.trained(step):
      stop = self.schedule.next_stop(step,
                                     *self.profiler.boundaries(step))
      values = self.run_chunk(iterator, step, stop)
      self.stopping = self.vote.agree(self.watcher.requested)
      if self.trainer.global_step > step:  # a preemption may end it at once
        step = self.trainer.global_step
        self.write_train_summaries(step, values)
        self.check_divergence()
        self.record_history(step, values, self.maybe_evaluate(step))
      self.maybe_checkpoint(step)
      self.check_preemption(step)

  def trained(self, step: int) -> bool:
    """Whether training is over: the last step, or early stopping."""
    return step >= self.schedule.total_steps or (
        self.plateau is not None and self.plateau.stopped)

  def run_chunk(self, iterator, step: int, stop: int) -> Dict[str, float]:
    """Runs the steps [step, stop) in one compiled call, profiled where the
    profiler window says; returns their metrics and images/s."""
    self.profiler.before_chunk(step)
    started = self.clock()
    values = self.trainer.train(iterator, stop - step)
    elapsed = self.clock() - started
    done = self.trainer.global_step  # before `stop` if preempted
    self.profiler.after_chunk(done)
    values["images_per_second"] = ((done - step) * self.global_batch_size
                                   / max(elapsed, 1e-9))
    self._trained += (done - step, elapsed)
    if self._trained.steps:
      per_step = self._trained.seconds / self._trained.steps
      values["seconds_per_epoch"] = self.steps_per_epoch * per_step
      values["eta_seconds"] = (self.schedule.total_steps - done) * per_step
    return values

  def write_train_summaries(self, step: int, values: Dict[str, float]):
    """Writes the chunk's scalars and shows its progress."""
    self.summaries.scalars("train", values, step)
    if self.schedule.histograms_at(step):
      self.summaries.histograms("train", self.trainer.histograms(), step)
    self.progress.show(Point(
        step, self.schedule.total_steps, step / self.steps_per_epoch,
        values["loss/total"], values["accuracy/main"],
        values["learning_rate"], values["images_per_second"],
        values.get("seconds_per_epoch"), values.get("eta_seconds"),
        values.get("skipped_images", 0.0)))

  def check_divergence(self) -> None:
    """Ends the run once too many consecutive steps were skipped.

    Raises:
      TrainingError: Naming the last bad step and the fix.
    """
    bad, last = self.trainer.divergence()
    if bad >= self.schedule.max_bad_steps:
      self.summaries.flush()
      raise TrainingError(
          f"training diverged: {bad} consecutive steps up to step {last} "
          f"had a non-finite loss or gradient and were skipped; lower "
          f"--learning_rate (checkpoints in {self.model_dir} hold only "
          "finite weights).")

  def maybe_evaluate(self, step: int) -> Optional[Evaluation]:
    """Validates when the schedule says so and there is a validation set;
    not when a preemption is pending (the run is about to stop)."""
    if (self.schedule.evaluates_at(step) and self.data.validation.num_examples
        and not self.stopping):
      result = self.evaluate(self.data.validation, "eval", step)
      if not self.stopping:
        self.write_misclassified(step)
        self.weights.offer_best(result.values["accuracy/main"], step)
        self.judge_plateau(result.values["accuracy/main"], step)
      return result
    return None

  def judge_plateau(self, accuracy: float, step: int) -> None:
    """Counts the validation toward the plateau schedule and early
    stopping (train/loop/state.Plateau) and says when the rate drops."""
    if self.plateau is None:
      return
    if self.plateau.record(accuracy, step):
      self.progress(
          f"learning rate x{self.plateau.factor:g} at step {step} (now "
          f"{float(self.plateau.rate_scale.numpy()):.3g} of the schedule's): "
          f"{self._stalled()}")

  def _stalled(self) -> str:
    stalls = int(self.plateau.stalls.numpy())
    accuracy, step = self.plateau.best_validation()  # one was recorded
    return (f"{stalls} validation{'s' * (stalls != 1)} without an "
            f"accuracy above {accuracy:.4f} (step {step})")

  def write_misclassified(self, step: int) -> None:
    """Writes the grid of misclassified validation images (true and
    predicted names under each), tag `misclassified`; none if the model
    gets the sample right. Not computed where nothing is written (the
    other workers of a multi-worker run)."""
    if not self.summaries.enabled:
      return
    images, labels, predicted = self.evaluator.misclassified(
        self.data.validation)
    if len(images):
      names = self.data.info.class_names
      self.summaries.image("eval", "misclassified", gallery.grid(
          images, [names[i] for i in labels], [names[i] for i in predicted]),
                           step)

  def record_history(self, step: int, values: Dict[str, float],
                     evaluation: Optional[Evaluation]) -> None:
    """Adds a validation to the run's history (Result.history)."""
    if evaluation is not None and not self.stopping:
      self.history.append({
          "step": step, "epoch": step / self.steps_per_epoch,
          "train_loss": values["loss/total"],
          "train_accuracy": values["accuracy/main"],
          "validation_loss": evaluation.values["loss/main"],
          "validation_accuracy": evaluation.values["accuracy/main"]})

  def maybe_checkpoint(self, step: int) -> None:
    """Saves when the schedule says so, at the end (early stopping's too),
    or before a preemption exit, then flushes TensorBoard so logs and checkpoint agree."""
    if (self.schedule.checkpoints_at(step) or self.stopping
        or self.trained(step)):
      self.checkpointer.save(step)
      self.summaries.flush()

  def check_preemption(self, step: int) -> None:
    """Ends the run after the checkpoint if a signal arrived.

    Raises:
      Preempted: Naming the signal, the step and how to resume.
    """
    if self.stopping and step < self.schedule.total_steps:
      raise Preempted(f"preempted by {self._cause()} at step {step}: "
                      f"checkpoint saved in {self.model_dir}; run the same "
                      "command to resume.")

  def _cause(self) -> str:
    if self.watcher.reason is not None:
      return f"a lost lease ({self.watcher.reason.rstrip('.')})"
    if self.watcher.requested:
      return signal.Signals(self.watcher.signal).name
    return "a signal to another worker"

  def evaluate(self, split: datasets.Split, name: str, step: int, *,
               quiet: bool = False, purpose: str = VALIDATION) -> Evaluation:
    """Evaluates `split` with the weights `purpose` uses (WeightSets),
    writes its scalars and confusion matrix under `name`, and reports one
    line unless `quiet`."""
    result = self.evaluator.evaluate(split, purpose)
    self.stopping = self.vote.agree(self.watcher.requested)
    if self.stopping:  # perhaps stopped part-way: not a result to show
      return result
    self.summaries.scalars(name, result.values, step)
    self.summaries.confusion(name, result.confusion,
                             self.data.info.class_names, step)
    if result.skipped_images:
      self.summaries.scalars(name, {"skipped_images":
                                    result.skipped_images}, step)
    if not quiet:
      skipped = (f", {result.skipped_images} unreadable skipped"
                 if result.skipped_images else "")
      self.progress(f"{name} at step {step}: loss "
                  f"{result.values['loss/main']:.4f} accuracy "
                  f"{result.values['accuracy/main']:.4f} ({result.examples} "
                  f"images{skipped})")
    return result

  def finish(self) -> Result:
    """Tests the final weights (when there is a test split), exports them,
    and reports the last line."""
    step = self.trainer.global_step  # train_to_end() saved this step
    if step < self.schedule.total_steps:  # the one way: early stopping
      self.progress(f"early stopping at step {step}: {self._stalled()}")
    test = (self.evaluate(self.data.test, "test", step, quiet=True,
                          purpose=FINAL)
            if self.data.test.num_examples else None)
    if self.stopping:
      raise Preempted(f"preempted by {self._cause()} before the final test "
                      f"and export at step {step}: training is complete "
                      f"and checkpointed in {self.model_dir}; run the same "
                      "command to test and export.")
    path = self.export(max(step, 1))
    # Every worker waits here for the chief's export, so none reaches TF's
    # exit barrier (which has a shorter timeout) long before the others.
    self.vote.agree(False)
    chosen = self.weights.final_step()  # -1: the last weights
    if path:
      self.progress(f"exported SavedModel to {path}" + (
          f" (the weights of step {chosen}, the best on validation)"
          if chosen >= 0 else ""))
    self.summaries.flush()
    self.progress(self._summary(step))
    if test is None:
      self.progress(f"no test split: final test evaluation skipped (step "
                  f"{step})")
      return Result(step, None, None, path, self.history)
    accuracy, loss = test.values["accuracy/main"], test.values["loss/main"]
    weights = f", the weights of step {chosen}" if 0 <= chosen != step else ""
    self.progress(f"test accuracy {accuracy:.4f} (loss {loss:.4f}, "
                f"{test.examples} images, step {step}{weights})")
    return Result(step, accuracy, loss, path, self.history)

  def _summary(self, step: int) -> str:
    """The run in one line: its best validation and this process's wall
    time. The records a run keeps in its checkpoints (--export=best's, and
    the plateau schedule's or early stopping's) count the validations
    before a resume too; without one, only this process's count."""
    best = [(h["validation_accuracy"], h["step"]) for h in self.history]
    best += [self.weights.best_validation(),
             self.plateau and self.plateau.best_validation()]
    # The highest accuracy; of equals, the earliest step, as the records
    # keep the first.
    best = max((b for b in best if b is not None),
               key=lambda b: (b[0], -b[1]), default=None)
    wall = duration(self.clock() - (self._started or self.clock()))
    if best is None:
      return f"run ended at step {step} after {wall}"
    return (f"run ended at step {step} after {wall}; best validation "
            f"accuracy {best[0]:.4f} at step {best[1]} (epoch "
            f"{best[1] / self.steps_per_epoch:.2f})")

  def announce(self, restored: Optional[int], replicas: int,
               image_size: int) -> None:
    """The first progress line: where the run starts and how it is cut."""
    verb = "resuming at" if restored is not None else "starting at"
    self.progress(f"{verb} step {self.trainer.global_step}/"
                f"{self.schedule.total_steps}: {replicas} replica(s), global "
                f"batch {self.global_batch_size}, {self.steps_per_epoch} "
                f"steps per epoch, image size {image_size}")

