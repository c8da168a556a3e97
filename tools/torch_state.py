"""Reads a PyTorch state-dict file (`torch.save`) into NumPy arrays, without
PyTorch.

torchvision's weights API downloads files such as `googlenet-1378be20.pth`;
this reads them so that importing published weights does not need PyTorch
(several GB) in the engine's install. Both of `torch.save`'s formats:

- the zip format (PyTorch 1.6 and later): `<name>/data.pkl` is a pickle
  whose tensors name their storage as a persistent id, ('storage', type,
  key, location, numel), and `<name>/data/<key>` holds each storage's bytes;
- the legacy format (files published before 1.6): pickles one after another
  (magic number, protocol version, system info, the object, the list of
  storage keys), then each storage as an int64 element count and its bytes.

Only what a state dict holds is accepted: tensors (`torch._utils.
_rebuild_tensor_v2`, `_rebuild_parameter`), storages of the numeric types and
ordered dicts. Any other class in the pickle is refused (a pickle names
functions to call, and a weights file has no business naming others), so a
file from elsewhere cannot run code here.
"""

import collections
import io
import pickle
import struct
import zipfile
from typing import Dict

import numpy as np

_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64,
    "HalfStorage": np.float16, "LongStorage": np.int64,
    "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class FormatError(ValueError):
  """The file is not a PyTorch state dict this reader understands."""


class _Storage:
  """A storage named in the pickle; its bytes arrive later in legacy files."""

  def __init__(self, dtype, numel: int):
    self.dtype, self.numel, self.data = np.dtype(dtype), numel, None


class _Tensor:
  """A tensor over a storage: made into an array once the bytes are read."""

  def __init__(self, storage, offset, size, stride):
    self.storage, self.offset = storage, offset
    self.size, self.stride = tuple(size), tuple(stride)

  def array(self) -> np.ndarray:
    flat = self.storage.data
    item = flat.itemsize
    if not self.size:
      return flat[self.offset].copy()
    view = np.lib.stride_tricks.as_strided(
        flat[self.offset:], shape=self.size,
        strides=[s * item for s in self.stride])
    return np.ascontiguousarray(view)


def _rebuild_tensor(storage, offset, size, stride, *unused):
  del unused  # requires_grad, backward hooks, metadata
  return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, *unused):
  del unused
  return data


class _Unpickler(pickle.Unpickler):
  """Resolves only the classes a state dict uses."""

  def __init__(self, stream, storages: Dict[str, _Storage]):
    super().__init__(stream)
    self._storages = storages

  def find_class(self, module, name):
    if (module, name) == ("collections", "OrderedDict"):
      return collections.OrderedDict
    if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
      return _rebuild_tensor
    if (module, name) == ("torch._utils", "_rebuild_parameter"):
      return _rebuild_parameter
    if module == "torch" and name in _DTYPES:
      return name
    raise FormatError(f"it names {module}.{name}, which a state dict of "
                      "tensors does not hold")

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
      raise FormatError(f"it holds an object of kind {pid!r}")
    storage_type, key, numel = pid[1], str(pid[2]), pid[4]
    if storage_type not in _DTYPES:
      raise FormatError(f"it holds a storage of type {storage_type!r}")
    if key not in self._storages:
      self._storages[key] = _Storage(_DTYPES[storage_type], numel)
    return self._storages[key]


def read(data: bytes) -> Dict[str, np.ndarray]:
  """{name: array} of the state dict in `data` (a `torch.save` file's bytes).

  Raises:
    FormatError: Naming what is wrong, if it is neither format, is cut
      short, or holds anything but a dict of tensors.
  """
  try:
    if zipfile.is_zipfile(io.BytesIO(data)):
      obj = _read_zip(data)
    else:
      obj = _read_legacy(data)
  except (pickle.UnpicklingError, EOFError, struct.error, KeyError,
          zipfile.BadZipFile, IndexError, ValueError, TypeError) as e:
    if isinstance(e, FormatError):
      raise
    raise FormatError(f"it cannot be read as a PyTorch file ({e})") from None
  if isinstance(obj, dict) and "state_dict" in obj:
    obj = obj["state_dict"]  # a training checkpoint holding the weights
  if not isinstance(obj, dict) or not all(
      isinstance(v, _Tensor) for v in obj.values()):
    raise FormatError("it is not a state dict (a dict of tensors)")
  return {str(k): v.array() for k, v in obj.items()}


def _read_zip(data: bytes):
  archive = zipfile.ZipFile(io.BytesIO(data))
  names = archive.namelist()
  pkl = next((n for n in names if n.endswith("/data.pkl")), None)
  if pkl is None:
    raise FormatError("the zip archive has no data.pkl")
  root = pkl[:-len("data.pkl")]
  if root + "byteorder" in names and archive.read(
      root + "byteorder").strip() != b"little":
    raise FormatError("its tensors are big-endian")
  storages: Dict[str, _Storage] = {}
  obj = _Unpickler(io.BytesIO(archive.read(pkl)), storages).load()
  for key, storage in storages.items():
    raw = archive.read(f"{root}data/{key}")
    storage.data = np.frombuffer(raw, storage.dtype.newbyteorder("<"),
                                 count=storage.numel)
  return obj


def _read_legacy(data: bytes):
  stream = io.BytesIO(data)
  magic = pickle.load(stream)
  if magic != _LEGACY_MAGIC:
    raise FormatError("it is neither a zip archive nor a legacy PyTorch "
                      "file (no magic number)")
  pickle.load(stream)  # protocol version
  pickle.load(stream)  # system info
  storages: Dict[str, _Storage] = {}
  obj = _Unpickler(stream, storages).load()
  for key in pickle.load(stream):
    storage = storages[str(key)]
    (count,) = struct.unpack("<q", stream.read(8))
    raw = stream.read(count * storage.dtype.itemsize)
    if len(raw) != count * storage.dtype.itemsize:
      raise FormatError("it is cut short")
    storage.data = np.frombuffer(raw, storage.dtype.newbyteorder("<"))
  return obj
