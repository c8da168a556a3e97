"""The ONNX file of an exported SavedModel, through tf2onnx (the `onnx`
extra), from its `conversion` signature: uint8 images [N, H, W, C] in, any
batch size, `logits` and `probabilities` out, the preprocessing inside."""

import os

import tensorflow as tf

from core.runtime import files
from core.runtime.errors import ExportError
from train.artefacts import serving

# The newest opset tf2onnx 1.17 writes (its constants.OPSET_TO_IR_VERSION).
OPSET = 18


def convert(saved_model: str) -> bytes:
  """The .onnx file of `saved_model`'s `conversion` signature.

  Raises:
    ExportError: An op tf2onnx cannot convert (it leaves it in the graph,
      which onnxruntime would refuse to load).
  """
  # The `onnx` extra (train/convert.py says so when it is missing).
  import onnx  # pylint: disable=g-import-not-at-top
  import tf2onnx  # pylint: disable=g-import-not-at-top
  with files.literal(os.path.join(saved_model, "saved_model.pb")) as path:
    loaded = tf.saved_model.load(os.path.dirname(path))  # owns the weights
  signature = loaded.signatures[serving.CONVERSION]
  spec = signature.structured_input_signature[1]["images"]
  function = tf.function(lambda images: signature(images=images),
                         input_signature=[spec])
  model, _ = tf2onnx.convert.from_function(function, input_signature=[spec],
                                           opset=OPSET)
  try:  # an op tf2onnx cannot convert stays, under its TF name
    onnx.checker.check_model(model)
  except onnx.checker.ValidationError as e:
    raise ExportError(f"tf2onnx could not convert {saved_model} "
                      f"({str(e).splitlines()[0]}); no .onnx file was "
                      "written.") from None
  return model.SerializeToString()
