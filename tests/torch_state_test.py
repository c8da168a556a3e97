"""tools/torch_state.py reads torch.save's files without PyTorch: files that
PyTorch 2.14.1 wrote (tests/data/torch_state, made by
tests/reference/torch_state_fixtures.py), in both formats; and refuses
hostile ones, crafted here opcode by opcode, in one short line without
running them, reading past them or allocating what they declare."""

import io
import os
import pickle
import pickletools
import resource
import struct
import tempfile
import unittest
import zipfile
from typing import Dict, List

import numpy as np

from tools import torch_state

DATA = os.path.join(os.path.dirname(__file__), "data", "torch_state")


def read(name: str) -> bytes:
  with open(os.path.join(DATA, name), "rb") as f:
    return f.read()


def plain(value) -> bytes:
  """A plain value's opcodes (protocol 2, without PROTO and STOP)."""
  return pickle.dumps(value, protocol=2)[2:-1]


def state_pickle(tensors: Dict[str, tuple], legacy: bool = False) -> bytes:
  """torch.save's pickle of an ordered dict of float tensors, {name: (key,
  numel, offset, size, stride)}, as PyTorch writes it (without PyTorch)."""
  ops = b"\x80\x02ccollections\nOrderedDict\n)R("
  for name, (key, numel, offset, size, stride) in tensors.items():
    storage = (b"(" + plain("storage") + b"ctorch\nFloatStorage\n" + plain(key)
               + plain("cpu") + plain(numel) + (b"N" if legacy else b"")
               + b"tQ")
    ops += (plain(name) + b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage
            + plain(offset) + plain(tuple(size)) + plain(tuple(stride))
            + b"\x89ccollections\nOrderedDict\n)RtR")
  return ops + b"u."


def zip_pth(data_pkl: bytes, storages: Dict[str, bytes],
            compression: int = zipfile.ZIP_STORED) -> bytes:
  """A zip-format file of `data_pkl` and the storages' bytes."""
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, "w", compression) as archive:
    archive.writestr("a/data.pkl", data_pkl)
    archive.writestr("a/byteorder", "little")
    for key, raw in storages.items():
      archive.writestr(f"a/data/{key}", raw)
  return buffer.getvalue()


