"""Evaluates a trained model again: `python -m train.evaluate`.

  python -m train.evaluate --model_dir=runs/x                 # newest checkpoint, test split
  python -m train.evaluate --model_dir=runs/x --checkpoint_step=2000 --split=validation
  python -m train.evaluate --saved_model=runs/x/export/4000 --model_dir=runs/x
  python -m train.evaluate --model_dir=runs/x --data_dir=/other/data --output=json
  python -m train.evaluate --model_dir=runs/x --test_crops=144 # the paper's 144 crops

The run's data set and settings come from its manifest.json, so the split is
exactly the one the run used (`--data_dir` points at another copy or another
set of the same kind). A checkpoint is evaluated by the engine's own compiled
evaluation loop, so its test accuracy is the training run's final line; a
SavedModel through its serving signature (the path TF Serving takes). Prints
loss, accuracy, top-5, per-class accuracy and the confusion matrix, or one
JSON object. Its flags come from the option table EvaluateOptions; the
start-up, one-line errors and exit codes are train.main's
(train/startup/cli.py).
"""

import dataclasses
import json
from typing import List, Optional

from core.runtime.errors import InputError
from train.startup.config import TEST_CROPS, option
from train.artefacts.report import Report, render, run_config
from train.startup import cli

SPLITS = ("train", "validation", "test")
OUTPUTS = ("text", "json")


@dataclasses.dataclass(frozen=True)
class EvaluateOptions:
  """train.evaluate's option table: each field is the flag of its name.

  Raises (on creation):
    InputError: Without --model_dir.
  """
  model_dir: Optional[str] = option(
      None, "The training run's folder (its manifest.json and "
      "checkpoints).")
  checkpoint_step: Optional[int] = option(
      None, "Evaluate ckpt-N (default: the newest).")
  saved_model: Optional[str] = option(
      None, "Evaluate this exported SavedModel version instead of a "
      "checkpoint (data from --model_dir's manifest).")
  split: str = option("test", "The split to evaluate.", choices=SPLITS)
  data_dir: Optional[str] = option(
      None, "Another folder of the run's data set kind (default: the run's "
      "own).")
  output: str = option("text", "A table, or one JSON object for scripts.",
                       choices=OUTPUTS)
  test_crops: Optional[str] = option(
      None, "Score each image by this many crops, averaged in probability "
      "(layers/crops.py; default: the run's --test_crops). A checkpoint "
      "only: a SavedModel scores as it was exported.", choices=TEST_CROPS)

  def __post_init__(self):
    if not self.model_dir:
      raise InputError("--model_dir is required (the run whose data and "
                       "settings to use).")
    if self.saved_model and self.test_crops:
      raise InputError("--test_crops applies to a checkpoint; a SavedModel "
                       "scores each image as it was exported (drop "
                       "--test_crops or --saved_model).")


def evaluate_checkpoint(model_dir: str, *, step: Optional[int] = None,
                        split: str = "test", data_dir: Optional[str] = None,
                        test_crops: Optional[str] = None) -> Report:
  """Evaluates ckpt-`step` (default: newest) of a run on one of its splits,
  with `test_crops` crops per image (default: the run's).

  Raises:
    InputError: No such run, checkpoint or split (one line).
  """
  config = run_config(model_dir, data_dir=data_dir, model_dir=model_dir,
                      test_crops=test_crops)
  if config.strategy == "multi_worker":  # evaluated on this machine alone
    config = dataclasses.replace(config, strategy="one_device")
  cli.load_tensorflow(config.deterministic)  # the kernels the run used
  from train.assembly import offline  # pylint: disable=g-import-not-at-top
  return offline.evaluate_checkpoint(config, model_dir, step, split)


def evaluate_saved_model(path: str, model_dir: str, *, split: str = "test",
                         data_dir: Optional[str] = None) -> Report:
  """Evaluates an exported SavedModel on a split of `model_dir`'s data.

  Raises:
    InputError: No such SavedModel, run or split (one line).
  """
  config = run_config(model_dir, data_dir=data_dir, model_dir=model_dir)
  cli.load_tensorflow(config.deterministic)
  from train.assembly import offline  # pylint: disable=g-import-not-at-top
  return offline.evaluate_saved_model(config, path, split)


def evaluate(settings: EvaluateOptions, args: List[str]) -> int:
  """The command: evaluates as `settings` say and prints the report."""
  del args  # the command takes none (cli.run refuses them)
  if settings.saved_model:
    report = evaluate_saved_model(settings.saved_model, settings.model_dir,
                                  split=settings.split,
                                  data_dir=settings.data_dir)
  else:
    report = evaluate_checkpoint(settings.model_dir,
                                 step=settings.checkpoint_step,
                                 split=settings.split,
                                 data_dir=settings.data_dir,
                                 test_crops=settings.test_crops)
  print(json.dumps(report.as_dict()) if settings.output == "json"
        else render(report))
  return 0


if __name__ == "__main__":
  cli.run(EvaluateOptions, evaluate)
