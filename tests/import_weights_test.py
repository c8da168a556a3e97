"""The published ImageNet GoogLeNets, imported with a proof
(tools/import_weights.py).

torchvision: its own `googlenet`, built as the published one is
(transform_input=True, auxiliary heads in the state dict), with randomised
weights and batch-normalisation statistics and affine parameters, saved as
the state-dict file its weights API downloads; imported through the command
with an export; the export, served in a process that cannot import this
project, gives torchvision's logits on the same uint8 images (torchvision
through its own preprocessing) within 1e-4 of the largest logit. The
auxiliary heads and a 200-pixel input (where PyTorch's ceil-mode pools
differ from SAME) are compared in process. TF-slim: its own inception_v1
graph, randomised, saved under slim's names (V1, as published, and V2).

The references run from tools/reference_env.sh's folder (`make reference`,
which `make test` runs; GOOGLENET_REFERENCE_DIR names it): without it these
tests skip, saying so. The command's one-line refusals need no reference.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import tensorflow as tf

from core.data import preprocessing
from core.runtime.errors import InputError
from layers.googlenet import GoogLeNet
from tests import helpers
from tests.train.artefacts.export_test import load_in_fresh_process
from tools import import_weights
from tools import torch_state
from train.assembly import finetune

REFERENCE = os.environ.get("GOOGLENET_REFERENCE_DIR", "")
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference")
NAMES = [f"n{i:08d}" for i in range(1000)]  # ImageNet's synset form


def needs_reference(part: str):
  """Skips a class without tools/reference_env.sh's `part`, saying why."""
  return unittest.skipUnless(
      os.path.isfile(os.path.join(REFERENCE, part, ".installed")),
      f"the {part} reference is not set up: `make reference` builds it and "
      "`make test` sets GOOGLENET_REFERENCE_DIR")


