"""Hostile .pth files: PyTorch's own files of both formats (tests/data/
torch_state), mutated byte by byte and opcode by opcode, through
tools/torch_state.read. Each must give a state dict of arrays or one short
FormatError line: never another exception, never a crash of the process
(the geometry checks are what stand between a crafted stride and a read
past the heap), and never a call to anything but the state dict's names."""

import io
import os
import pickle
import pickletools
import tempfile
import unittest
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.torch_state_test import legacy_pickles, read
from tools import torch_state

ZIP, LEGACY = read("state.pth"), read("state-legacy.pth")
EXAMPLES = 300  # per format; CI-sized (runs of 20,000 found nothing more)
# Values an opcode's number may be turned into: the edges of each width.
HOSTILE_INTS = [0, 1, -1, 2, 255, 256, 65535, 2**31 - 1, -2**31, 2**32,
                2**40, 2**62, 2**63, -2**63, 2**64, 10**30]
# Names a pickle could call to run code.
HOSTILE_NAMES = [("os", "system"), ("posix", "system"), ("builtins", "eval"),
                 ("__builtin__", "exec"), ("subprocess", "Popen"),
                 ("torch", "load"), ("collections", "namedtuple"),
                 ("numpy", "frombuffer"), ("torch._utils", "_rebuild_qtensor")]


def zip_parts(data: bytes):
  with zipfile.ZipFile(io.BytesIO(data)) as archive:
    return [(info.filename, archive.read(info)) for info in archive.infolist()]


def rezip(parts) -> bytes:
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, "w") as archive:
    for name, raw in parts:
      archive.writestr(name, raw)
  return buffer.getvalue()


def encoded(value: int) -> bytes:
  """`value` as the opcode pickle writes for it."""
  return pickle.dumps(value, protocol=2)[2:-1]


@st.composite
def bytes_mutation(draw, data: bytes) -> bytes:
  """Flipped bytes, a cut, or inserted bytes, anywhere."""
  data = bytearray(data)
  kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
  if kind == "flip":
    for _ in range(draw(st.integers(1, 4))):
      data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
  elif kind == "truncate":
    data = data[:draw(st.integers(0, len(data) - 1))]
  else:
    at = draw(st.integers(0, len(data)))
    if kind == "insert":
      data[at:at] = draw(st.binary(min_size=1, max_size=12))
    else:
      del data[at:at + draw(st.integers(1, 12))]
  return bytes(data)


@st.composite
def opcode_mutation(draw, data: bytes) -> bytes:
  """One opcode of the pickle `data` replaced: a number by a hostile one,
  by another opcode, by a call of a hostile name, or removed."""
  ops = list(pickletools.genops(data))
  i = draw(st.integers(0, len(ops) - 1))
  start = ops[i][2]
  end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
  kind = draw(st.sampled_from(["number", "opcode", "name", "delete"]))
  if kind == "number":
    new = encoded(draw(st.sampled_from(HOSTILE_INTS)))
  elif kind == "opcode":
    new = bytes([draw(st.integers(0, 255))]) + draw(st.binary(max_size=9))
  elif kind == "name":
    module, name = draw(st.sampled_from(HOSTILE_NAMES))
    new = f"c{module}\n{name}\n".encode() + draw(st.sampled_from(
        [b")R", b"N\x85R", b"(tR", b""]))
  else:
    new = b""
  return data[:start] + new + data[end:]


@st.composite
def mutated_zip(draw) -> bytes:
  parts = zip_parts(ZIP)
  target = draw(st.sampled_from(["file", "data.pkl", "data.pkl", "entry"]))
  if target == "file":
    return draw(bytes_mutation(ZIP))
  if target == "entry":  # a storage's or a small entry's bytes
    i = draw(st.integers(0, len(parts) - 1))
    name, raw = parts[i]
    parts[i] = (name, draw(bytes_mutation(raw)) if raw else b"x")
    return rezip(parts)
  i = next(i for i, (name, _) in enumerate(parts)
           if name.endswith("data.pkl"))
  raw = parts[i][1]
  parts[i] = (parts[i][0], draw(st.one_of(bytes_mutation(raw),
                                          opcode_mutation(raw))))
  return rezip(parts)


@st.composite
def mutated_legacy(draw) -> bytes:
  if draw(st.booleans()):
    return draw(bytes_mutation(LEGACY))
  parts = legacy_pickles(LEGACY)  # five pickles, then the storages
  i = draw(st.integers(0, 4))
  parts[i] = draw(st.one_of(bytes_mutation(parts[i]),
                            opcode_mutation(parts[i])))
  return b"".join(parts)


class TorchStateFuzzTest(unittest.TestCase):

  def check(self, data: bytes) -> None:
    try:
      got = torch_state.read(data)
    except torch_state.FormatError as e:
      message = str(e)
      self.assertTrue(message and message.isprintable(), repr(message))
      self.assertLessEqual(len(message), 310, message)
      return
    self.assertIsInstance(got, dict)
    for key, value in got.items():
      self.assertIsInstance(key, str)
      self.assertIsInstance(value, np.ndarray)
      self.assertLessEqual(value.nbytes, len(data))

  @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
            suppress_health_check=list(HealthCheck))
  @given(mutated_zip())
  def test_mutated_zip_files(self, data):
    self.check(data)

  @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
            suppress_health_check=list(HealthCheck))
  @given(mutated_legacy())
  def test_mutated_legacy_files(self, data):
    self.check(data)

  def test_the_mutations_reach_the_checks(self):
    # The fuzzed files are mostly refused deep inside, not by the zip's
    # CRC: a hostile number in a tensor's size, read whole, is refused by
    # the geometry check.
    parts = zip_parts(ZIP)
    i = next(i for i, (name, _) in enumerate(parts)
             if name.endswith("data.pkl"))
    raw = parts[i][1]
    size = raw.index(b"K\x03K\x02K\x05K\x05t")  # conv's size (3, 2, 5, 5)
    parts[i] = (parts[i][0], raw[:size] + encoded(2**40) + raw[size + 2:])
    with self.assertRaisesRegex(torch_state.FormatError,
                                r"^a tensor of size \[1099511627776, 2, 5, "
                                r"5\] .* does not fit its storage of 150$"):
        torch_state.read(rezip(parts))

  def test_no_name_but_the_state_dicts_is_called(self):
    # A call in place of each opcode of each pickle, in both formats: what
    # comes before it is genuine, so the call is reached, and refused.
    with tempfile.TemporaryDirectory() as tmp:
      marker = os.path.join(tmp, "code-ran")
      calls = [(m, n, b")R") for m, n in HOSTILE_NAMES] + [
          ("os", "system", encoded(f"touch {marker}") + b"\x85R")]
      zip_entries = zip_parts(ZIP)
      i = next(i for i, (name, _) in enumerate(zip_entries)
               if name.endswith("data.pkl"))
      legacy = legacy_pickles(LEGACY)
      cases = [(zip_entries, i), *((legacy, j) for j in range(5))]
      for parts, j in cases:
        raw = parts[j][1] if parts is zip_entries else parts[j]
        for _, _, at in pickletools.genops(raw):
          for module, name, args in calls:
            call = raw[:at] + f"c{module}\n{name}\n".encode() + args
            changed = list(parts)
            changed[j] = (parts[j][0], call) if parts is zip_entries else call
            data = rezip(changed) if parts is zip_entries else b"".join(
                changed)
            with self.assertRaisesRegex(
                torch_state.FormatError,
                rf"^it names {module}\.{name}, which a state dict "):
              torch_state.read(data)
      self.assertFalse(os.path.exists(marker))


if __name__ == "__main__":
  unittest.main()
