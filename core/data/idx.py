"""Reader for IDX files (MNIST's format), raw or gzip-compressed.

Layout (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code, the
number of dimensions, each dimension as a big-endian uint32, then the data in
C order. Every fault names the file and the fault. The reader never allocates
what a header claims before checking it against the bytes actually present,
so a hostile header cannot exhaust memory.
"""

import gzip
import struct
import zlib
from typing import BinaryIO

import numpy as np

from core.runtime import files
from core.runtime.errors import DataError

_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
# Larger than any IDX data set in use (ImageNet-sized files are ~150 GB raw
# and are not IDX); a header beyond this is refused before any read.
MAX_DATA_BYTES = 1 << 34


def read(path: str) -> np.ndarray:
  """Reads an IDX file into a NumPy array in native byte order.

  Args:
    path: The file, raw or gzip-compressed (detected from its first bytes).

  Returns:
    The array, shaped as the header declares.

  Raises:
    DataError: If the file is missing, unreadable, truncated, has trailing
      bytes, a bad magic number or type code, or a corrupt gzip stream.
  """
  try:
    with files.open_read(path) as raw:
      compressed = raw.read(2) == _GZIP_MAGIC
      raw.seek(0)
      if compressed:
        with gzip.GzipFile(fileobj=raw) as stream:  # type: ignore
          return _parse(stream, path, size=None)
      return _parse(raw, path, size=raw.size())  # type: ignore
  except DataError:
    raise
  except FileNotFoundError:
    raise DataError(f"{path}: no such file.") from None
  except IsADirectoryError:
    raise DataError(f"{path}: is a directory, not an IDX file.") from None
  except PermissionError:
    raise DataError(f"{path}: permission denied.") from None
  except (EOFError, zlib.error, gzip.BadGzipFile) as e:
    raise DataError(f"{path}: corrupt gzip stream ({e}).") from None
  except OSError as e:
    raise DataError(f"{path}: cannot be read ({e.strerror or e}).") from None


_MAX_NDIM = 32


def _read_exact(stream: BinaryIO, n: int, path: str, what: str) -> bytes:
  """Reads exactly n bytes in bounded chunks; raises if the stream ends."""
  parts, left = [], n
  while left:
    chunk = stream.read(min(left, _CHUNK))
    if not chunk:
      raise DataError(f"{path}: truncated: {what} needs {n} bytes, "
                      f"the file holds {n - left}.")
    parts.append(chunk)
    left -= len(chunk)
  return b"".join(parts)


def _parse(stream: BinaryIO, path: str, size) -> np.ndarray:
  magic = _read_exact(stream, 4, path, "the magic number")
  if magic[0] != 0 or magic[1] != 0 or magic[2] not in _TYPES:
    raise DataError(
        f"{path}: not an IDX file: bad magic number 0x{magic.hex()} "
        "(expected 0x0000 then a type code such as 08 and a dimension count).")
  dtype, ndim = _TYPES[magic[2]], magic[3]
  if ndim == 0:
    raise DataError(f"{path}: IDX header declares 0 dimensions.")
  if ndim > _MAX_NDIM:  # numpy arrays have at most 64 (older numpy: 32)
    raise DataError(f"{path}: IDX header declares {ndim} dimensions; "
                    f"this reader takes at most {_MAX_NDIM} (MNIST's files "
                    "have 1 or 3).")
  dims = struct.unpack(f">{ndim}I", _read_exact(stream, 4 * ndim, path,
                                                "the dimensions"))
  count = 1
  for d in dims:
    count *= d
  nbytes = count * dtype.itemsize
  header = 4 + 4 * ndim
  if nbytes > MAX_DATA_BYTES:
    raise DataError(f"{path}: header declares dimensions {list(dims)} "
                    f"({nbytes} bytes), more than any IDX data set.")
  if size is not None and size != header + nbytes:
    fault = "truncated" if size < header + nbytes else "has trailing bytes"
    raise DataError(f"{path}: {fault}: dimensions {list(dims)} need "
                    f"{header + nbytes} bytes, the file has {size}.")
  data = _read_exact(stream, nbytes, path, f"dimensions {list(dims)}")
  if stream.read(1):
    raise DataError(f"{path}: has trailing bytes after the data that "
                    f"dimensions {list(dims)} declare.")
  return np.frombuffer(data, dtype=dtype).reshape(dims).astype(
      dtype.newbyteorder("="))


def write(path: str, array: np.ndarray, *, compress: bool = False) -> None:
  """Writes `array` as an IDX file (used by tests and tools).

  Args:
    path: Destination.
    array: uint8, int8, int16, int32, float32 or float64 data.
    compress: Write gzip instead of raw bytes.

  Raises:
    ValueError: If the dtype has no IDX type code.
  """
  codes = {np.dtype(v).newbyteorder("="): k for k, v in _TYPES.items()}
  native = np.dtype(array.dtype).newbyteorder("=")
  if native not in codes:
    raise ValueError(f"`array` must have an IDX dtype; received dtype="
                     f"{array.dtype}.")
  header = bytes([0, 0, codes[native], array.ndim]) + struct.pack(
      f">{array.ndim}I", *array.shape)
  body = array.astype(_TYPES[codes[native]]).tobytes()
  opener = gzip.open if compress else open
  with opener(path, "wb") as f:
    f.write(header + body)
