"""Keeps native libraries' chatter off the terminal.

libjpeg and libpng print their complaints about a damaged file ("Corrupt JPEG
data ...", "Improper call to JPEG library ...", "libpng error ...") straight to
file descriptor 2, beneath TensorFlow and Python. The input pipeline already
names a damaged file in one line (or skips and counts it), so these lines would
only bury that line. TensorFlow Lite's int8 calibrator prints its settings
("fully_quantize: 0, inference_type: 6, ...") the same way on every
conversion, under train.convert's one line per file
(train/artefacts/tflite_model.py filters it there). The same holds for the
multi-line reports TF's collectives and coordination service log when a peer
worker is lost: the run ends with one line naming the lost worker
(train/assembly/build.py). While the `with` block
runs, fd 2 goes through a pipe; a thread drops those lines and passes every
other byte on to the real stderr, so tracebacks and TensorFlow's other errors
still show.
"""

import importlib.util
import os
import re
import sys
import threading

from core.runtime import errors

NOISE = re.compile(rb"^(Corrupt JPEG data|Improper call to JPEG library|"
                   rb"Premature end of JPEG file|Invalid JPEG file structure|"
                   rb"Not a JPEG file|Unsupported marker type|"
                   rb"Bogus marker length|libpng (error|warning)|"
                   rb"fully_quantize: \d+, inference_type: )")
# A lost peer's report: a C++ log line from the collectives or the
# coordination service, and its continuation lines up to TF's status payload.
LOST_PEER = re.compile(rb"^(E\d{4} [\d:. ]+\d+ (base_collective_executor|"
                       rb"ring_alg|coordination_service|collective_|"
                       rb"coordination_service_agent)\w*\.cc|WARNING: All "
                       rb"log messages before absl::InitializeLog)")
LOG_HEADER = re.compile(rb"^[EWIF]\d{4} [\d:. ]+\d+ \w+\.cc:\d+\]")


class NativeChatterFilter:
  """Context manager: fd 2 without the decoders', the calibrator's and a
  lost peer's lines."""

  def __init__(self, writers_outlive_errors: bool = True):
    """Args:
      writers_outlive_errors: Whether threads may still write to fd 2 after
        the block ends on an error (the input pipeline's decoders): then fd 2
        stays filtered until the process exits, and what the pump has not
        passed on when it exits is lost. False (a block without such
        threads, TF Lite's conversion): every exit restores fd 2 after the
        pump has passed on all that was written.
    """
    self._filter_past_errors = writers_outlive_errors

  def __enter__(self) -> "NativeChatterFilter":
    self._real = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    self._thread = threading.Thread(target=self._pump, args=(read,),
                                    daemon=True)
    self._thread.start()
    return self

  def _pump(self, read: int) -> None:
    skipping = False
    with os.fdopen(read, "rb") as pipe:
      for line in pipe:
        if skipping and LOG_HEADER.match(line):
          skipping = False
        if LOST_PEER.match(line):
          skipping = not (line.startswith(b"WARNING")
                          or b"[type.googleapis.com/" in line)
          continue
        if skipping:
          skipping = b"[type.googleapis.com/" not in line
          continue
        if not NOISE.match(line):
          os.write(self._real, line)

  def __exit__(self, exc_type, *exc) -> None:
    if exc_type is not None and self._filter_past_errors:
      # The run is ending on an error, while the input pipeline's threads
      # may still be decoding (a prefetched copy of the bad file chatters
      # after the one line). Native fd 2 stays filtered until the process
      # exits; Python's stderr, which prints the one line, goes straight
      # to the terminal.
      sys.stderr.flush()
      sys.stderr = open(os.dup(self._real), "w", buffering=1,  # pylint: disable=consider-using-with
                        encoding="utf-8", errors="backslashreplace")
      return
    os.dup2(self._real, 2)  # closes the pipe's last writer: the pump ends
    self._thread.join(timeout=5)
    os.close(self._real)


def import_tensorflow_quietly() -> None:
  """Imports TensorFlow with fd 2 silenced: its C++ start-up lines (CPU
  features, oneDNN) are written before TF_CPP_MIN_LOG_LEVEL applies and would
  bury a one-line error. Errors raised by the import itself still show; a
  missing TensorFlow is one line and exit 2."""
  require_tensorflow()
  saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  try:
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


def require_tensorflow() -> None:
  """Exits with one line if TensorFlow is missing: it comes from the `cpu`
  or `gpu` extra (setup.cfg), which a plain `pip install -e .` leaves out."""
  if importlib.util.find_spec("tensorflow") is None:
    print("error: TensorFlow is not installed; install the project with "
          "pip install -e '.[cpu]' (or '.[gpu]' on a machine with NVIDIA "
          "GPUs).", file=sys.stderr, flush=True)
    sys.exit(errors.EXIT_USAGE)
