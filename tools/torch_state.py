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
small pickle machine (`_Unpickler`) that builds plain data and only what a
state dict holds: tensors (`torch._utils._rebuild_tensor_v2`,
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
from typing import Callable, Dict, Optional

import numpy as np

_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64,
    "HalfStorage": np.float16, "LongStorage": np.int64,
    "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
# Bounds, against torchvision's GoogLeNet file (52 MB: 13 million numbers,
# 364 tensors, whose pickle is some 40 KB at the 90 bytes a tensor of
# tests/data's). A pickle is run at about 2 MB/s, whatever it holds.
_MAX_PICKLE = 4 << 20  # bytes of each pickle: 100 GoogLeNets' worth
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
      raise FormatError(f"a tensor's storage is {_kind(storage)}")
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
    # Indexing, which NumPy bounds-checks, rather than a strided view.
    index = np.int64(self.offset)
    for n, step in zip(self.size, self.stride):
      index = np.add.outer(index, np.arange(n, dtype=np.int64) * step)
    return np.asarray(self.storage.data[index])


def _rebuild_tensor(storage, offset, size, stride, *unused) -> _Tensor:
  del unused  # requires_grad, backward hooks, metadata
  return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, *unused) -> _Tensor:
  del unused
  if not isinstance(data, _Tensor):
    raise FormatError(f"a parameter holds {_kind(data)}")
  return data


def _ordered_dict() -> dict:
  return collections.OrderedDict()  # its items follow, by SETITEMS


_STATE_NAMES = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): name for name in _DTYPES},
}


def _take(stream: io.BytesIO, n: int) -> bytes:
  """The next `n` bytes; no more is allocated than is there."""
  data = stream.read(n)
  if len(data) != n:
    raise FormatError("it is cut short")
  return data


def _malformed(what: str) -> FormatError:
  return FormatError(f"it cannot be read as a PyTorch file (a malformed "
                     f"pickle: {what})")


def _kind(value) -> str:
  """`value` for a message: a short scalar as it is, else its type (the
  repr of a pickle's tuples that share their items is exponentially long)."""
  if isinstance(value, (str, int, float, type(None))):
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."
  return f"a {type(value).__name__}"


