"""The training engine: configuration, step, loops, summaries and export.

The Python API, for notebooks and scripts (the command-line tools call the
same functions; importing this package does not load TensorFlow):

  import train
  from train import evaluate, predict
  result = train.fit(model_dir="runs/nb", dataset="fashion_mnist",
                     image_size=28, epochs=3, num_cpu_devices=2)
  result.test_accuracy, result.history[-1]["validation_accuracy"]
  report = evaluate.evaluate_checkpoint("runs/nb", split="validation")
  report = evaluate.evaluate_saved_model(result.export_path, "runs/nb")
  rows = predict.predict(result.export_path, ["shoe.png"], top_k=3)

Failures raise core.runtime.errors exceptions (InputError, Preempted, ...)
with the same one-line messages the commands print.
"""

import dataclasses
from typing import Callable


def fit(config=None, *, report: Callable[[str], None] = print, **options):
  """Trains (or resumes) a run; returns train.loop.controller.Result: the final
  step, test accuracy and loss, the export's path and `history`, one entry
  per validation this call ran (step, epoch, train and validation loss and
  accuracy).

  Args:
    config: A train.startup.config.RunConfig, or None to build one from
      `options`.
    report: Receives each progress line (default: print).
    **options: RunConfig fields (the command line's flags), applied on top
      of `config`.
  """
  # pylint: disable-next=g-import-not-at-top
  from train.startup.config import RunConfig
  config = (RunConfig(**options) if config is None
            else dataclasses.replace(config, **options))
  from train.startup import kernels  # pylint: disable=g-import-not-at-top
  kernels.choose(config.deterministic)  # only effective before TF's import
  from train.assembly import build  # pylint: disable=g-import-not-at-top
  return build.run(config, report=report)
