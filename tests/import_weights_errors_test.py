"""tools/import_weights.py on bad input, without the references: each
tensor's shape is checked by name before it is transposed or reshaped, and
unreadable class names, unwritable or contested outputs and export folders
are one InputError line (exit 2), never a traceback. Permission cases are
made with a regular file where a folder should be, which refuses root too."""

import os
import re
import tempfile
import unittest
from typing import Dict

import numpy as np
import tensorflow as tf

from core.runtime.errors import InputError
from layers.googlenet import GoogLeNet
from tests import helpers
from tests.torch_state_test import state_pickle, zip_pth
from tools import import_weights
from train.assembly import finetune

TORCH = "torchvision's GoogLeNet state dict"


def torchvision_shapes(num_classes: int) -> Dict[str, tuple]:
  """The names and shapes of torchvision's GoogLeNet state dict, from our
  model's variables (the layouts from_torchvision converts)."""
  model = GoogLeNet(num_classes, 3, 224, norm="batch", variant="torchvision")
  ours = {finetune.key_of(v.name): tuple(v.shape) for v in model.variables}
  shapes = {}
  for conv, theirs in import_weights.torchvision_convs().items():
    h, w, i, o = ours[f"{conv}/kernel"]
    shapes[f"{theirs}.conv.weight"] = (o, i, h, w)
    for name in ("weight", "bias", "running_mean", "running_var"):
      shapes[f"{theirs}.bn.{name}"] = (o,)
  for aux in ("aux1", "aux2"):
    rows, units = ours[f"{aux}/fc/kernel"]
    shapes.update({f"{aux}.fc1.weight": (units, rows),
                   f"{aux}.fc1.bias": (units,),
                   f"{aux}.fc2.weight": (num_classes, units),
                   f"{aux}.fc2.bias": (num_classes,)})
  shapes["fc.weight"] = (num_classes, ours["classifier/kernel"][0])
  shapes["fc.bias"] = (num_classes,)
  return shapes


def zeros_pth(shapes: Dict[str, tuple]) -> bytes:
  """A zip-format state dict of zeros of `shapes`, every tensor a view of
  one storage (stored, as torch.save stores it: a deflated storage is
  refused)."""
  numel = max(int(np.prod(s)) for s in shapes.values())
  tensors = {name: ("0", numel, 0, shape,
                    tuple(int(np.prod(shape[i + 1:]))
                          for i in range(len(shape))))
             for name, shape in shapes.items()}
  return zip_pth(state_pickle(tensors), {"0": bytes(4 * numel)})


def source(tensors: Dict[str, tuple], what: str = TORCH):
  return import_weights._Source(  # pylint: disable=protected-access
      "in.pth", {n: np.zeros(s, np.float32) for n, s in tensors.items()},
      what)


def import_command(*flags: str):
  return helpers.python("-m", "tools.import_weights", *flags)


class ShapeChecksTest(unittest.TestCase):
  """Ranks are known by name; a rank the conversion cannot take is named."""

  def torchvision(self, **changed) -> Dict[str, tuple]:
    # Every tensor at its rank, sizes 1 (the model checks sizes later);
    # the aux heads' conv has 2 channels, so fc1 flattens 2 x 4 x 4.
    shapes = {}
    for theirs in import_weights.torchvision_convs().values():
      shapes[f"{theirs}.conv.weight"] = (1, 1, 1, 1)
      for name in ("weight", "bias", "running_mean", "running_var"):
        shapes[f"{theirs}.bn.{name}"] = (1,)
    for aux in ("aux1", "aux2"):
      shapes.update({f"{aux}.conv.conv.weight": (2, 1, 1, 1),
                     f"{aux}.fc1.weight": (3, 32), f"{aux}.fc1.bias": (3,),
                     f"{aux}.fc2.weight": (5, 3), f"{aux}.fc2.bias": (5,)})
    shapes.update({"fc.weight": (5, 1), "fc.bias": (5,)})
    return dict(shapes, **changed)

  def test_torchvision_ranks_are_checked_before_any_transpose(self):
    values = import_weights.from_torchvision(source(self.torchvision()).get)
    self.assertEqual(values["aux1/fc/kernel"].shape, (32, 3))
    for name, shape, want in (
        ("conv1.conv.weight", (64,), "[*, *, *, *]"),
        ("inception4a.branch2.1.bn.running_var", (), "[*]"),
        ("aux1.fc1.weight", (3, 31), "[*, 32]"),  # not 2 x 4 x 4
        ("fc.weight", (5, 1, 1), "[*, *]")):
      with self.subTest(name):
        changed = self.torchvision(**{name: shape})
        message = (f"`input` 'in.pth': {name} has shape {list(shape)}, "
                   f"where {TORCH} has {want}.")
        with self.assertRaisesRegex(InputError, f"^{re.escape(message)}$"):
          import_weights.from_torchvision(source(changed).get)

  def test_slim_ranks_are_checked_before_any_reshape(self):
    what = "TF-slim's inception_v1 checkpoint"
    shapes = {}
    for theirs in import_weights.slim_convs().values():
      scope = f"InceptionV1/{theirs}"
      shapes[f"{scope}/weights"] = (1, 1, 1, 1)
      for name in ("beta", "moving_mean", "moving_variance"):
        shapes[f"{scope}/BatchNorm/{name}"] = (1,)
    logits = "InceptionV1/Logits/Conv2d_0c_1x1"
    shapes.update({f"{logits}/weights": (1, 1, 4, 7),
                   f"{logits}/biases": (7,)})
    tensors = source(shapes, what)
    values = import_weights.from_slim(tensors.get,
                                      lambda n: n in tensors.tensors)
    self.assertEqual(values["classifier/kernel"].shape, (4, 7))
    shapes[f"{logits}/weights"] = (2, 1, 4, 7)  # not a 1 x 1 convolution
    tensors = source(shapes, what)
    with self.assertRaisesRegex(
        InputError, rf"^`input` 'in.pth': {logits}/weights has shape "
        rf"\[2, 1, 4, 7\], where {what} has \[1, 1, \*, \*\]\.$"):
      import_weights.from_slim(tensors.get, lambda n: n in tensors.tensors)


