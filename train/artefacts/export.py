"""SavedModel export for TF Serving (the object and its signatures:
serving.py): written aside, checked, published atomically.

Layout: `<export_dir>/<version>/saved_model.pb` + `variables/`, version = the
global step. The SavedModel is written to
`<export_dir>/.tmp-<version>-<host>-<pid>` (a name TF Serving ignores: not an
integer) and published under its version (core/runtime/files.publish: one
rename on local disk and NFS; on object storage, which cannot rename a
folder, a copy with `saved_model.pb` last, which TF Serving and
`tf.saved_model.load` look for first), so a reader never sees half an export
and a crash leaves earlier versions intact; a later run removes only its
own host's temporaries whose process is gone (runs may share `export_dir`). A version
that exists is never overwritten: the same weights (their sha256 is in the
metadata) are not exported twice, other weights take the next free version.
Only the trunk's variables are saved; the aux heads and the optimizer are not.

Before publishing, the copy on disk is loaded back and two signatures are
run on a fixed batch, pixels and the same pixels as PNGs in tf.Examples
(which runs through all four functions), and compared with the in-memory
model on those pixels; a mismatch publishes nothing and says why
(ExportError).

Each version carries TF Serving's warm-up file,
`assets.extra/tf_serving_warmup_requests`: a TFRecord of `PredictionLog`
protos, one request per signature, which TF Serving replays at load so the
first user request does not pay for tracing. The protos are written by hand
in protobuf's wire format (a few nested length-delimited fields around TF's
own TensorProto), so the runtime does not depend on
`tensorflow-serving-api`; the tests parse them with it.
"""

import hashlib
import json
import os
import socket
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from core.data import images as images_lib
from core.runtime import files
from core.runtime.errors import ExportError, NoSpaceError, is_no_space
from layers.googlenet import GoogLeNet
from train.artefacts.serving import CONVERSION, EXAMPLE_IMAGE_KEY, ServingModule


def export(model: GoogLeNet, export_dir: str, version: int, *,
           image_shape: Sequence[Optional[int]], class_names: Sequence[str],
           metadata: Optional[dict] = None, mirror: bool = False,
           max_image_pixels: int = images_lib.DEFAULT_MAX_PIXELS,
           report: Optional[Callable[[str], None]] = None) -> Optional[str]:
  """Writes `export_dir/<version>` atomically.

  Args:
    model: The trained model (may hold MirroredVariables: the SavedModel is
      written as if there were no strategy).
    export_dir: Base directory of the versions.
    version: A positive integer, normally the global step.
    image_shape, class_names, mirror, max_image_pixels: As ServingModule's.
    metadata: Written as `assets.extra/metadata.json` (TF version, classes).

    report: Called with one line when the version asked for exists already.

  Returns:
    The version's path; None if `version` (or one above, published
    instead) already holds these weights (`weights_sha256`, metadata).

  A version that exists with other weights (a retrain to the same step,
  another run sharing `export_dir`) is never overwritten: these weights are
  published as the next free version instead, and `report` says so.

  Raises:
    NoSpaceError: The disk filled up; nothing was published and the
      half-written copy is removed.
  """
  module = ServingModule(model, image_shape, class_names, mirror=mirror,
                         max_image_pixels=max_image_pixels)
  digest = weights_digest(module)
  metadata = dict(metadata or {}, weights_sha256=digest)
  version = int(version)
  same = _version_with(export_dir, digest, version)
  if same is not None:  # the same command run again, or a published twin
    if report and same != version:
      report(f"version {same} in {export_dir} already holds these weights; "
             "nothing new to export")
    return None
  files.makedirs(export_dir)
  tmp = os.path.join(export_dir, f".tmp-{version}-{_HOST}-{os.getpid()}")
  _write_checked(module, tmp, metadata, f"{export_dir} to export version "
                 f"{version}")
  return _publish(tmp, export_dir, version, report)


