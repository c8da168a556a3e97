"""Evaluates a trained model again: `python -m train.evaluate`.

  python -m train.evaluate --model_dir=runs/x                 # newest checkpoint, test split
  python -m train.evaluate --model_dir=runs/x --checkpoint_step=2000 --split=validation
  python -m train.evaluate --saved_model=runs/x/export/4000 --model_dir=runs/x
  python -m train.evaluate --model_dir=runs/x --data_dir=/other/data --output=json

The run's data set and settings come from its manifest.json, so the split is
exactly the one the run used (`--data_dir` points at another copy or another
set of the same kind). A checkpoint is evaluated by the engine's own compiled
evaluation loop, so its test accuracy is the training run's final line; a
SavedModel through its serving signature (the path TF Serving takes). Prints
loss, accuracy, top-5, per-class accuracy and the confusion matrix, or one
JSON object. Exit codes and one-line errors as train.main's.
"""

import dataclasses
import json
import os
import sys
from typing import Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from core import errors  # pylint: disable=g-import-not-at-top
from train import cli
from train import kernels
from train import native_stderr
from train.report import Report, render, run_config

SPLITS = ("train", "validation", "test")


def define_flags() -> None:
  """The command's flags (defined only when it runs: the Python API imports
  this module too)."""
  flags.DEFINE_string("model_dir", None, "The training run's folder (its "
                      "manifest.json and checkpoints).")
  flags.DEFINE_integer("checkpoint_step", None, "Evaluate ckpt-N (default: the "
                       "newest).")
  flags.DEFINE_string("saved_model", None, "Evaluate this exported SavedModel "
                      "version instead of a checkpoint (data from --model_dir's "
                      "manifest).")
  flags.DEFINE_enum("split", "test", list(SPLITS), "The split to evaluate.")
  flags.DEFINE_string("data_dir", None, "Another folder of the run's data set "
                      "kind (default: the run's own).")
  flags.DEFINE_enum("output", "text", ["text", "json"], "A table, or one JSON "
                    "object for scripts.")


FLAGS = flags.FLAGS


def evaluate_checkpoint(model_dir: str, *, step: Optional[int] = None,
                        split: str = "test",
                        data_dir: Optional[str] = None) -> Report:
  """Evaluates ckpt-`step` (default: newest) of a run on one of its splits.

  Raises:
    InputError: No such run, checkpoint or split (one line).
  """
  config = run_config(model_dir, data_dir=data_dir, model_dir=model_dir)
  if config.strategy == "multi_worker":  # evaluated on this machine alone
    config = dataclasses.replace(config, strategy="one_device")
  kernels.choose(config.deterministic)  # the kernels the run used
  native_stderr.import_tensorflow_quietly()
  from train import offline  # pylint: disable=g-import-not-at-top
  return offline.evaluate_checkpoint(config, model_dir, step, split)


def evaluate_saved_model(path: str, model_dir: str, *, split: str = "test",
                         data_dir: Optional[str] = None) -> Report:
  """Evaluates an exported SavedModel on a split of `model_dir`'s data.

  Raises:
    InputError: No such SavedModel, run or split (one line).
  """
  config = run_config(model_dir, data_dir=data_dir, model_dir=model_dir)
  kernels.choose(config.deterministic)
  native_stderr.import_tensorflow_quietly()
  from train import offline  # pylint: disable=g-import-not-at-top
  return offline.evaluate_saved_model(config, path, split)


def main(argv: Sequence[str]) -> int:
  if len(argv) > 1:
    return cli.fail(f"unexpected arguments {' '.join(argv[1:])}.", 2)
  if not FLAGS.model_dir:
    return cli.fail("--model_dir is required (the run whose data and settings "
                 "to use).", errors.EXIT_USAGE)
  try:
    if FLAGS.saved_model:
      report = evaluate_saved_model(FLAGS.saved_model, FLAGS.model_dir,
                                    split=FLAGS.split,
                                    data_dir=FLAGS.data_dir)
    else:
      report = evaluate_checkpoint(FLAGS.model_dir,
                                   step=FLAGS.checkpoint_step,
                                   split=FLAGS.split, data_dir=FLAGS.data_dir)
  except errors.EngineError as e:
    return cli.fail(str(e), e.exit_code)
  print(json.dumps(report.as_dict()) if FLAGS.output == "json"
        else render(report))
  return 0


if __name__ == "__main__":
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)
  define_flags()
  app.run(lambda argv: sys.exit(main(argv)), flags_parser=cli.parse_flags)
