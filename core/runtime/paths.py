"""Paths are paths, not patterns.

TensorFlow's checkpoint reader (and so `tf.saved_model.load`) finds a
checkpoint by globbing its prefix: in a folder named `runs/lr[0.1]` the
pattern `[0.1]` matches `0`, `.` or `1`, never the folder itself, and the
checkpoint "does not exist". `literal` hands TF a path without pattern
characters that leads to the same files (a symbolic link in a private
temporary folder); our own scans escape the folder (`glob.escape`).
"""

import contextlib
import glob
import os
import shutil
import tempfile
from typing import Iterator


def is_pattern(path: str) -> bool:
  """Whether TF's glob would read `path` as other than itself."""
  return glob.has_magic(path)


@contextlib.contextmanager
def literal(path: str) -> Iterator[str]:
  """`path`, or while the context lasts a pattern-free path to the same
  file or folder (local file systems; others get `path` unchanged)."""
  folder = os.path.dirname(path)
  if not is_pattern(folder) or "://" in path:
    yield path
    return
  scratch = tempfile.mkdtemp(prefix="literal-")
  try:
    os.symlink(os.path.abspath(folder), os.path.join(scratch, "d"))
    yield os.path.join(scratch, "d", os.path.basename(path))
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


def size(path: str) -> int:
  """The size in bytes of the file at `path` (local or any file system
  TensorFlow reads: gs://, s3://, hdfs://)."""
  if "://" not in path:
    return os.path.getsize(path)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.io.gfile.stat(path).length
