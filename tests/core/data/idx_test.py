import gzip
import os
import struct

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from core.data import idx
from core.runtime.errors import DataError


class IdxTest(tf.test.TestCase, parameterized.TestCase):

  def path(self, name="f"):
    return os.path.join(self.get_temp_dir(), name)

  @parameterized.parameters(np.uint8, np.int8, np.int16, np.int32,
                            np.float32, np.float64)
  def test_round_trip(self, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    for compress in (False, True):
      idx.write(self.path(), array, compress=compress)
      got = idx.read(self.path())
      self.assertAllEqual(got, array)
      self.assertEqual(got.dtype, np.dtype(dtype))

  def test_reads_known_bytes(self):
    with open(self.path(), "wb") as f:
      f.write(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4]))
    self.assertAllEqual(idx.read(self.path()), [[1, 2], [3, 4]])

  def test_bad_magic(self):
    with open(self.path(), "wb") as f:
      f.write(b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with self.assertRaisesRegex(DataError, r"/f: not an IDX file: bad magic "
                                r"number 0x12340801"):
      idx.read(self.path())

  def test_truncated_raw(self):
    idx.write(self.path(), np.zeros([10, 4], np.uint8))
    with open(self.path(), "r+b") as f:
      f.truncate(20)
    with self.assertRaisesRegex(DataError, r"truncated: dimensions \[10, 4\] "
                                r"need 52 bytes, the file has 20"):
      idx.read(self.path())

  def test_truncated_gzip(self):
    idx.write(self.path(), np.zeros([100, 4], np.uint8), compress=True)
    data = open(self.path(), "rb").read()
    with open(self.path(), "wb") as f:
      f.write(data[:len(data) // 2])
    with self.assertRaisesRegex(DataError, r"/f: (truncated|corrupt gzip)"):
      idx.read(self.path())

  def test_trailing_bytes(self):
    idx.write(self.path(), np.zeros([2, 2], np.uint8))
    with open(self.path(), "ab") as f:
      f.write(b"x")
    with self.assertRaisesRegex(DataError, "has trailing bytes"):
      idx.read(self.path())

  def test_huge_declared_size_refused_without_allocating(self):
    with gzip.open(self.path(), "wb") as f:
      f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2**32 - 1, 2**32 - 1,
                                                 2**32 - 1))
    with self.assertRaisesRegex(DataError, "more than any IDX data set"):
      idx.read(self.path())

  def test_more_dimensions_than_an_array_can_have(self):
    # Found by the fuzzer: 128 dimensions, one of them 0, so no data at all;
    # numpy cannot shape it and raised ValueError instead of DataError.
    with open(self.path(), "wb") as f:
      f.write(bytes([0, 0, 12, 128]) + struct.pack(">3I", 5, 5, 5)
              + bytes(4 * 125))
    with self.assertRaisesRegex(DataError, "declares 128 dimensions; this "
                                "reader takes at most 32"):
      idx.read(self.path())

  def test_missing_file(self):
    with self.assertRaisesRegex(DataError, r"/nope: no such file"):
      idx.read(self.path("nope"))

  def test_directory(self):
    with self.assertRaisesRegex(DataError, "is a directory"):
      idx.read(self.get_temp_dir())

  def test_write_rejects_unknown_dtype(self):
    with self.assertRaisesRegex(ValueError, "`array` must have an IDX dtype"):
      idx.write(self.path(), np.zeros([2], np.complex64))
