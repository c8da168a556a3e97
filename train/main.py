"""Command line: `python -m train.main --strategy=mirrored ...`.

Its option table is RunConfig (train/startup/config.py): the flags are
generated from it, parsed into one frozen config and handed to the one
assembler, train.assembly.build.run. Every failure the user can act on ends
in one line on stderr and its own exit code (core/runtime/errors.py).
"""

from train.startup.config import RunConfig
from train.startup import cli
from train.startup import native_stderr


def train(config: RunConfig, args) -> int:
  del args  # the command takes none (cli.run refuses them)
  cli.load_tensorflow(config.deterministic)
  from train.assembly import build  # pylint: disable=g-import-not-at-top
  with native_stderr.NativeChatterFilter():
    build.run(config)
  return 0


def run() -> None:
  # A multi-worker run that succeeds ends through TF's shutdown, which waits
  # for its peers; one that ends early skips it (train/startup/cli.leave),
  # as every other run does: with a peer lost its shutdown barrier would
  # wait for the dead peer, and with the peers stopping too (preemption)
  # its coordination agent's heartbeat would log C++ errors under the one
  # line once the chief is gone.
  cli.run(RunConfig, train,
          needs_teardown=lambda config: config.strategy == "multi_worker")


if __name__ == "__main__":
  run()