class _Unpickler:
  """Runs one pickle, building plain data and only what `names` allows.

  PyTorch's `weights_only` loader (torch/_weights_only_unpickler.py) is the
  model: a machine of its own rather than `pickle.Unpickler`, whose C code
  allocates what a file declares before reading it (a 13-byte pickle that
  stores to memo slot 2**27 took 2 GB) and hashes the keys it is given (a
  dict keyed by a 26-level tuple sharing its halves, 226 bytes, took 0.7 s;
  each level doubles it). Here a length is checked against the bytes left
  before anything is read, dict keys are scalars, a call is only to what
  `names` maps a name to, and the work is linear in the pickle's size.
  The opcodes are those protocol 2 (torch.save's) writes for a state dict,
  protocol 4's framing, and Python 2's strings (old legacy files).
  """

  def __init__(self, stream: io.BytesIO, names=None,
               persistent_load: Optional[Callable] = None):
    self._stream, self._names = stream, names or {}
    self._end = stream.tell() + _MAX_PICKLE
    self._persistent_load = persistent_load
    self._stack, self._marks, self._memo = [], [], {}

  def load(self):
    """The pickle's object; the stream is left after its STOP."""
    while True:
      op = self._read(1)
      if op == b".":  # STOP
        return self._pop()
      if op not in self._OPS:
        raise _malformed(f"opcode {op!r}, which a state dict's does not "
                         "use")
      self._OPS[op](self, op)

  def _read(self, n: int) -> bytes:
    if self._stream.tell() + n > self._end:
      raise FormatError(f"it holds a pickle longer than {_MAX_PICKLE} bytes")
    return _take(self._stream, n)

  def _unpack(self, fmt: str):
    return struct.unpack(fmt, self._read(struct.calcsize(fmt)))[0]

  def _pop(self):
    if len(self._stack) <= (self._marks[-1] if self._marks else 0):
      raise _malformed("stack underflow")
    return self._stack.pop()

  def _top(self, kind: type):
    if len(self._stack) <= (self._marks[-1] if self._marks else 0):
      raise _malformed("stack underflow")
    if not isinstance(self._stack[-1], kind):
      raise _malformed(f"it adds items to {_kind(self._stack[-1])}")
    return self._stack[-1]

  def _pop_mark(self) -> list:
    if not self._marks:
      raise _malformed("no mark")
    start = self._marks.pop()
    items = self._stack[start:]
    del self._stack[start:]
    return items

  def _frame(self, op: bytes) -> None:  # PROTO, FRAME (groups what follows)
    self._read(1 if op == b"\x80" else 8)

  def _mark(self, op: bytes) -> None:
    del op
    self._marks.append(len(self._stack))

  def _constant(self, op: bytes) -> None:
    self._stack.append(_CONSTANTS[op]())

  def _number(self, op: bytes) -> None:  # BININT*, BINFLOAT, LONG1
    if op == b"\x8a":
      size = self._unpack("<B")
      self._stack.append(int.from_bytes(self._read(size), "little",
                                        signed=True))
    else:
      self._stack.append(self._unpack(_FORMATS[op]))

  def _text(self, op: bytes) -> None:  # BINUNICODE, and Python 2's strings
    size = self._unpack(_FORMATS[op])
    encoding = "ascii" if op in (b"T", b"U") else "utf-8"
    self._stack.append(self._read(size).decode(encoding, "surrogatepass"))

  def _tuple(self, op: bytes) -> None:
    if op == b"t":
      items = self._pop_mark()
    else:
      items = [self._pop() for _ in range(_TUPLE_SIZES[op])][::-1]
    self._stack.append(tuple(items))

  def _append(self, op: bytes) -> None:  # APPEND, APPENDS
    items = [self._pop()] if op == b"a" else self._pop_mark()
    self._top(list).extend(items)

  def _set_items(self, op: bytes) -> None:  # SETITEM, SETITEMS
    items = [self._pop(), self._pop()][::-1] if op == b"s" else (
        self._pop_mark())
    target = self._top(dict)
    for key, value in zip(items[::2], items[1::2]):
      if not isinstance(key, (str, int, float, type(None))):
        raise FormatError(f"its pickle has a dict key that is {_kind(key)}")
      target[key] = value

  def _put(self, op: bytes) -> None:  # BINPUT, LONG_BINPUT, MEMOIZE
    index = len(self._memo) if op == b"\x94" else self._unpack(_FORMATS[op])
    self._memo[index] = self._top(object)

  def _get(self, op: bytes) -> None:  # BINGET, LONG_BINGET
    index = self._unpack(_FORMATS[op])
    if index not in self._memo:
      raise _malformed("no memo entry")
    self._stack.append(self._memo[index])

  def _global(self, op: bytes) -> None:  # GLOBAL, STACK_GLOBAL
    if op == b"c":
      lines = [self._stream.readline(256) for _ in range(2)]
      if not all(line.endswith(b"\n") for line in lines):
        raise _malformed("a name without an end")
      module, name = (line[:-1].decode("utf-8") for line in lines)
    else:
      name, module = self._pop(), self._pop()
      if not (isinstance(module, str) and isinstance(name, str)):
        raise _malformed("a name that is not text")
    if (module, name) not in self._names:
      raise FormatError(f"it names {module[:80]}.{name[:80]}, which a "
                        "state dict of tensors does not hold")
    self._stack.append(self._names[module, name])

  def _reduce(self, op: bytes) -> None:
    del op
    args, function = self._pop(), self._pop()
    if not (isinstance(args, tuple) and callable(function) and any(
        function is allowed for allowed in self._names.values())):
      raise FormatError(f"its pickle calls {_kind(function)}")
    self._stack.append(function(*args))

  def _build(self, op: bytes) -> None:
    del op
    self._pop()  # an ordered dict's attributes (torch's `_metadata`)
    self._top(dict)

  def _persistent(self, op: bytes) -> None:  # BINPERSID
    del op
    if self._persistent_load is None:
      raise FormatError("its pickle names a storage where none belongs")
    self._stack.append(self._persistent_load(self._pop()))

  _OPS = {b"\x80": _frame, b"\x95": _frame, b"(": _mark,
          b"N": _constant, b"\x88": _constant, b"\x89": _constant,
          b"}": _constant, b"]": _constant, b")": _constant,
          b"J": _number, b"K": _number, b"M": _number, b"G": _number,
          b"\x8a": _number, b"X": _text, b"\x8c": _text, b"T": _text,
          b"U": _text, b"t": _tuple, b"\x85": _tuple, b"\x86": _tuple,
          b"\x87": _tuple, b"a": _append, b"e": _append, b"s": _set_items,
          b"u": _set_items, b"q": _put, b"r": _put, b"\x94": _put,
          b"h": _get, b"j": _get, b"c": _global, b"\x93": _global,
          b"R": _reduce, b"b": _build, b"Q": _persistent}


