"""Imports the published ImageNet GoogLeNet weights for `--init_from`.

  python -m tools.import_weights --source=torchvision \\
      --input=googlenet-1378be20.pth --output=DIR [--export_dir=EXPORTS]
  python -m tools.import_weights --source=slim \\
      --input=inception_v1.ckpt --output=DIR [--export_dir=EXPORTS]

`--source=torchvision` reads the state-dict file torchvision's weights API
downloads (`GoogLeNet_Weights.IMAGENET1K_V1`, `googlenet-1378be20.pth`)
without PyTorch (tools/torch_state.py); `--source=slim` reads TF-slim's
`inception_v1` checkpoint (`inception_v1_2016_08_28.tar.gz`, by its prefix).
Each builds this engine's GoogLeNet in the architecture of that network
(`--variant`, layers/googlenet.py; their differences from the paper are in
BUILD.md) and assigns every tensor by name, so the model computes what the
source computes (tests/import_weights_test.py shows it against
torchvision's own forward pass and TF-slim's own graph). Both expect pixels
scaled to [-1, 1], which is this engine's preprocessing: torchvision's
`transform_input=True` turns its ImageNet-normalised input into exactly
that.

Written to `--output` (a new folder): the checkpoint `weights` and
`imported.json` (source, file digest, variant, classes), which
`train.main --init_from=DIR --variant=...` reads. With `--export_dir`, also
a SavedModel version in the serving layout (`train.predict` and TF Serving
take it), with the class names of `--class_names` (a file, one per line;
TF-slim's 1,001 classes put "background" at 0, added when 1,000 are given).

What stays fresh is said: TF-slim's checkpoint has no auxiliary heads, and
torchvision's are in the file but were not trained (its documentation says
so); fine-tuning trains them from the new data either way. Bad input is one
line on stderr and exit 2.
"""

import hashlib
import json
import os
import sys
from typing import Callable, Dict, List, Optional, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import numpy as np

from core.runtime import errors
from core.runtime import files
from train.startup.config import BLOCKS  # no TensorFlow: flags parse first
from train.startup import native_stderr

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command's flags; defined when it runs, so that tests (and other
  tools' flags in the same process) can import this module."""
  flags.DEFINE_enum("source", None, ["torchvision", "slim"],
                    "Whose file --input is.")
  flags.DEFINE_string("input", None, "torchvision: the .pth state-dict file; "
                      "slim: the checkpoint's prefix (inception_v1.ckpt).")
  flags.DEFINE_string("output", None, "A new folder for the checkpoint.")
  flags.DEFINE_string("export_dir", None, "Also export a SavedModel here.")
  flags.DEFINE_integer("export_version", 1, "The exported version's number.")
  flags.DEFINE_string("class_names", None, "A text file of class names, one "
                      "per line, in the model's class order.")
  flags.DEFINE_integer("image_size", 224, "Side of the model's input.")


# train/assembly/finetune.py's IMPORTED and IMPORTED_CHECKPOINT (a test
# checks), here so that the flags parse before TensorFlow loads.
IMPORTED, CHECKPOINT = "imported.json", "weights"
# Our branch -> torchvision's module path inside a block.
_TORCH_BRANCHES = {"branch1x1": "branch1", "branch3x3_reduce": "branch2.0",
                   "branch3x3": "branch2.1", "branch5x5_reduce": "branch3.0",
                   "branch5x5": "branch3.1", "branch_pool": "branch4.1"}
_SLIM_BLOCKS = dict(zip(BLOCKS, ("Mixed_3b", "Mixed_3c", "Mixed_4b",
                                 "Mixed_4c", "Mixed_4d", "Mixed_4e",
                                 "Mixed_4f", "Mixed_5b", "Mixed_5c")))
_SLIM_BRANCHES = {"branch1x1": "Branch_0/Conv2d_0a_1x1",
                  "branch3x3_reduce": "Branch_1/Conv2d_0a_1x1",
                  "branch3x3": "Branch_1/Conv2d_0b_3x3",
                  "branch5x5_reduce": "Branch_2/Conv2d_0a_1x1",
                  "branch5x5": "Branch_2/Conv2d_0b_3x3",
                  "branch_pool": "Branch_3/Conv2d_0b_1x1"}

# (name, shape) -> value: a tensor of the input, refused unless it has that
# shape (None: any size there; the model checks the result).
Getter = Callable[[str, Tuple[Optional[int], ...]], np.ndarray]
_ANY4, _ANY2, _ANY1 = (None,) * 4, (None,) * 2, (None,)


