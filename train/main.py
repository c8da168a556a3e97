"""Command line: `python -m train.main --strategy=mirrored ...`.

Defines the flags (generated from TrainConfig, train/options.py), builds one
frozen TrainConfig and calls train.build.run. Every failure the user can act
on ends in one line on stderr and its own exit code (core/errors.py).
"""

import os
import sys
from typing import Sequence

# TensorFlow's C++ start-up chatter (CPU features, oneDNN) buries progress.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from core import errors
from train import cli
from train import kernels
from train import native_stderr
from train import options

FLAGS = flags.FLAGS
options.define(FLAGS)


def main(argv: Sequence[str]) -> int:
  if len(argv) > 1:
    return cli.fail(f"unexpected arguments {' '.join(argv[1:])}; every option "
                 "is a --flag (see --helpfull).", errors.EXIT_USAGE)
  try:
    config = options.config(FLAGS)
    kernels.choose(config.deterministic)  # before TensorFlow is imported
    native_stderr.import_tensorflow_quietly()
    from train import build  # pylint: disable=g-import-not-at-top
    with native_stderr.DecoderChatterFilter():
      build.run(config)
  except errors.EngineError as e:
    cli.fail(str(e), e.exit_code)
    if isinstance(e, errors.ClusterError) or FLAGS.strategy == "multi_worker":
      # A multi-worker run that ends early skips TF's shutdown: with a peer
      # lost it would wait in its shutdown barrier for the dead peer, and
      # with the peers stopping too (preemption) its coordination agent's
      # heartbeat logs C++ errors under the one line once the chief is gone.
      # Everything this process wrote (checkpoints, events) is closed.
      sys.stdout.flush()
      sys.stderr.flush()
      os._exit(e.exit_code)  # pylint: disable=protected-access
    return e.exit_code
  return 0


def run() -> None:
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)
  app.run(lambda argv: sys.exit(main(argv)), flags_parser=cli.parse_flags)


if __name__ == "__main__":
  run()
