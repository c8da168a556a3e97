"""Keeps image decoders' chatter off the terminal.

libjpeg and libpng print their complaints about a damaged file ("Corrupt
JPEG data ...", "Improper call to JPEG library ...", "libpng error ...")
straight to file descriptor 2, beneath TensorFlow and Python. The input
pipeline already names a damaged file in one line (or skips and counts it),
so these lines would only bury that line. While the `with` block runs, fd 2
goes through a pipe; a thread drops the decoder lines and passes every other
byte on to the real stderr, so tracebacks and TensorFlow's own errors still
show.
"""

import os
import re
import threading

NOISE = re.compile(rb"^(Corrupt JPEG data|Improper call to JPEG library|"
                   rb"Premature end of JPEG file|Invalid JPEG file structure|"
                   rb"Not a JPEG file|Unsupported marker type|"
                   rb"Bogus marker length|libpng (error|warning))")


class DecoderChatterFilter:
  """Context manager: fd 2 without the image decoders' lines."""

  def __enter__(self) -> "DecoderChatterFilter":
    self._real = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    self._thread = threading.Thread(target=self._pump, args=(read,),
                                    daemon=True)
    self._thread.start()
    return self

  def _pump(self, read: int) -> None:
    with os.fdopen(read, "rb") as pipe:
      for line in pipe:
        if not NOISE.match(line):
          os.write(self._real, line)

  def __exit__(self, *exc) -> None:
    os.dup2(self._real, 2)  # closes the pipe's last writer: the pump ends
    self._thread.join(timeout=5)
    os.close(self._real)
