"""Hostile IDX files: 1,000+ mutated files through the reader, and a few
through the command line. Each must end in DataError (the reader's one clear
message) or a valid array: never another exception, a hang, or an allocation
sized by the header alone."""

import gzip
import os
import struct
import tempfile

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings, strategies as st

from core.data import idx
from core.runtime.errors import DataError
from tests import helpers


def valid_bytes(dims, code=8):
  body = bytes(int(np.prod(dims)) * {8: 1, 9: 1, 11: 2, 12: 4, 13: 4,
                                       14: 8}[code])
  return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I",
                                                      *dims) + body


@st.composite
def mutated(draw):
  dims = draw(st.lists(st.integers(0, 6), min_size=1, max_size=3))
  data = bytearray(valid_bytes(dims, draw(st.sampled_from([8, 9, 11, 12, 13,
                                                           14]))))
  kind = draw(st.sampled_from(["flip", "truncate", "huge", "append",
                               "magic", "ndim", "random", "count"]))
  if kind == "flip" and data:
    for _ in range(draw(st.integers(1, 4))):
      i = draw(st.integers(0, len(data) - 1))
      data[i] = draw(st.integers(0, 255))
  elif kind == "truncate":
    data = data[:draw(st.integers(0, len(data)))]
  elif kind == "huge":
    i = draw(st.integers(0, len(dims) - 1))
    data[4 + 4 * i:8 + 4 * i] = struct.pack(">I", draw(st.integers(
        2**20, 2**32 - 1)))
  elif kind == "append":
    data += draw(st.binary(min_size=1, max_size=16))
  elif kind == "magic":
    data[:2] = draw(st.binary(min_size=2, max_size=2))
  elif kind == "ndim":
    data[3] = draw(st.integers(0, 255))
  elif kind == "random":
    data = bytearray(draw(st.binary(max_size=64)))
  elif kind == "count":  # as a label/image mismatch: one extra element
    data[4:8] = struct.pack(">I", dims[0] + 1)
  return bytes(data), draw(st.booleans())


class IdxFuzzTest(tf.test.TestCase):

  @settings(max_examples=1200, deadline=None, derandomize=True,
            suppress_health_check=list(HealthCheck))
  @given(mutated())
  def test_reader_fails_only_with_data_error(self, case):
    data, compress = case
    fd, path = tempfile.mkstemp()
    with os.fdopen(fd, "wb") as f:
      f.write(gzip.compress(data) if compress else data)
    try:
      array = idx.read(path)
      self.assertIsInstance(array, np.ndarray)
      self.assertLessEqual(array.nbytes, len(data))
    except DataError as e:
      self.assertIn(path, str(e))
    finally:
      os.remove(path)

  def test_gzip_bomb_header_is_refused_before_reading(self):
    path = os.path.join(self.get_temp_dir(), "bomb.gz")
    with gzip.open(path, "wb") as f:
      f.write(bytes([0, 0, 8, 2]) + struct.pack(">2I", 2**31, 2**31))
    with self.assertRaisesRegex(DataError, "more than any IDX data set"):
      idx.read(path)

  def test_command_line_on_mutated_files(self):
    rng = np.random.RandomState(7)
    for trial in range(3):
      folder = os.path.join(self.get_temp_dir(), f"fuzz{trial}")
      os.makedirs(folder)
      for stem, n in (("train-images-idx3-ubyte", [8, 28, 28]),
                      ("t10k-images-idx3-ubyte", [4, 28, 28]),
                      ("train-labels-idx1-ubyte", [8]),
                      ("t10k-labels-idx1-ubyte", [4])):
        data = bytearray(valid_bytes(n))
        if stem.startswith("train-images"):
          for i in rng.randint(0, 16, size=3):
            data[i] = rng.randint(0, 256)
          data = data[:rng.randint(5, len(data))]
        open(os.path.join(folder, stem), "wb").write(bytes(data))
      done = helpers.cli(["--dataset=mnist", f"--data_dir={folder}",
                          f"--model_dir={folder}/run"])
      self.assertEqual(done.returncode, 2, done.stderr)
      self.assertRegex(done.stderr.strip(), r"^error: .*train-images-idx3-"
                       "ubyte: ")
      self.assertNotIn("Traceback", done.stderr)