def _write_checked(module: ServingModule, tmp: str, metadata: dict,
                   what: str) -> None:
  """Writes and checks the SavedModel at `tmp`; removes it on failure."""
  files.rmtree(tmp)
  try:
    _write(module, tmp, metadata)
    check_export(module, tmp)
  except ExportError:
    files.rmtree(tmp)
    raise
  except (tf.errors.OpError, OSError) as e:
    files.rmtree(tmp)
    if is_no_space(e):
      raise NoSpaceError(f"no space left in {what}: free space and run the "
                         "same command again (the checkpoint is saved)."
                         ) from None
    raise


_HOST = socket.gethostname().replace("-", "_") or "host"


def weights_digest(module: "ServingModule") -> str:
  """sha256 of the exported variables' names, shapes and bytes."""
  digest = hashlib.sha256()
  for variable in module.weights:
    value = np.ascontiguousarray(variable.numpy())
    digest.update(f"{variable.name}:{value.dtype}:{value.shape};".encode())
    digest.update(value.tobytes())
  return digest.hexdigest()


def versions(export_dir: str) -> List[int]:
  """The version numbers under `export_dir`, ascending (none: [])."""
  if not files.isdir(export_dir):
    return []
  # ASCII digits only: int() takes '²' for a digit and then fails on it.
  return sorted(int(n) for n in files.listdir(export_dir)
                if n.isascii() and n.isdigit())


_COMMIT_FILE = "saved_model.pb"


def _version_with(export_dir: str, digest: str, version: int):
  """The complete version at or above `version` whose metadata records
  `digest`. A version cut short while it was copied to object storage
  (no `saved_model.pb`, which is copied last) holding these weights is
  removed, so these weights are published whole instead."""
  for number in versions(export_dir):
    if number < version:
      continue
    folder = os.path.join(export_dir, str(number))
    meta = os.path.join(folder, "assets.extra", "metadata.json")
    try:
      if json.loads(files.read_text(meta)).get("weights_sha256") != digest:
        continue
    except (OSError, ValueError, AttributeError):
      continue
    if files.exists(os.path.join(folder, _COMMIT_FILE)):
      return number
    # Nobody serves a version without its commit file (TF Serving and
    # tf.saved_model.load wait for it), and these weights are ours.
    files.rmtree(folder)
  return None


def _publish(tmp: str, export_dir: str, version: int, report) -> str:
  """Publishes `tmp` as the first free version from `version` on (never
  onto an existing version, so two runs never overwrite each other);
  core/runtime/files.publish says how a poller never sees half of it."""
  wanted = version
  while True:
    final = os.path.join(export_dir, str(version))
    try:
      files.publish(tmp, final, commit_file=_COMMIT_FILE)
      break
    except FileExistsError:
      version += 1
    except OSError:
      files.rmtree(tmp)
      raise
  if version != wanted and report:
    newer = [v for v in versions(export_dir) if v > version]
    report(f"version {wanted} in {export_dir} exists with other weights; "
           f"published these as version {version} instead" + (
               f" (TF Serving serves the highest, {newer[-1]})"
               if newer else ""))
  return final


def _write(module: ServingModule, path: str, metadata: Optional[dict]):
  tf.saved_model.save(module, path, signatures=module.signatures())
  extra = os.path.join(path, "assets.extra")
  files.makedirs(extra)
  files.write_atomic(os.path.join(extra, "metadata.json"), json.dumps(
      {"tensorflow_version": tf.__version__, **(metadata or {})}, indent=2),
                     durable=False)  # the folder is flushed as it publishes
  with tf.io.TFRecordWriter(os.path.join(extra, WARMUP_FILE)) as writer:
    for signature, inputs in check_inputs(module).items():
      writer.write(prediction_log(signature, inputs))


WARMUP_FILE = "tf_serving_warmup_requests"