def images(seed: int, count: int, side: int) -> np.ndarray:
  """Photos' statistics, roughly: smooth blocks with noise, uint8 NHWC."""
  rng = np.random.default_rng(seed)
  blocks = rng.integers(0, 256, [count, side // 8 + 1, side // 8 + 1, 3])
  big = np.kron(blocks, np.ones([1, 8, 8, 1]))[:, :side, :side]
  return np.clip(big + rng.normal(0, 20, big.shape), 0, 255).astype(np.uint8)


def run(*args: str, python: str = sys.executable, env=None):
  done = subprocess.run([python, *args], cwd=helpers.ROOT, text=True,
                        capture_output=True, timeout=600,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                                 CUDA_VISIBLE_DEVICES="", **(env or {})))
  return done


def import_command(*flags: str):
  return run("-m", "tools.import_weights", *flags)


def relative_gap(got: np.ndarray, want: np.ndarray) -> float:
  return float(np.abs(got - want).max() / np.abs(want).max())


def trunk_and_aux(model: GoogLeNet, x: tf.Tensor):
  """The main head's logits and both auxiliary heads' at inference (what
  torchvision's aux1/aux2 give in eval mode on the maps they read)."""
  h = model.pool1(model.conv1(x))
  h = model.pool2(model.conv2(model.conv2_reduce(h)))
  h = model.blocks["4a"](model.pool3(model.blocks["3b"](
      model.blocks["3a"](h))))
  aux1 = model.aux1(h, training=False)
  for key in ("4b", "4c", "4d"):
    h = model.blocks[key](h)
  aux2 = model.aux2(h, training=False)
  return model(x, training=False).logits, aux1, aux2


@needs_reference("torch")
class TorchvisionImportTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.dir = tempfile.mkdtemp()
    cls.inputs = {224: images(1, 3, 224), 200: images(2, 2, 200)}
    for side, batch in cls.inputs.items():
      np.save(os.path.join(cls.dir, f"images{side}.npy"), batch)
    cls.reference = run(
        os.path.join(HERE, "torchvision_googlenet.py"), cls.dir,
        *(os.path.join(cls.dir, f"images{s}.npy") for s in cls.inputs),
        python=os.path.join(REFERENCE, "torch", "bin", "python"))
    assert cls.reference.returncode == 0, cls.reference.stderr[-3000:]
    names = os.path.join(cls.dir, "names.txt")
    with open(names, "w") as f:
      f.write("\n".join(NAMES) + "\n")
    cls.out = os.path.join(cls.dir, "imported")
    cls.exports = os.path.join(cls.dir, "exports")
    cls.imported = import_command(
        "--source=torchvision",
        "--input=" + os.path.join(cls.dir, "googlenet-random.pth"),
        "--output=" + cls.out, "--export_dir=" + cls.exports,
        "--class_names=" + names)

  def want(self, side: int):
    return np.load(os.path.join(self.dir, f"images{side}.npz"))

  def test_the_command_says_what_it_did(self):
    self.assertEqual(self.imported.returncode, 0,
                     self.imported.stderr[-3000:])
    self.assertRegex(self.imported.stdout, (
        r"^imported 305 variables of the torchvision GoogLeNet \(1000 "
        r"classes\) from .*googlenet-random.pth to .*; train with "
        r"--init_from=\S+ --variant=torchvision\nnote: torchvision's "
        r"auxiliary heads are in its file but were not trained .*\n"
        r"exported \S+/exports/1\n$"))
    self.assertEqual(self.imported.stderr, "")
    record = json.load(open(os.path.join(self.out, "imported.json")))
    self.assertEqual((record["variant"], record["num_classes"],
                      record["class_names"][:2], record["not_in_source"]),
                     ("torchvision", 1000, NAMES[:2], []))
    self.assertEqual((import_weights.IMPORTED, import_weights.CHECKPOINT),
                     (finetune.IMPORTED, finetune.IMPORTED_CHECKPOINT))

  def test_served_logits_are_torchvisions(self):
    self.assertEqual(self.imported.returncode, 0)
    want = self.want(224)
    self.assertEqual(float(want["preprocessing_gap"]), 0.0)
    out = load_in_fresh_process(self, os.path.join(self.exports, "1"),
                                self.inputs[224])
    self.assertLess(relative_gap(out["logits"], want["logits"]), 1e-4)
    self.assertLess(relative_gap(out["bytes_logits"], want["logits"]), 1e-4)
    classes = want["logits"].argmax(axis=1)
    self.assertAllEqual(out["classes"], classes)
    self.assertAllEqual([n.decode() for n in out["class_names"]],
                        [NAMES[c] for c in classes])

  def test_aux_heads_and_ceil_mode_pools_are_torchvisions(self):
    self.assertEqual(self.imported.returncode, 0)
    prefix = os.path.join(self.out, "weights")
    for side in (224, 200):
      model = GoogLeNet(1000, 3, side, norm="batch", variant="torchvision")
      tf.train.Checkpoint(model=model).read(prefix).assert_consumed()
      x = preprocessing.preprocess(tf.constant(self.inputs[side]),
                                   image_size=side, channels=3)
      want = self.want(side)
      for name, got in zip(("logits", "aux1", "aux2"),
                           trunk_and_aux(model, x)):
        self.assertLess(relative_gap(got.numpy(), want[name]), 1e-4,
                        (side, name))
    # The proof tells the architectures apart: at 224 pixels, the same
    # weights in the slim variant (TF's SAME padding of the first
    # convolution; the same shapes there) are far off; at 200, so are
    # SAME pools in place of PyTorch's ceil mode.
    slim = GoogLeNet(1000, 3, 224, norm="batch", variant="slim")
    tf.train.Checkpoint(model=slim).read(prefix).assert_consumed()
    x = preprocessing.preprocess(tf.constant(self.inputs[224]),
                                 image_size=224, channels=3)
    self.assertGreater(relative_gap(
        slim(x, training=False).logits.numpy(), self.want(224)["logits"]),
                       1e-2)
    for pool in (model.pool1, model.pool2, model.pool3, model.pool4):
      pool.ceil_mode, pool.padding = False, "SAME"
    x = preprocessing.preprocess(tf.constant(self.inputs[200]),
                                 image_size=200, channels=3)
    self.assertGreater(relative_gap(
        model(x, training=False).logits.numpy(), self.want(200)["logits"]),
                       1e-2)

  def test_the_users_path_from_the_file_to_their_classes_served(self):
    # README's three commands, as subprocesses: import (setUpClass), a
    # fine-tune of the imported network on a folder of photos (small
    # images: the imported weights fit any size), predict on a photo.
    self.assertEqual(self.imported.returncode, 0)
    photos, run_dir = (os.path.join(self.dir, d) for d in ("photos", "run"))
    helpers.write_image_folder(photos, channels=3, per_class=4,
                               splits=("train", "validation"))
    done = helpers.cli([
        "--dataset=folder", "--data_dir=" + photos, "--init_from=" + self.out,
        "--variant=torchvision", "--trainable=from:inception_5a",
        "--image_size=64", "--global_batch_size=4", "--norm_group_size=2",
        "--train_steps=1", "--steps_per_loop=1", "--model_dir=" + run_dir])
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    self.assertRegex(done.stdout, (
        r"init: loaded 299 variables from \S+ \(imported torchvision "
        r"weights, --variant=torchvision\)\ninit: 6 variables start afresh "
        r"\(another class count\)"))
    manifest = json.load(open(os.path.join(run_dir, "manifest.json")))
    self.assertEqual(manifest["flags"]["variant"], "torchvision")
    self.assertEqual(manifest["initialised_from"]["loaded"], 299)
    photo = os.path.join(photos, "validation", "eel", "000.png")
    done = run("-m", "train.predict", "--saved_model=" + os.path.join(
        run_dir, "export", "1"), "--output=json", photo)
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    self.assertIn(json.loads(done.stdout)["classes"][0]["name"],
                  ("cat", "dog", "eel"))

  def test_legacy_format_reads_the_same_tensors(self):
    read = lambda name: torch_state.read(open(os.path.join(self.dir, name),
                                              "rb").read())
    new, legacy = read("googlenet-random.pth"), read(
        "googlenet-random-legacy.pth")
    self.assertEqual(sorted(new), sorted(legacy))
    # 305 weights and statistics; 59 batch normalisations' counters.
    self.assertEqual(len(new), 364)
    for key in new:
      np.testing.assert_array_equal(new[key], legacy[key], key)

  def test_fine_tuning_starts_from_the_import(self):
    self.assertEqual(self.imported.returncode, 0)
    model = GoogLeNet(5, 3, 224, norm="batch", variant="torchvision")
    loaded = finetune.initialise(model, self.out, class_names=list("abcde"))
    self.assertEqual(loaded.kind,
                     "imported torchvision weights, --variant=torchvision")
    self.assertLen(loaded.loaded, 299)
    self.assertEqual(sorted(k for k, _ in loaded.fresh), sorted(
        f"{h}/{v}" for h in ("classifier", "aux1/classifier",
                             "aux2/classifier") for v in ("bias", "kernel")))
    paper = GoogLeNet(5, 3, 224, norm="batch")
    with self.assertRaisesRegex(InputError, (
        r"^`init_from` '.*' holds torchvision's ImageNet GoogLeNet, which "
        r"needs its architecture: add --variant=torchvision \(this run has "
        r"--variant=paper\)\.$")):
      finetune.initialise(paper, self.out)
    # A shape that differs within the variant is named as for any source.
    torch = GoogLeNet(5, 1, 224, norm="batch", variant="torchvision")
    with self.assertRaisesRegex(InputError, (
        r"\(imported torchvision weights, --variant=torchvision\) does not "
        r"fit this model: 1 variable\(s\) outside the heads do not match "
        r"\(conv1/kernel: shape \[7, 7, 1, 64\] here, \[7, 7, 3, 64\] "
        r"there\); use the same --variant")):
      finetune.initialise(torch, self.out)


@needs_reference("slim")
class SlimImportTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.dir = tempfile.mkdtemp()
    cls.inputs = images(3, 3, 224)
    np.save(os.path.join(cls.dir, "images.npy"), cls.inputs)
    cls.reference = run(
        os.path.join(HERE, "slim_inception_v1.py"), cls.dir,
        os.path.join(cls.dir, "images.npy"),
        env={"PYTHONPATH": os.path.join(REFERENCE, "slim")})
    assert cls.reference.returncode == 0, cls.reference.stderr[-3000:]
    names = os.path.join(cls.dir, "names.txt")
    with open(names, "w") as f:
      f.write("\n".join(NAMES) + "\n")  # 1,000: background is added
    cls.out, cls.exports = (os.path.join(cls.dir, d)
                            for d in ("imported", "exports"))
    cls.imported = import_command(
        "--source=slim", "--input=" + os.path.join(cls.dir,
                                                   "inception_v1.ckpt"),
        "--output=" + cls.out, "--export_dir=" + cls.exports,
        "--class_names=" + names)

  def test_served_logits_are_slims(self):
    self.assertEqual(self.imported.returncode, 0,
                     self.imported.stderr[-3000:])
    self.assertRegex(self.imported.stdout, (
        r"^imported 287 variables of the slim GoogLeNet \(1001 classes\).*\n"
        r"18 variables are not in the source and keep their initial values "
        r"\(the auxiliary heads\): aux1/"))
    want = np.load(os.path.join(self.dir, "slim.npz"))["logits"]
    out = load_in_fresh_process(self, os.path.join(self.exports, "1"),
                                self.inputs)
    self.assertLess(relative_gap(out["logits"], want), 1e-4)
    classes = want.argmax(axis=1)
    self.assertAllEqual([n.decode() for n in out["class_names"]],
                        [(["background"] + NAMES)[c] for c in classes])

  def test_v2_checkpoint_reads_the_same_and_aux_heads_start_afresh(self):
    # The V2 copy of the same variables reads as the V1 file does (the
    # command takes either through read_source).
    v1, _ = import_weights.read_source(
        "slim", os.path.join(self.dir, "inception_v1.ckpt"))
    v2, _ = import_weights.read_source(
        "slim", os.path.join(self.dir, "v2", "inception_v1.ckpt"))
    self.assertEqual(sorted(v1.tensors), sorted(v2.tensors))
    self.assertEqual(len(v1.tensors), 230)  # slim's variables, no step
    for name, value in v1.tensors.items():
      np.testing.assert_array_equal(value, v2.tensors[name], name)
    model = GoogLeNet(7, 3, 224, norm="batch", variant="slim")
    loaded = finetune.initialise(model, self.out)
    self.assertLen(loaded.loaded, 285)  # all but the 1,001-way classifier
    self.assertIn(("aux1/fc/kernel", "not in the source"), loaded.fresh)


class ImportRefusalsTest(unittest.TestCase):
  """Bad input: one line, exit 2, nothing written."""

  def test_one_line_each(self):
    tmp = tempfile.mkdtemp()
    text = os.path.join(tmp, "notes.pth")
    with open(text, "w") as f:
      f.write("not weights\n")
    other = os.path.join(os.path.dirname(__file__), "data", "torch_state",
                         "state.pth")
    out = os.path.join(tmp, "out")
    cases = [
        (["--source=torchvision", "--input=" + text],
         r"`input` '.*notes.pth' is not a PyTorch state dict: it cannot be "
         r"read as a PyTorch file"),
        (["--source=torchvision", "--input=" + other],
         r"`input` '.*state.pth' has no tensor 'conv1.conv.weight': it is "
         r"not torchvision's GoogLeNet state dict\."),
        (["--source=torchvision", "--input=" + text, "--output=" + tmp],
         r"`output` '.*' exists; choose a new folder\."),
    ]
    for flags, message in cases:
      if not any(f.startswith("--output") for f in flags):
        flags = flags + ["--output=" + out]
      done = import_command(*flags)
      self.assertEqual(done.returncode, 2, (flags, done.stderr))
      self.assertRegex(done.stderr, "^error: " + message, flags)
      self.assertEqual(done.stderr.count("\n"), 1, done.stderr)
      self.assertFalse(os.path.exists(out))
    self.assertEqual(sorted(os.listdir(tmp)), ["notes.pth"])
    # The checkpoint's refusals, in process (the command prints them as
    # the ones above).
    for path, message in (
        (text, r"`input` '.*notes.pth' is not a TF checkpoint \(neither a V2 "
               r"prefix with notes.pth.index beside it nor a V1 file\)"),
        (os.path.join(tmp, "missing.ckpt"),
         r"`input` '.*missing.ckpt' is not a TF checkpoint .*: no such "
         r"file\.")):
      with self.assertRaisesRegex(InputError, message):
        import_weights.read_source("slim", path)

  def test_importable_beside_the_other_tools(self):
    # Its flags are defined when it runs, not on import: another tool's
    # --output in the same process (the test process) does not collide.
    import importlib  # pylint: disable=g-import-not-at-top
    for name in ("tools.imagenet_like", "tools.import_weights"):
      importlib.import_module(name)


if __name__ == "__main__":
  tf.test.main()