_CONSTANTS = {b"N": lambda: None, b"\x88": lambda: True,
              b"\x89": lambda: False, b"}": dict, b"]": list,
              b")": tuple}
_FORMATS = {b"J": "<i", b"K": "<B", b"M": "<H", b"G": ">d", b"X": "<I",
            b"\x8c": "<B", b"T": "<I", b"U": "<B", b"q": "<B", b"r": "<I",
            b"h": "<B", b"j": "<I"}
_TUPLE_SIZES = {b"\x85": 1, b"\x86": 2, b"\x87": 3}


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
  except FormatError as e:
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
      raise FormatError(f"it holds a persistent object ({_kind(pid)}) that "
                        "is not ('storage', type, key, location, numel)")
    storage_type, key, numel = pid[1], str(pid[2])[:64], pid[4]
    if storage_type not in _DTYPES:
      raise FormatError(f"it holds a storage of type {_kind(storage_type)}")
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


def _entry(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
  """The zip entry `name`, refused if it declares more than `limit` bytes
  (before any is inflated; zipfile inflates no more than declared)."""
  try:
    info = archive.getinfo(name)
  except KeyError:
    raise FormatError(f"the zip archive has no {name[:80]}") from None
  if (info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
      or info.flag_bits & 1):  # torch.save neither encrypts nor uses others
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
      archive, root + "byteorder", 16).strip() != b"little":
    raise FormatError("its tensors are big-endian")
  storages: Dict[str, _Storage] = {}
  obj = _Unpickler(io.BytesIO(_entry(archive, pkl, _MAX_PICKLE)),
                   _STATE_NAMES, _storage_loader(storages)).load()
  _check_total(storages)
  for key, storage in storages.items():
    storage.fill(_entry(archive, f"{root}data/{key}", storage.nbytes))
  return obj


def _read_legacy(data: bytes):
  stream = io.BytesIO(data)
  # The first three and the last pickle hold plain data: no names at all.
  magic = _Unpickler(stream).load()
  if not (isinstance(magic, int) and magic == _LEGACY_MAGIC):
    raise FormatError("it is neither a zip archive nor a legacy PyTorch "
                      "file (no magic number)")
  if not isinstance(_Unpickler(stream).load(), int):
    raise FormatError("its protocol version is not a number")
  system = _Unpickler(stream).load()
  if not isinstance(system, dict):
    raise FormatError("its system information is not a dict")
  if system.get("little_endian") is False:
    raise FormatError("its tensors are big-endian")
  storages: Dict[str, _Storage] = {}
  obj = _Unpickler(stream, _STATE_NAMES, _storage_loader(storages)).load()
  keys = _Unpickler(stream).load()
  if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)
          and sorted(keys) == sorted(storages)):
    raise FormatError("its list of storages is not the storages it uses")
  _check_total(storages)
  for key in keys:
    storage = storages[key]
    (count,) = struct.unpack("<q", _take(stream, 8))
    if count != storage.numel:
      raise FormatError(f"its storage {key!r} has {count} elements, not "
                        f"the {storage.numel} declared")
    storage.fill(_take(stream, storage.nbytes))
  return obj