def torchvision_convs() -> Dict[str, str]:
  """Our conv layer -> torchvision's BasicConv2d path."""
  convs = {"conv1": "conv1", "conv2_reduce": "conv2", "conv2": "conv3",
           "aux1/conv": "aux1.conv", "aux2/conv": "aux2.conv"}
  for block in BLOCKS:
    for ours, theirs in _TORCH_BRANCHES.items():
      convs[f"inception_{block}/{ours}"] = f"inception{block}.{theirs}"
  return convs


def slim_convs() -> Dict[str, str]:
  """Our conv layer -> TF-slim's scope (without `InceptionV1/`)."""
  convs = {"conv1": "Conv2d_1a_7x7", "conv2_reduce": "Conv2d_2b_1x1",
           "conv2": "Conv2d_2c_3x3"}
  for block, mixed in _SLIM_BLOCKS.items():
    for ours, theirs in _SLIM_BRANCHES.items():
      convs[f"inception_{block}/{ours}"] = f"{mixed}/{theirs}"
  # TF-slim's own name for this one convolution (nets/inception_v1.py).
  convs["inception_5a/branch5x5"] = "Mixed_5b/Branch_2/Conv2d_0a_3x3"
  return convs


def from_torchvision(get: Getter) -> Dict[str, np.ndarray]:
  """{our variable key: value} from a torchvision GoogLeNet state dict."""
  out = {}
  for ours, theirs in torchvision_convs().items():
    out[f"{ours}/kernel"] = get(f"{theirs}.conv.weight", _ANY4).transpose(
        2, 3, 1, 0)
    for key, name in (("gamma", "weight"), ("beta", "bias"),
                      ("moving_mean", "running_mean"),
                      ("moving_variance", "running_var")):
      out[f"{ours}/batch_norm/{key}"] = get(f"{theirs}.bn.{name}", _ANY1)
  for aux in ("aux1", "aux2"):
    channels = out[f"{aux}/conv/kernel"].shape[3]  # 128, from its conv
    fc1 = get(f"{aux}.fc1.weight", (None, channels * 16))  # NCHW, 4 x 4
    units = fc1.shape[0]
    out[f"{aux}/fc/kernel"] = fc1.reshape(units, channels, 4, 4).transpose(
        2, 3, 1, 0).reshape(-1, units)  # rows in our NHWC flattening
    out[f"{aux}/fc/bias"] = get(f"{aux}.fc1.bias", _ANY1)
    out[f"{aux}/classifier/kernel"] = get(f"{aux}.fc2.weight", _ANY2).T
    out[f"{aux}/classifier/bias"] = get(f"{aux}.fc2.bias", _ANY1)
  out["classifier/kernel"] = get("fc.weight", _ANY2).T
  out["classifier/bias"] = get("fc.bias", _ANY1)
  return out


def from_slim(get: Getter, has: Callable[[str], bool]) -> Dict[str, np.ndarray]:
  """{our variable key: value} from a TF-slim inception_v1 checkpoint (its
  batch normalisation has no scale: gamma is 1)."""
  out = {}
  for ours, theirs in slim_convs().items():
    scope = f"InceptionV1/{theirs}"
    out[f"{ours}/kernel"] = get(f"{scope}/weights", _ANY4)
    beta = get(f"{scope}/BatchNorm/beta", _ANY1)
    out[f"{ours}/batch_norm/gamma"] = (
        get(f"{scope}/BatchNorm/gamma", _ANY1)
        if has(f"{scope}/BatchNorm/gamma") else np.ones_like(beta))
    out[f"{ours}/batch_norm/beta"] = beta
    for key in ("moving_mean", "moving_variance"):
      out[f"{ours}/batch_norm/{key}"] = get(f"{scope}/BatchNorm/{key}",
                                            _ANY1)
  logits = get("InceptionV1/Logits/Conv2d_0c_1x1/weights", (1, 1, None, None))
  out["classifier/kernel"] = logits[0, 0]
  out["classifier/bias"] = get("InceptionV1/Logits/Conv2d_0c_1x1/biases",
                               _ANY1)
  return out


class _Source:
  """The input's tensors by name; records which were read."""

  def __init__(self, path: str, tensors: Dict[str, np.ndarray], what: str):
    self.path, self.tensors, self.what, self.used = path, tensors, what, set()

  def get(self, name: str, shape: Tuple[Optional[int], ...]) -> np.ndarray:
    if name not in self.tensors:
      raise errors.InputError(
          f"`input` {self.path!r} has no tensor {name!r}: it is not "
          f"{self.what}.")
    value = np.asarray(self.tensors[name], np.float32)
    if len(value.shape) != len(shape) or any(
        want not in (None, got) for got, want in zip(value.shape, shape)):
      wanted = ", ".join("*" if n is None else str(n) for n in shape)
      raise errors.InputError(
          f"`input` {self.path!r}: {name} has shape {list(value.shape)}, "
          f"where {self.what} has [{wanted}].")
    self.used.add(name)
    return value

  def unused(self) -> List[str]:
    return sorted(n for n in self.tensors if n not in self.used
                  and not n.endswith("num_batches_tracked")
                  and n != "global_step")