def legacy_pth(object_pickle: bytes, storages: Dict[str, bytes]) -> bytes:
  """A legacy-format file: its three plain pickles, `object_pickle`, the
  list of storage keys, then each float32 storage's count and bytes."""
  header = (0x1950A86A20F9469CFC6C, 1001, {
      "protocol_version": 1001, "little_endian": True,
      "type_sizes": {"short": 2, "int": 4, "long": 4}})
  out = b"".join(pickle.dumps(v, protocol=2) for v in header)
  out += object_pickle + pickle.dumps(list(storages), protocol=2)
  for raw in storages.values():
    out += struct.pack("<q", len(raw) // 4) + raw
  return out


def floats(*values: float) -> bytes:
  return np.array(values, "<f4").tobytes()


def legacy_pickles(data: bytes) -> List[bytes]:
  """A legacy file's five pickles, then the storages' bytes (pickletools
  parses; it runs nothing)."""
  stream, parts, start = io.BytesIO(data), [], 0
  for _ in range(5):
    for _ in pickletools.genops(stream):
      pass
    parts.append(data[start:stream.tell()])
    start = stream.tell()
  return parts + [data[start:]]


def refusal(data: bytes) -> str:
  """The FormatError's message for `data`, checked to be one short line."""
  try:
    torch_state.read(data)
  except torch_state.FormatError as e:
    message = str(e)
  else:
    raise AssertionError("read() accepted the file")
  assert "\n" not in message and len(message) < 500, message[:1000]
  return message


def peak_mb() -> float:
  """This process's peak memory so far."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def evil_pickle(command: str) -> bytes:
  """A pickle that runs `command` when plain `pickle.load` loads it."""
  class Evil:
    def __reduce__(self):
      return (os.system, (command,))
  return pickle.dumps(Evil(), protocol=2)


class TorchStateTest(unittest.TestCase):

  def test_both_formats_give_pytorchs_arrays(self):
    expected = np.load(os.path.join(DATA, "expected.npz"))
    for name in ("state.pth", "state-legacy.pth"):
      got = torch_state.read(read(name))
      self.assertEqual(sorted(got), sorted(expected.files), name)
      for key in expected.files:
        self.assertEqual(got[key].dtype, expected[key].dtype, (name, key))
        self.assertEqual(got[key].shape, expected[key].shape, (name, key))
        np.testing.assert_array_equal(got[key], expected[key], (name, key))
    # The transposed view and the offset slice are read through their
    # strides, not as the storage's first elements.
    np.testing.assert_array_equal(got["transposed"].T[1:3, 2:],
                                  got["sliced"])

  def test_a_pickled_module_is_refused_without_running_it(self):
    with self.assertRaisesRegex(
        torch_state.FormatError, r"names torch\.nn\.modules\.linear\.Linear, "
        r"which a state dict of tensors does not hold"):
      torch_state.read(read("module.pth"))

  def test_a_pickle_that_would_run_code_is_refused(self):
    class Evil:
      def __reduce__(self):
        return (os.system, ("echo owned",))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
      archive.writestr("x/data.pkl", pickle.dumps({"a": Evil()}))
    with self.assertRaisesRegex(torch_state.FormatError,
                                r"names (posix|os)\.system"):
      torch_state.read(buffer.getvalue())

  def test_not_a_torch_file_and_cut_short(self):
    with self.assertRaisesRegex(torch_state.FormatError,
                                "cannot be read as a PyTorch file"):
      torch_state.read(b"just some text\n")
    legacy = read("state-legacy.pth")
    with self.assertRaisesRegex(torch_state.FormatError,
                                "cut short|cannot be read"):
      torch_state.read(legacy[:-40])
    with self.assertRaisesRegex(torch_state.FormatError,
                                "cannot be read as a PyTorch file"):
      torch_state.read(read("state.pth")[:-200])


  def test_no_pickle_of_a_legacy_file_runs_code(self):
    # Each of the five pickles in turn, the rest of the file genuine (the
    # first could even return the magic number once it has run).
    parts = legacy_pickles(read("state-legacy.pth"))
    for i in range(5):
      with self.subTest(pickle=i), tempfile.TemporaryDirectory() as tmp:
        marker = os.path.join(tmp, "code-ran")
        evil = parts[:i] + [evil_pickle(f"touch {marker}")] + parts[i + 1:]
        self.assertRegex(refusal(b"".join(evil)),
                         r"^it names (posix|os)\.system, which a state dict "
                         r"of tensors does not hold$")
        self.assertFalse(os.path.exists(marker))

  def test_the_legacy_header_holds_only_plain_data(self):
    parts = legacy_pickles(read("state-legacy.pth"))
    for i, value, message in (
        (0, "not the magic number", "no magic number"),
        (1, [1001], "protocol version is not a number"),
        (2, "system", "system information is not a dict"),
        (2, {"little_endian": False}, "big-endian"),
        (4, ["0", "1", "2", "3", "4", "5"], "not the storages it uses")):
      with self.subTest(pickle=i, value=value):
        changed = parts[:i] + [pickle.dumps(value, 2)] + parts[i + 1:]
        self.assertIn(message, refusal(b"".join(changed)))

  def test_views_read_through_their_geometry(self):
    storage = np.arange(12, dtype="<f4")
    want = np.lib.stride_tricks.as_strided(storage[1:], (2, 3), (4, 16))
    tensors = {"view": ("0", 12, 1, (2, 3), (1, 4)),
               "scalar": ("0", 12, 11, (), ()),
               "empty": ("0", 12, 12, (0, 5), (1, 1))}
    for data in (zip_pth(state_pickle(tensors), {"0": storage.tobytes()}),
                 legacy_pth(state_pickle(tensors, legacy=True),
                            {"0": storage.tobytes()})):
      got = torch_state.read(data)
      np.testing.assert_array_equal(got["view"], want)
      self.assertEqual((got["scalar"].shape, float(got["scalar"])), ((), 11))
      self.assertEqual(got["empty"].shape, (0, 5))

  def test_a_modules_metadata_is_read_past(self):
    # A module's state_dict() is an ordered dict with a `_metadata`
    # attribute (versions per module), which pickle sets by BUILD.
    data_pkl = state_pickle({"w": ("0", 1, 0, (), ())})[:-1] + plain(
        {"_metadata": {"": {"version": 1}, "conv1": {"version": 1}}}) + b"b."
    got = torch_state.read(zip_pth(data_pkl, {"0": floats(3)}))
    self.assertEqual(list(got), ["w"])
    self.assertEqual(float(got["w"]), 3)

  def test_geometry_outside_its_storage_is_refused_before_any_read(self):
    past = r"^a tensor of size .* does not fit its storage of 1$"
    kinds = r"^a tensor's offset, size and stride are not non-negative "
    for size, stride, offset, message in (
        ((64,), (1,), 0, past),           # 63 floats of the heap
        ((2,), (1 << 40,), 0, past),      # 4 TiB past it: a segfault
        ((), (), 5, past),                # a scalar past it
        ((2,), (0,), 0, past),            # expanded: more than it holds
        ((-1,), (1,), 0, kinds),
        ((1,), (-1,), 0, kinds),
        ((1,), (1,), -1, kinds),
        ((1,), (1, 1), 0, kinds),
        ((1.0,), (1,), 0, kinds),
        ((1,) * 33, (1,) * 33, 0, kinds)):
      tensors = {"w": ("0", 1, offset, size, stride)}
      for data in (zip_pth(state_pickle(tensors), {"0": floats(1)}),
                   legacy_pth(state_pickle(tensors, legacy=True),
                              {"0": floats(1)})):
        with self.subTest(size=size, stride=stride, offset=offset):
          self.assertRegex(refusal(data), message)

  def test_storages_must_hold_what_they_declare(self):
    tensors = {"w": ("0", 4, 0, (4,), (1,))}
    self.assertEqual(refusal(zip_pth(state_pickle(tensors),
                                     {"0": floats(1, 2)})),
                     "a storage holds 8 bytes, not the 16 its tensors "
                     "declare")
    self.assertRegex(refusal(zip_pth(state_pickle(tensors),
                                     {"0": floats(1, 2, 3, 4, 5)})),
                     r"^its a/data/0 declares 20 bytes, more than the 16 ")
    self.assertEqual(refusal(zip_pth(state_pickle(tensors), {})),
                     "the zip archive has no a/data/0")
    legacy = legacy_pth(state_pickle(tensors, legacy=True),
                        {"0": floats(1, 2, 3, 4)})
    self.assertEqual(refusal(legacy[:-1]), "it is cut short")
    self.assertEqual(refusal(legacy[:-24] + struct.pack("<q", 3)
                             + floats(1, 2, 3)),
                     "its storage '0' has 3 elements, not the 4 declared")
    huge = {"w": ("0", 1 << 40, 0, (1,), (1,))}
    self.assertRegex(refusal(zip_pth(state_pickle(huge), {"0": floats(1)})),
                     r"^its storages hold more than 268435456 numbers$")

  def test_declared_lengths_allocate_nothing(self):
    for name, data_pkl, message in (
        ("BINBYTES8 of 2**40", b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40),
         r"opcode b'\\x8e', which a state dict's does not use"),
        ("BINUNICODE of 4 GB", b"\x80\x02X\xff\xff\xff\xffab",
         r"^it holds a pickle longer than 4194304 bytes$"),
        ("BINUNICODE of 3 MB", b"\x80\x02X\x00\x00\x30\x00ab",
         r"^it is cut short$"),
        ("memo slot 2**27", b"\x80\x02Nr\x00\x00\x00\x08.",
         r"^it is not a state dict"),
        ("memo slot 2**27, no mark", b"\x80\x02(r\x00\x00\x00\x08.",
         r"stack underflow")):
      with self.subTest(name):
        before = peak_mb()
        self.assertRegex(refusal(zip_pth(data_pkl, {})), message)
        self.assertLess(peak_mb() - before, 100)

  def test_pickles_are_bounded_a_deflate_bomb_by_its_declared_size(self):
    # 64 MiB of zeros deflates to 64 KB; torchvision's whole GoogLeNet
    # pickle is some 40 KB.
    bomb = zip_pth(bytes(64 << 20), {}, zipfile.ZIP_DEFLATED)
    self.assertLess(len(bomb), 100_000)
    before = peak_mb()
    self.assertEqual(refusal(bomb), "its a/data.pkl declares 67108864 "
                     "bytes, more than the 4194304 it may hold")
    self.assertLess(peak_mb() - before, 30)
    text = b"X" + struct.pack("<I", 5 << 20) + bytes(5 << 20) + b"."
    self.assertEqual(refusal(legacy_pth(b"\x80\x02" + text, {})),
                     "it holds a pickle longer than 4194304 bytes")

  def test_storages_cost_what_the_file_holds(self):
    # Review of the fix: a deflated storage inflated 5,000-fold (a 522 KB
    # file, 2.6 GB), and a tensor with no element but a side of 2**27
    # built a 1 GB index. torch.save stores storages uncompressed.
    storage = zip_pth(state_pickle({"w": ("0", 1 << 20, 0, (1 << 20,),
                                          (1,))}),
                      {"0": bytes(4 << 20)}, zipfile.ZIP_DEFLATED)
    self.assertLess(len(storage), 100_000)
    self.assertEqual(refusal(storage), "its a/data/0 is compressed or "
                     "encrypted in a way torch.save does not")
    before = peak_mb()
    empty = torch_state.read(zip_pth(state_pickle(
        {"w": ("0", 1, 0, (0, 1 << 27), (1, 1))}), {"0": bytes(4)}))
    self.assertEqual(empty["w"].shape, (0, 1 << 27))
    self.assertLess(peak_mb() - before, 30)

  def test_shared_tuples_stay_short_and_linear(self):
    # The review's 325-byte file: a persistent id of 24 levels of tuples
    # that share their halves, whose repr is 117 MB.
    dag = b"\x80\x02X\x01\x00\x00\x00aq\x000" + b"h\x00h\x00\x86q\x000" * 24
    refusal(zip_pth(dag + b"h\x00Q.", {}))
    # Without POP (which torch.save does not write), as a persistent id,
    # and as a dict key, whose hash takes as long as the repr.
    dag = b"X\x01\x00\x00\x00aq\x00" + b"h\x00h\x00\x86q\x00" * 24
    self.assertRegex(refusal(zip_pth(b"\x80\x02" + dag + b"Q.", {})),
                     r"^it holds a persistent object \(a tuple\) that is "
                     r"not \('storage', type, key, location, numel\)$")
    self.assertEqual(refusal(zip_pth(
        b"\x80\x02}q\x01" + dag + b"h\x01(h\x00K\x01u.", {})),
                     "its pickle has a dict key that is a tuple")

  def test_messages_are_one_short_printable_line(self):
    name = "\x1b[31m\r\x0b" + "x" * 200
    for data_pkl in (b"\x80\x02c" + name.encode() + b"\nq\n.",
                     b"\x80\x02" + plain(name) + plain("q") + b"\x93."):
      message = refusal(zip_pth(data_pkl, {}))
      self.assertTrue(message.isprintable(), message)
      self.assertIn("it names [31m xxx", message)


if __name__ == "__main__":
  unittest.main()
