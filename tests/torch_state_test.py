"""tools/torch_state.py reads torch.save's files without PyTorch: files that
PyTorch 2.14.1 wrote (tests/data/torch_state, made by
tests/reference/torch_state_fixtures.py), in both formats."""

import os
import pickle
import unittest
import zipfile
import io

import numpy as np

from tools import torch_state

DATA = os.path.join(os.path.dirname(__file__), "data", "torch_state")


def read(name: str) -> bytes:
  with open(os.path.join(DATA, name), "rb") as f:
    return f.read()


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


if __name__ == "__main__":
  unittest.main()