def read_source(source: str, path: str) -> Tuple[_Source, str]:
  """The input's tensors and its SHA-256 (of the .pth, or the .index)."""
  if source == "torchvision":
    from tools import torch_state  # pylint: disable=g-import-not-at-top
    if not files.isfile(path):
      raise errors.InputError(f"`input` {path!r} is not a file.")
    try:
      data = files.read_bytes(path)
    except OSError as e:
      raise errors.InputError(f"`input` {path!r} cannot be read "
                              f"({_reason(e)}).") from None
    try:
      tensors = torch_state.read(data)
    except torch_state.FormatError as e:
      raise errors.InputError(f"`input` {path!r} is not a PyTorch state "
                              f"dict: {e}.") from None
    return (_Source(path, tensors, "torchvision's GoogLeNet state dict"),
            hashlib.sha256(data).hexdigest())
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # V2 (a prefix with .index and .data files) or V1 (one file, as the
  # published inception_v1_2016_08_28.tar.gz holds).
  index = path + ".index" if files.exists(path + ".index") else path
  try:
    if not files.isfile(index):
      raise ValueError("no such file")
    reader = tf.train.load_checkpoint(path)
    tensors = {name: reader.get_tensor(name)
               for name in reader.get_variable_to_shape_map()}
  except (ValueError, tf.errors.OpError) as e:
    detail = str(e).strip().splitlines()[0] if str(e).strip() else ""
    raise errors.InputError(
        f"`input` {path!r} is not a TF checkpoint (neither a V2 prefix with "
        f"{os.path.basename(path)}.index beside it nor a V1 file): "
        f"{detail[:200]}.") from None
  return (_Source(path, tensors, "TF-slim's inception_v1 checkpoint"),
          hashlib.sha256(files.read_bytes(index)).hexdigest())


def class_names(path: Optional[str], count: int, source: str) -> List[str]:
  """The classes' names: from the file, or their numbers."""
  if path is None:
    return [str(i) for i in range(count)]
  try:
    text = files.read_text(path)
  except (OSError, UnicodeError) as e:
    raise errors.InputError(f"`class_names` {path!r} cannot be read as "
                            f"UTF-8 text ({_reason(e)}).") from None
  names = [line.strip() for line in text.splitlines() if line.strip()]
  if source == "slim" and len(names) == count - 1:
    names = ["background"] + names  # TF-slim's class 0
  if len(names) != count:
    raise errors.InputError(
        f"`class_names` {path!r} has {len(names)} names; the weights have "
        f"{count} classes" + (" (TF-slim's 1,001: background, then "
                              "ImageNet's 1,000)" if source == "slim"
                              else "") + ".")
  return names


def build(source: str, values: Dict[str, np.ndarray], image_size: int):
  """Our model of `source`'s variant holding `values`; returns (model,
  fresh variable keys)."""
  from layers.googlenet import GoogLeNet  # pylint: disable=g-import-not-at-top
  from train.assembly import finetune  # pylint: disable=g-import-not-at-top
  num_classes = values["classifier/bias"].shape[0]
  if not num_classes:
    raise errors.InputError("the weights' classifier has no class (a bias of "
                            "shape [0]): they are not an ImageNet GoogLeNet.")
  model = GoogLeNet(num_classes, 3, image_size, norm="batch", variant=source)
  fresh = []
  for variable in model.variables:
    key = finetune.key_of(variable.name)
    if key not in values:
      fresh.append(key)
      continue
    if tuple(values[key].shape) != tuple(variable.shape):
      raise errors.InputError(
          f"`input` {FLAGS.input!r}: {key} has shape "
          f"{list(values[key].shape)}, the {source} GoogLeNet's is "
          f"{list(variable.shape)}.")
    variable.assign(values[key])
  return model, fresh


