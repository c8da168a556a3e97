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

A file from elsewhere is hostile input. Every pickle in it is run by one
small pickle machine (tools/restricted_pickle.py) that builds plain data and
only what a state dict holds: tensors (`torch._utils._rebuild_tensor_v2`,
`_rebuild_parameter`), storages of the numeric types and ordered dicts;
any other name is refused, so a file cannot run code here. Every declared
length, size, offset and stride is checked against the bytes that are
there before anything is read or allocated, and the whole is bounded, so a
file of a few hundred bytes cannot take gigabytes or hours. Whatever is
wrong ends in one `FormatError` line.
"""

import collections
import io
import math
import struct
import zipfile
import zlib
from typing import Callable, Dict

import numpy as np

from tools import restricted_pickle

_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64,
    "HalfStorage": np.float16, "LongStorage": np.int64,
    "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
# Bounds, against torchvision's GoogLeNet file (52 MB: 13 million numbers,
# 364 tensors); each pickle's is restricted_pickle.MAX_PICKLE.
_MAX_ELEMENTS = 1 << 28  # of all storages, and of all tensors: 20 GoogLeNets
_MAX_RANK = 32
_MAX_MESSAGE = 300  # characters of a FormatError


class FormatError(ValueError):
  """The file is not a PyTorch state dict this reader understands."""


class _Storage:
  """A storage named in the pickle; its bytes are read once it is done."""

  def __init__(self, dtype, numel: int):
    self.dtype, self.numel, self.data = np.dtype(dtype), numel, None

  @property
  def nbytes(self) -> int:
    return self.numel * self.dtype.itemsize

  def fill(self, raw: bytes) -> None:
    if len(raw) != self.nbytes:
      raise FormatError(f"a storage holds {len(raw)} bytes, not the "
                        f"{self.nbytes} its tensors declare")
    self.data = np.frombuffer(raw, self.dtype.newbyteorder("<"))


def _is_count(value) -> bool:
  """A non-negative int (not a bool) that NumPy's int64 indices hold."""
  return (isinstance(value, int) and not isinstance(value, bool)
          and 0 <= value < 1 << 62)


class _Tensor:
  """A tensor over a storage, its geometry checked against the storage:
  made into an array once the bytes are read."""

  def __init__(self, storage, offset, size, stride):
    if not isinstance(storage, _Storage):
      raise FormatError("a tensor's storage is "
                        f"{restricted_pickle.describe(storage)}")
    if not (isinstance(size, tuple) and isinstance(stride, tuple)
            and len(size) == len(stride) <= _MAX_RANK
            and all(map(_is_count, (offset,) + size + stride))):
      raise FormatError("a tensor's offset, size and stride are not "
                        "non-negative integers of one rank")
    self.count = math.prod(size)
    last = offset + sum((n - 1) * step for n, step in zip(size, stride))
    if self.count and (self.count > storage.numel or last >= storage.numel):
      raise FormatError(
          f"a tensor of size {list(size)} at offset {offset} with stride "
          f"{list(stride)} does not fit its storage of {storage.numel}")
    self.storage, self.offset, self.size, self.stride = (
        storage, offset, size, stride)

  def array(self) -> np.ndarray:
    if not self.count:  # no element: nothing to read, whatever the sides
      return np.empty(self.size, self.storage.dtype)
    # The geometry was checked against the storage (above), so this view
    # reads nothing outside it, and its copy costs the tensor's bytes only
    # (an index array cost 2-3 times more). A side of 1 takes no step.
    item = self.storage.data.itemsize
    return np.lib.stride_tricks.as_strided(
        self.storage.data[self.offset:], self.size,
        tuple(0 if n == 1 else step * item
              for n, step in zip(self.size, self.stride))).copy()


def _rebuild_tensor(storage, offset, size, stride, *unused) -> _Tensor:
  del unused  # requires_grad, backward hooks, metadata
  return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, *unused) -> _Tensor:
  del unused
  if not isinstance(data, _Tensor):
    raise FormatError(f"a parameter holds {restricted_pickle.describe(data)}")
  return data


def _ordered_dict() -> dict:
  return collections.OrderedDict()  # its items follow, by SETITEMS


_STATE_NAMES = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): name for name in _DTYPES},
}


def read(data: bytes) -> Dict[str, np.ndarray]:
  """{name: array} of the state dict in `data` (a `torch.save` file's bytes).

  Raises:
    FormatError: One line naming what is wrong, if it is neither format,
      is cut short, holds anything but a dict of tensors, or declares more
      than it holds or than the bounds allow.
  """
  try:
    if zipfile.is_zipfile(io.BytesIO(data)):
      obj = _read_zip(data)
    else:
      obj = _read_legacy(data)
    if isinstance(obj, dict) and "state_dict" in obj:
      obj = obj["state_dict"]  # a training checkpoint holding the weights
    if not isinstance(obj, dict) or not all(
        isinstance(k, str) and isinstance(v, _Tensor)
        for k, v in obj.items()):
      raise FormatError("it is not a state dict (a dict of tensors)")
    if sum(t.count for t in obj.values()) > _MAX_ELEMENTS:
      raise FormatError(f"its tensors hold more than {_MAX_ELEMENTS} "
                        "numbers")
    return {k: v.array() for k, v in obj.items()}
  except (FormatError, restricted_pickle.PickleError) as e:
    raise FormatError(_one_line(str(e))) from None
  # What a damaged file can raise in zipfile, zlib, struct and NumPy, and
  # what bounds may still be hit; any other exception is a bug here.
  except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError,
          zlib.error, EOFError, LookupError, ValueError, TypeError,
          OverflowError, MemoryError, RecursionError) as e:
    detail = _one_line(str(e) or type(e).__name__)
    raise FormatError(_one_line(
        f"it cannot be read as a PyTorch file ({detail})")) from None


