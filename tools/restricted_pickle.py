"""A restricted pickle interpreter: runs a pickle from outside, building
plain data and only what its caller allows, so a file cannot run code."""

import io
import struct
from typing import Callable, Optional

# torchvision's GoogLeNet state dict pickles to some 40 KB (364 tensors, at
# the 90 bytes a tensor of tests/data's); a pickle is run at about 2 MB/s,
# whatever it holds.
MAX_PICKLE = 4 << 20  # bytes of each pickle: 100 GoogLeNets' worth


class PickleError(ValueError):
  """A pickle refused: malformed, cut short, too long, or naming or calling
  what its caller does not allow."""


def take(stream: io.BytesIO, n: int) -> bytes:
  """The next `n` bytes; no more is allocated than is there."""
  data = stream.read(n)
  if len(data) != n:
    raise PickleError("it is cut short")
  return data


def _malformed(what: str) -> PickleError:
  return PickleError(f"it cannot be read as a PyTorch file (a malformed "
                     f"pickle: {what})")


def describe(value) -> str:
  """`value` for a message: a short scalar as it is, else its type (the
  repr of a pickle's tuples that share their items is exponentially long)."""
  if isinstance(value, (str, int, float, type(None))):
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."
  return f"a {type(value).__name__}"


class Unpickler:
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
    self._end = stream.tell() + MAX_PICKLE
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
      raise PickleError(f"it holds a pickle longer than {MAX_PICKLE} bytes")
    return take(self._stream, n)

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
      raise _malformed(f"it adds items to {describe(self._stack[-1])}")
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
        raise PickleError(f"its pickle has a dict key that is {describe(key)}")
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
      raise PickleError(f"it names {module[:80]}.{name[:80]}, which a "
                        "state dict of tensors does not hold")
    self._stack.append(self._names[module, name])

  def _reduce(self, op: bytes) -> None:
    del op
    args, function = self._pop(), self._pop()
    if not (isinstance(args, tuple) and callable(function) and any(
        function is allowed for allowed in self._names.values())):
      raise PickleError(f"its pickle calls {describe(function)}")
    self._stack.append(function(*args))

  def _build(self, op: bytes) -> None:
    del op
    self._pop()  # an ordered dict's attributes (torch's `_metadata`)
    self._top(dict)

  def _persistent(self, op: bytes) -> None:  # BINPERSID
    del op
    if self._persistent_load is None:
      raise PickleError("its pickle names a storage where none belongs")
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