def write(model, output: str, record: dict) -> None:
  """The checkpoint and imported.json, into a new folder `output`.

  Raises:
    InputError: `output` cannot be written, or appeared meanwhile.
    NoSpaceError: The disk filled up.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tmp = output.rstrip("/") + f".tmp-{os.getpid()}"
  try:
    files.makedirs(tmp)
    with files.literal(os.path.join(tmp, CHECKPOINT)) as prefix:
      tf.train.Checkpoint(model=model).write(prefix)
    files.write_atomic(os.path.join(tmp, IMPORTED),
                       json.dumps(record, indent=1) + "\n")
    files.move(tmp, output)
  except (OSError, tf.errors.OpError) as e:
    if errors.is_no_space(e):
      raise errors.NoSpaceError(f"no space left to write `output` "
                                f"{output!r}; free space and rerun.") from None
    if files.exists(output):  # rename(2): EEXIST, or ENOTEMPTY for a folder
      raise errors.InputError(f"`output` {output!r} was created while the "
                              "import ran; choose a new folder.") from None
    raise errors.InputError(f"`output` {output!r} cannot be written "
                            f"({_reason(e)}).") from None
  finally:
    if files.exists(tmp):  # the move did not happen: leave no half copy
      files.rmtree(tmp)


def _reason(error: Exception) -> str:
  """An OSError's, TensorFlow's or a decoder's reason, on one line."""
  text = getattr(error, "strerror", None) or getattr(
      error, "message", None) or str(error)
  return " ".join(text.split())[:200]


def run() -> List[str]:
  """Does the import; returns the lines to print."""
  source_name, path = FLAGS.source, FLAGS.input
  source, digest = read_source(source_name, path)
  values = (from_torchvision(source.get) if source_name == "torchvision"
            else from_slim(source.get, lambda n: n in source.tensors))
  names = class_names(FLAGS.class_names, values["classifier/bias"].shape[0],
                      source_name)  # before the model: it takes a while
  model, fresh = build(source_name, values, FLAGS.image_size)
  record = {"source": source_name, "input": path, "input_sha256": digest,
            "variant": source_name, "num_classes": model.num_classes,
            "image_size": FLAGS.image_size, "class_names": names,
            "checkpoint": CHECKPOINT, "not_in_source": fresh}
  write(model, FLAGS.output, record)
  lines = [f"imported {len(values)} variables of the {source_name} "
           f"GoogLeNet ({model.num_classes} classes) from {path} to "
           f"{FLAGS.output}; train with --init_from={FLAGS.output} "
           f"--variant={source_name}"]
  if source_name == "torchvision":
    lines.append("note: torchvision's auxiliary heads are in its file but "
                 "were not trained (its documentation says so); "
                 "fine-tuning trains them")
  if fresh:
    lines.append(f"{len(fresh)} variables are not in the source and keep "
                 f"their initial values (the auxiliary heads): "
                 f"{', '.join(fresh[:2])} ...")
  if source.unused():
    lines.append(f"{len(source.unused())} tensors of the source were not "
                 f"used: {', '.join(source.unused()[:3])}")
  if FLAGS.export_dir:
    lines.append(_export(model, names, record))
  return lines


def _export(model, names: List[str], record: dict) -> str:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from train.artefacts import export as export_lib  # pylint: disable=g-import-not-at-top
  version = FLAGS.export_version
  try:
    written = export_lib.export(
        model, FLAGS.export_dir, version, image_shape=(None, None, 3),
        class_names=names,
        metadata={"dataset": f"imagenet ({record['source']})",
                  "class_names": names, "image_shape": [None, None, 3],
                  "image_size": FLAGS.image_size, "global_step": 0,
                  "imported_from": {k: record[k] for k in (
                      "source", "input", "input_sha256", "variant")}})
  except (OSError, tf.errors.OpError) as e:
    raise errors.InputError(
        f"`export_dir` {FLAGS.export_dir!r} cannot be written "
        f"({_reason(e)}); the import itself is in {FLAGS.output}.") from None
  return (f"exported {written}" if written else
          f"{FLAGS.export_dir} already holds these weights")


def main(argv) -> int:
  del argv
  native_stderr.import_tensorflow_quietly()  # its start-up lines, filtered
  logging.set_verbosity(logging.WARNING)  # TF's INFO lines while saving
  try:
    for flag in ("source", "input", "output"):
      if not getattr(FLAGS, flag):
        raise errors.InputError(f"--{flag} is required.")
    for flag in ("input", "output", "export_dir", "class_names"):
      if getattr(FLAGS, flag):
        files.check_scheme(getattr(FLAGS, flag), flag)
    if files.exists(FLAGS.output):
      raise errors.InputError(f"`output` {FLAGS.output!r} exists; choose a "
                              "new folder.")
    if FLAGS.image_size < 32 or FLAGS.export_version < 1:
      raise errors.InputError("`image_size` must be at least 32 and "
                              "`export_version` positive.")
    for line in run():
      print(line)
  except errors.EngineError as e:
    print(f"error: {e}", file=sys.stderr)
    return e.exit_code
  return 0


if __name__ == "__main__":
  define_flags()
  app.run(lambda argv: sys.exit(main(argv)))
