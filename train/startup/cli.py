"""The one start-up of every command (train.main, train.evaluate,
train.predict): flags from the command's option table, absl's parser and
the table's validation turned into one `error: ...` line, TensorFlow loaded
quietly with the chosen kernels, and every EngineError one line with its
exit code (core/runtime/errors.py)."""

import atexit
import functools
import os
import sys
from typing import Any, Callable, List, Optional, Type

from absl import app
from absl import flags

from core.runtime import errors
from train.startup import native_stderr
from train.startup import options

# A command's work: (its validated options, its positional arguments) -> the
# exit code.
Body = Callable[[Any, List[str]], int]


class OutlivingOutput:
  """A stream whose reader may go first: a write that fails (the pipe
  closed by `train.launch` killed or `| head`, EIO from a terminal that
  hung up, ENOSPC from a log on a full disk) drops this and every later
  line instead of raising in the middle of training, where it would end
  the run without its checkpoint. A closed stdout (`>&-`, None in Python)
  becomes /dev/null, which also takes descriptor 1, so the next file the
  run opens does not."""

  def __init__(self, stream):
    # pylint: disable-next=consider-using-with
    self._stream = open(os.devnull, "w") if stream is None else stream
    self._closed = False

  def write(self, text: str) -> int:
    if not self._closed:
      try:
        self._stream.write(text)
      except OSError:
        self._closed = True
    return len(text)

  def flush(self) -> None:
    if not self._closed:
      try:
        self._stream.flush()
      except OSError:
        self._closed = True

  def __getattr__(self, name: str):
    return getattr(self._stream, name)


def fail(message: str, code: int = errors.EXIT_USAGE) -> int:
  """Prints `error: message` on stderr; returns `code` for the exit."""
  try:
    print(f"error: {message}", file=sys.stderr, flush=True)
  except (OSError, ValueError):  # stderr gone too (a hung-up terminal, a
    pass                         # full disk, closed): the code tells
  return code


def run(table: Type[Any], body: Body, *, arguments: Optional[str] = None,
        needs_teardown: Callable[[Any], bool] = lambda settings: False
        ) -> None:
  """Runs a command and exits with its code; never returns.

  Args:
    table: The command's option table (a frozen dataclass of `option`
      fields): its fields are the flags, its __post_init__ the validation.
    body: The command's work, given the validated table and the positional
      arguments; returns the exit code.
    arguments: What one positional argument is ("PNG, JPEG or IDX file
      to classify"), for the line that asks for one; None for a command
      that takes none.
    needs_teardown: Whether these options' run, when it succeeds, ends
      through the teardown `leave` skips (train.main's multi-worker runs).
  """
  # TensorFlow's C++ start-up chatter (CPU features, oneDNN) buries output.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.stdout = OutlivingOutput(sys.stdout)
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)
  options.define(flags.FLAGS, table)

  def main(argv: List[str]) -> int:
    args = argv[1:]
    wrong = _wrong_arguments(args, arguments)
    if wrong:
      return fail(wrong)
    settings = None
    try:
      settings = options.config(flags.FLAGS, table)
      code = body(settings, args)
    except errors.EngineError as e:
      code = fail(str(e), e.exit_code)
    leave(code, teardown=code == 0 and needs_teardown(settings))

  app.run(main, flags_parser=functools.partial(parse_flags, table=table,
                                               arguments=arguments))


def _wrong_arguments(args: List[str], arguments: Optional[str]
                     ) -> Optional[str]:
  """What is wrong with the positional `args` of a command that takes
  `arguments` (run's), or None."""
  if args and arguments is None:
    return (f"unexpected arguments {' '.join(args)}; every option is a "
            "--flag (see --helpfull).")
  if not args and arguments is not None:
    return f"name at least one {arguments}."
  return None


def leave(code: int, *, teardown: bool = False) -> None:
  """Ends the process with `code`. Once TensorFlow is loaded, without the
  interpreter's teardown, where TF's runtime spends about 1.2 s of every
  command here (measured: the last line to the exit, 1.1-1.4 s against
  0.05 s) on nothing a command keeps: every file it writes (checkpoints,
  summaries, exports, the run lock or lease, the manifest) is closed by
  then. Python's exit handlers still run (TF's remove AutoGraph's
  temporary files). `teardown`: through it all the same."""
  if teardown or "tensorflow" not in sys.modules:
    sys.exit(code)
  atexit._run_exitfuncs()  # pylint: disable=protected-access
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except (OSError, ValueError):  # a reader gone, a full disk, closed
      pass
  os._exit(code)  # pylint: disable=protected-access


def load_tensorflow(deterministic: bool) -> None:
  """Chooses the CPU kernels (train/startup/kernels.py), then imports
  TensorFlow without its C++ start-up lines. Only the first call in a
  process chooses: TensorFlow reads the choice once, at import."""
  from train.startup import kernels  # pylint: disable=g-import-not-at-top
  kernels.choose(deterministic)
  native_stderr.import_tensorflow_quietly()


def _undecodable_flagfile(argv: List[str]) -> str:
  """"<path> " of the first --flagfile that is not UTF-8 ("a flag file "
  when it is nested in another)."""
  for arg in argv[1:]:
    if arg.startswith(("--flagfile=", "-flagfile=")):
      path = arg.split("=", 1)[1]
      try:
        with open(path, "rb") as f:
          f.read().decode("utf-8")
      except UnicodeDecodeError:
        return f"flag file {path} "
      except OSError:
        continue
  return "a flag file "


def parse_flags(argv: List[str], table: Type[Any],
                arguments: Optional[str]) -> List[str]:
  """absl's parser, but a bad flag is one line on stderr and exit 2, and
  so is a missing TensorFlow (it comes from an extra, setup.cfg). With
  --only_check_args (absl's "validate args and exit", which exits 0 before
  the command runs) the positional arguments (`arguments`, as run takes
  it) and `table`'s rules are checked too, the same way; the rules that
  need the devices or the data wait for the run."""
  try:
    rest = flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(fail(f"{e}; see --helpfull."))
  except UnicodeDecodeError as e:  # absl reads flag files as UTF-8
    sys.exit(fail(f"{_undecodable_flagfile(argv)}is not UTF-8 text "
                  f"(byte {e.object[e.start]:#04x} at offset {e.start}); "
                  "save it as UTF-8."))
  native_stderr.require_tensorflow()
  if flags.FLAGS.only_check_args:
    wrong = _wrong_arguments(rest[1:], arguments)
    if wrong:
      sys.exit(fail(wrong))
    try:
      options.config(flags.FLAGS, table)
    except errors.EngineError as e:
      sys.exit(fail(str(e), e.exit_code))
  return rest
