"""The exported object and its signatures: images in, main head only.

Three signatures for TF Serving, each returning `logits`, `probabilities`,
`classes` (int64) and `class_names` (string):
- `serving_default`: uint8 images [N, H, W, C] of any size;
- `serving_bytes`: encoded JPEG or PNG images, a string vector [N] (TF
  Serving's REST API takes them as {"b64": ...});
- `serving_tf_example`: serialized tf.Examples [N], each holding an encoded
  image under `image/encoded` (Model Garden's `tf_example` input, its input
  named `inputs` as there; other features are ignored).
And one for converters (train/convert.py: TFLite, ONNX), `conversion`: uint8
images [N, H, W, C] at the fixed size the model reads, returning `logits`
and `probabilities` only (no strings, no data-dependent branch), with the
preprocessing inside.
Images are brought to the size training read them at before the model's own
preprocessing: data sets of one image size (the IDX sets) are fed at their
native size, and other sizes are resized to it (`--image_size` upsamples
them inside the model's preprocessing, as in training); images of any size
(folders, shards) are resized to the training side as the input pipeline
does (core/data/images.resize). So `[N, 28, 28, 1]` calls give what the
training run's evaluation computed, in float32 (a bfloat16 run's own
evaluation rounds differently: a few images in 10,000).

Each signature calls the next one's function (tf.Example -> bytes -> any
size -> conversion), so the SavedModel holds the network's graph once.
The SavedModel is written, checked and published by export.py.
"""

import functools
from typing import Callable, Dict, Optional, Sequence

import tensorflow as tf

from core.data import images as images_lib
from core.data import preprocessing
from layers.googlenet import GoogLeNet

# Model Garden's key for the encoded image of a tf.Example
# (official/vision/serving/export_base.py), also TF-slim's and TFDS's.
EXAMPLE_IMAGE_KEY = "image/encoded"
# The signature converters read (train/artefacts/tflite_model.py and
# onnx_model.py).
CONVERSION = "conversion"


class ServingModule(tf.Module):
  """The exported object: preprocessing + GoogLeNet's main head."""

  def __init__(self, model: GoogLeNet, image_shape: Sequence[Optional[int]],
               class_names: Sequence[str], *, mirror: bool = False,
               max_image_pixels: int = images_lib.DEFAULT_MAX_PIXELS):
    """Wraps `model` for a data set's images.

    Args:
      model: The trained model.
      image_shape: The data set's (height, width, channels); height and width
        None for images of any size.
      class_names: One per class, in label order.
      mirror: Average each image's probabilities with its mirror image's
        (GoogLeNet.classify).
      max_image_pixels: `serving_bytes` refuses (InvalidArgumentError) an
        image whose header declares more pixels or cannot be sized, and a
        request of more than images.REQUEST_MAX_IMAGES images or whose
        images declare more than images.REQUEST_IMAGES x max_image_pixels
        in all, before decoding (core/data/images.decode_request).
    """
    super().__init__(name="serving")
    # Track only the trunk's variables (and its batch normalisation
    # statistics); the model object itself stays out of the object graph so
    # the aux heads are not exported.
    self.weights = list(model.inference_variables)
    # A method, not tracked: no aux variables.
    self._classify = functools.partial(model.classify, mirror=mirror)
    self._image_size, self._in_channels = model.image_size, model.in_channels
    self._channels = channels = image_shape[-1]
    self._target = ((image_shape[0], image_shape[1]) if image_shape[0]
                    else (model.image_size, model.image_size))
    self._names = tf.constant(list(class_names))
    self._max_pixels = max_image_pixels
    # No AutoGraph: the branches on tensors are explicit tf.cond and
    # tf.map_fn, and converting the model's source costs seconds a trace.
    self.serve = tf.function(
        self._serve, autograph=False, input_signature=[tf.TensorSpec(
            [None, None, None, channels], tf.uint8, name="images")])
    self.serve_bytes = tf.function(
        self._serve_bytes, autograph=False,
        input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    self.serve_examples = tf.function(
        self._serve_examples, autograph=False,
        input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    self.serve_fixed = tf.function(
        self._serve_fixed, autograph=False, input_signature=[tf.TensorSpec(
            [None, *self._target, channels], tf.uint8, name="images")])

  @property
  def input_shape(self):
    """(height, width, channels) the model reads at."""
    return (*self._target, self._channels)

  def _serve(self, images):
    # Signatures check the dtype but not the shape; a wrong-rank input
    # would reach oneDNN's convolution and abort the server process.
    return self._outputs(tf.ensure_shape(
        images, [None, None, None, self._channels]))

  def _serve_bytes(self, encoded):
    decoded = images_lib.decode_request(encoded, self._channels,
                                        *self._target, self._max_pixels)
    # A call of `serve`'s function: the SavedModel holds the network's graph
    # once, not once per signature (half the tracing, the file and the load).
    return self.serve(decoded)

  def _serve_examples(self, serialized):
    encoded = tf.io.parse_example(serialized, {
        EXAMPLE_IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)})
    return self.serve_bytes(encoded[EXAMPLE_IMAGE_KEY])

  def _serve_fixed(self, images):
    images = tf.ensure_shape(images, [None, *self.input_shape])  # as _serve
    x = preprocessing.preprocess(images, image_size=self._image_size,
                                 channels=self._in_channels)
    logits = self._classify(x)
    return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

  def _outputs(self, images):
    target = self._target
    images = tf.cond(tf.reduce_all(tf.shape(images)[1:3] == target),
                     lambda: images,
                     lambda: images_lib.resize(images, *target))
    images = tf.ensure_shape(images, [None, *target, self._channels])
    outputs = self.serve_fixed(images)
    classes = tf.argmax(outputs["logits"], axis=-1, output_type=tf.int64)
    return dict(outputs, classes=classes,
                class_names=tf.gather(self._names, classes))

  def signatures(self) -> Dict[str, Callable]:
    """The SavedModel's signatures by name."""
    return {"serving_default": self.serve, "serving_bytes": self.serve_bytes,
            "serving_tf_example": self.serve_examples,
            CONVERSION: self.serve_fixed}