def check_inputs(module: ServingModule) -> Dict[str, Dict[str, tf.Tensor]]:
  """A fixed small batch for each signature, {signature: {input: value}}:
  uint8 images at the training size, the same images PNG-encoded
  (lossless: every signature must give the same outputs), and those PNGs
  in tf.Examples."""
  pixels = np.random.RandomState(0).randint(
      0, 256, [2, *module.input_shape]).astype(np.uint8)
  encoded = [tf.io.encode_png(p).numpy() for p in pixels]
  return {"serving_default": {"images": tf.constant(pixels)},
          "serving_bytes": {"images": tf.constant(encoded)},
          "serving_tf_example": {"inputs": tf.constant(
              [example_of(e) for e in encoded])},
          CONVERSION: {"images": tf.constant(pixels)}}


def example_of(encoded: bytes) -> bytes:
  """A serialized tf.Example holding `encoded` (an image file's bytes) as
  `serving_tf_example` reads it."""
  return tf.train.Example(features=tf.train.Features(feature={
      EXAMPLE_IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[encoded]))})).SerializeToString()


# serving_tf_example runs through every other signature's function (parse,
# then serving_bytes's decoding, serving_default's resize, conversion's
# network): these two cover all four. Each signature's first call optimises
# its whole graph (measured: about 1 s for a decoding one, small network).
CHECKED = ("serving_default", "serving_tf_example")


def check_export(module: ServingModule, path: str) -> None:
  """Loads the SavedModel at `path` and compares the CHECKED signatures'
  outputs on `check_inputs` with the in-memory model's on the same pixels.

  Raises:
    ExportError: Naming the signature and the difference.
  """
  with files.literal(path) as readable:
    loaded = tf.saved_model.load(readable)
  inputs = check_inputs(module)
  want = module.serve(**inputs["serving_default"])
  scale = 1.0 + float(tf.reduce_max(tf.abs(want["logits"])))
  for signature in CHECKED:
    got = loaded.signatures[signature](**inputs[signature])
    gap = float(tf.reduce_max(tf.abs(got["logits"] - want["logits"])))
    same_classes = bool(tf.reduce_all(got["classes"] == want["classes"]))
    if not (gap <= 1e-5 * scale and same_classes):
      raise ExportError(
          f"the SavedModel written to {path} does not reproduce the trained "
          f"model ({signature}: logits differ by {gap:.3g}); nothing was "
          "published and the checkpoint is intact.")


def _field(number: int, payload: bytes) -> bytes:
  """One length-delimited protobuf field (wire type 2)."""
  return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
  out = bytearray()
  while True:
    byte, value = value & 0x7F, value >> 7
    out.append(byte | (0x80 if value else 0))
    if not value:
      return bytes(out)


def prediction_log(signature: str, inputs: Dict[str, tf.Tensor]) -> bytes:
  """A serialized tensorflow.serving.PredictionLog holding one PredictRequest
  for `signature` with `inputs`: PredictionLog.predict_log (6) ->
  PredictLog.request (1) -> PredictRequest {model_spec (1) {signature_name
  (3)}, inputs (2): one map entry {key (1), value (2): TensorProto} each}."""
  request = _field(1, _field(3, signature.encode()))  # model_spec
  for name, value in inputs.items():
    tensor = tf.make_tensor_proto(value.numpy()).SerializeToString()
    request += _field(2, _field(1, name.encode()) + _field(2, tensor))
  return _field(6, _field(1, request))


def remove_stale_temporaries(export_dir: str) -> None:
  """Deletes `.tmp-<version>-<host>-<pid>` folders left by a crashed export
  of this host (the process is gone); never a version, and never another
  host's or a live process's (runs may share `export_dir`)."""
  if not files.isdir(export_dir):
    return
  for name in files.listdir(export_dir):
    if not name.startswith(".tmp-"):
      continue
    fields = name[len(".tmp-"):].split("-")
    host = fields[1] if len(fields) == 3 else _HOST  # older: no host
    if host == _HOST and fields[-1].isdigit() and not _alive(
        int(fields[-1])):
      files.rmtree(os.path.join(export_dir, name))


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # someone else's process
    return True
  return True
