"""Command line: `python -m train.main --strategy=mirrored ...`.

Its option table is TrainConfig (train/assembly/config.py): the flags are
generated from it, parsed into one frozen config and handed to the one
assembler, train.assembly.build.run. Every failure the user can act on ends
in one line on stderr and its own exit code (core/runtime/errors.py).
"""

import os
import sys

from core.runtime import errors
from train.assembly.config import TrainConfig
from train.startup import cli
from train.startup import native_stderr


def train(config: TrainConfig, args) -> int:
  del args  # the command takes none (cli.run refuses them)
  cli.load_tensorflow(config.deterministic)
  from train.assembly import build  # pylint: disable=g-import-not-at-top
  with native_stderr.DecoderChatterFilter():
    build.run(config)
  return 0


def leave_cluster(error: errors.EngineError, config: TrainConfig) -> None:
  """A multi-worker run that ends early skips TF's shutdown: with a peer
  lost it would wait in its shutdown barrier for the dead peer, and with
  the peers stopping too (preemption) its coordination agent's heartbeat
  logs C++ errors under the one line once the chief is gone. Everything
  this process wrote (checkpoints, events) is closed."""
  if isinstance(error, errors.ClusterError) or (
      config.strategy == "multi_worker"):
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(error.exit_code)  # pylint: disable=protected-access


def run() -> None:
  cli.run(TrainConfig, train, on_error=leave_cluster,
          needs_teardown=lambda config: config.strategy == "multi_worker")


if __name__ == "__main__":
  run()