class FilesTest(tf.test.TestCase):
  """Class names, --output and --export_dir: one line each."""

  def test_class_names_that_cannot_be_read(self):
    tmp = self.get_temp_dir()
    binary = os.path.join(tmp, "names.bin")
    with open(binary, "wb") as f:
      f.write(b"\xff\xfe cat\n")
    for path, reason in ((os.path.join(tmp, "missing.txt"),
                          "No such file or directory|not found"),
                         (binary, "'utf-8' codec can't decode byte 0xff")):
      with self.assertRaisesRegex(InputError, (
          rf"^`class_names` '{path}' cannot be read as UTF-8 text "
          rf"\(.*({reason}).*\)\.$")):
        import_weights.class_names(path, 2, "torchvision")

  def test_an_output_that_cannot_be_written_or_appears_meanwhile(self):
    model = tf.Module()
    model.kernel = tf.Variable([1.0])
    tmp = self.get_temp_dir()
    a_file = os.path.join(tmp, "a-file")
    open(a_file, "w").close()
    with self.assertRaisesRegex(InputError, (
        rf"^`output` '{a_file}/out' cannot be written \(.*not a "
        r"directory.*\)\.$")):
      import_weights.write(model, os.path.join(a_file, "out"), {})
    # Another command made the folder after main's check: the move refuses
    # to replace it, and nothing of this import is left beside it.
    taken = os.path.join(tmp, "taken")
    os.makedirs(os.path.join(taken, "theirs"))
    with self.assertRaisesRegex(InputError, (
        rf"^`output` '{taken}' was created while the import ran; choose a "
        r"new folder\.$")):
      import_weights.write(model, taken, {})
    self.assertEqual(sorted(os.listdir(tmp)), ["a-file", "taken"])
    self.assertEqual(os.listdir(taken), ["theirs"])

  def test_a_classifier_without_a_class_is_one_line(self):
    with self.assertRaisesRegex(InputError, r"^the weights' classifier has "
                                r"no class \(a bias of shape \[0\]\)"):
      import_weights.build("torchvision", {
          "classifier/bias": np.zeros([0], np.float32)}, 224)

  def test_the_command_says_one_line(self):
    # torchvision's names and shapes, zeros: it imports; then an export
    # folder under a regular file fails after the import is written.
    tmp = tempfile.mkdtemp()
    pth = os.path.join(tmp, "zeros.pth")
    with open(pth, "wb") as f:
      f.write(zeros_pth(torchvision_shapes(10)))
    flat = os.path.join(tmp, "flat.pth")
    with open(flat, "wb") as f:
      f.write(zeros_pth({"conv1.conv.weight": (64,)}))
    a_file = os.path.join(tmp, "a-file")
    open(a_file, "w").close()
    out = os.path.join(tmp, "out")
    for flags, message in (
        (["--input=" + flat, "--output=" + out],
         rf"`input` '{flat}': conv1.conv.weight has shape \[64\], where "
         rf"{TORCH} has \[\*, \*, \*, \*\]\."),
        (["--input=" + pth, "--output=" + out,
          "--export_dir=" + os.path.join(a_file, "exports")],
         rf"`export_dir` '{a_file}/exports' cannot be written \(.*not a "
         rf"directory.*\); the import itself is in {out}\.")):
      done = import_command("--source=torchvision", *flags)
      self.assertEqual(done.returncode, 2, done.stderr[-2000:])
      self.assertRegex(done.stderr, rf"^error: {message}\n$")
    self.assertTrue(os.path.isfile(os.path.join(out, "imported.json")))


if __name__ == "__main__":
  tf.test.main()
