"""The same GoogLeNet in Keras 3 (for the benchmark only), layer for layer:
same table, kernels, aux heads and preprocessing as layers/googlenet.py,
with its `stem` and `norm` options (batch normalisation after every
convolution, before its ReLU, with the engine's momentum and epsilon)."""

import keras
from keras import layers

from layers import normalization
from layers.googlenet import BLOCKS


def _conv(x, filters, size, stride=1, *, norm="none"):
  if norm == "none":
    return layers.Conv2D(filters, size, strides=stride, padding="same",
                         activation="relu")(x)
  x = layers.Conv2D(filters, size, strides=stride, padding="same",
                    use_bias=False)(x)
  x = layers.BatchNormalization(momentum=normalization.MOMENTUM,
                                epsilon=normalization.EPSILON)(x)
  return layers.ReLU()(x)


def _inception(x, s, norm):
  b1 = _conv(x, s.conv1x1, 1, norm=norm)
  b3 = _conv(_conv(x, s.conv3x3_reduce, 1, norm=norm), s.conv3x3, 3,
             norm=norm)
  b5 = _conv(_conv(x, s.conv5x5_reduce, 1, norm=norm), s.conv5x5, 5,
             norm=norm)
  bp = _conv(layers.MaxPooling2D(3, 1, padding="same")(x), s.pool_proj, 1,
             norm=norm)
  return layers.Concatenate()([b1, b3, b5, bp])


def _aux(x, classes, name, norm):
  size = x.shape[1]
  window, stride = (5, 3) if size >= 5 else (size, 1)
  x = layers.AveragePooling2D(window, stride, padding="valid")(x)
  x = _conv(x, 128, 1, norm=norm)
  x = layers.Flatten()(x)
  x = layers.Dense(1024, activation="relu")(x)
  x = layers.Dropout(0.7)(x)
  return layers.Dense(classes, name=name)(x)


def build(image_size: int, classes: int, *, stem: str = "paper",
          norm: str = "none") -> keras.Model:
  """uint8 [N, 28, 28, 1] in; logits of (main, aux1, aux2) out. `stem`
  ("paper", "medium", "small") and `norm` ("none", "batch") as the engine's
  flags."""
  images = keras.Input([28, 28, 1], dtype="uint8")
  x = layers.Rescaling(2.0 / 255.0, offset=-1.0)(images)
  if image_size != 28:
    x = layers.Resizing(image_size, image_size, interpolation="bilinear")(x)
  x = _conv(x, 64, 7, 2, norm=norm) if stem == "paper" else _conv(
      x, 64, 3, norm=norm)
  if stem != "small":
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
  x = _conv(x, 64, 1, norm=norm)
  x = _conv(x, 192, 3, norm=norm)
  x = layers.MaxPooling2D(3, 2, padding="same")(x)
  aux = []
  for key, spec in BLOCKS.items():
    if key in ("4a", "5a"):
      x = layers.MaxPooling2D(3, 2, padding="same")(x)
    x = _inception(x, spec, norm)
    if key == "4a":
      aux.append(_aux(x, classes, "aux1", norm))
    elif key == "4d":
      aux.append(_aux(x, classes, "aux2", norm))
  x = layers.GlobalAveragePooling2D()(x)
  x = layers.Dropout(0.4)(x)
  main = layers.Dense(classes, name="main")(x)
  return keras.Model(images, [main, *aux])