def _one_line(text: str) -> str:
  text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
  return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."


def _storage_loader(storages: Dict[str, _Storage]) -> Callable:
  """The persistent-id loader: ('storage', type, key, location, numel), and
  in legacy files a sixth item, None (a view of no other storage)."""
  def load(pid) -> _Storage:
    if not (isinstance(pid, tuple) and len(pid) in (5, 6)
            and all(isinstance(pid[i], str) and len(pid[i]) <= 64
                    for i in (0, 1, 3))
            and isinstance(pid[2], (str, int)) and _is_count(pid[4])
            and (len(pid) == 5 or pid[5] is None) and pid[0] == "storage"):
      raise FormatError(
          f"it holds a persistent object ({restricted_pickle.describe(pid)})"
          " that is not ('storage', type, key, location, numel)")
    storage_type, key, numel = pid[1], str(pid[2])[:64], pid[4]
    if storage_type not in _DTYPES:
      raise FormatError("it holds a storage of type "
                        f"{restricted_pickle.describe(storage_type)}")
    storage = storages.setdefault(key, _Storage(_DTYPES[storage_type], numel))
    if (storage.dtype, storage.numel) != (np.dtype(_DTYPES[storage_type]),
                                          numel):
      raise FormatError(f"its storage {key!r} is declared twice, unalike")
    return storage
  return load


def _check_total(storages: Dict[str, _Storage]) -> None:
  """Before any storage is read."""
  if sum(s.numel for s in storages.values()) > _MAX_ELEMENTS:
    raise FormatError(f"its storages hold more than {_MAX_ELEMENTS} numbers")


def _entry(archive: zipfile.ZipFile, name: str, limit: int, *,
           deflated: bool = False) -> bytes:
  """The zip entry `name`, refused if it declares more than `limit` bytes
  (before any is inflated; zipfile inflates no more than declared), or if
  it is compressed unless `deflated` allows it (the pickle and the byte
  order, which a re-zipped file may hold deflated; storages inflated
  1000-fold would make a small file cost gigabytes)."""
  try:
    info = archive.getinfo(name)
  except KeyError:
    raise FormatError(f"the zip archive has no {name[:80]}") from None
  allowed = (zipfile.ZIP_STORED,) + ((zipfile.ZIP_DEFLATED,) if deflated
                                     else ())
  if (info.compress_type not in allowed
      or info.flag_bits & 1):  # torch.save neither compresses nor encrypts
    raise FormatError(f"its {name[:80]} is compressed or encrypted in a way "
                      "torch.save does not")
  if info.file_size > limit:
    raise FormatError(f"its {name[:80]} declares {info.file_size} bytes, "
                      f"more than the {limit} it may hold")
  with archive.open(info) as entry:
    return entry.read(limit)


def _read_zip(data: bytes):
  archive = zipfile.ZipFile(io.BytesIO(data))
  pkl = next((n for n in archive.namelist() if n.endswith("/data.pkl")),
             None)
  if pkl is None:
    raise FormatError("the zip archive has no data.pkl")
  root = pkl[:-len("data.pkl")]
  if root + "byteorder" in archive.namelist() and _entry(
      archive, root + "byteorder", 16, deflated=True).strip() != b"little":
    raise FormatError("its tensors are big-endian")
  storages: Dict[str, _Storage] = {}
  obj = restricted_pickle.Unpickler(
      io.BytesIO(_entry(archive, pkl, restricted_pickle.MAX_PICKLE,
                        deflated=True)),
      _STATE_NAMES, _storage_loader(storages)).load()
  _check_total(storages)
  for key, storage in storages.items():
    storage.fill(_entry(archive, f"{root}data/{key}", storage.nbytes))
  return obj


def _read_legacy(data: bytes):
  stream = io.BytesIO(data)
  # The first three and the last pickle hold plain data: no names at all.
  magic = restricted_pickle.Unpickler(stream).load()
  if not (isinstance(magic, int) and magic == _LEGACY_MAGIC):
    raise FormatError("it is neither a zip archive nor a legacy PyTorch "
                      "file (no magic number)")
  if not isinstance(restricted_pickle.Unpickler(stream).load(), int):
    raise FormatError("its protocol version is not a number")
  system = restricted_pickle.Unpickler(stream).load()
  if not isinstance(system, dict):
    raise FormatError("its system information is not a dict")
  if system.get("little_endian") is False:
    raise FormatError("its tensors are big-endian")
  storages: Dict[str, _Storage] = {}
  obj = restricted_pickle.Unpickler(stream, _STATE_NAMES,
                                    _storage_loader(storages)).load()
  keys = restricted_pickle.Unpickler(stream).load()
  if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)
          and sorted(keys) == sorted(storages)):
    raise FormatError("its list of storages is not the storages it uses")
  _check_total(storages)
  for key in keys:
    storage = storages[key]
    (count,) = struct.unpack("<q", restricted_pickle.take(stream, 8))
    if count != storage.numel:
      raise FormatError(f"its storage {key!r} has {count} elements, not "
                        f"the {storage.numel} declared")
    storage.fill(restricted_pickle.take(stream, storage.nbytes))
  return obj
