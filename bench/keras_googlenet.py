"""The same GoogLeNet in Keras 3 (for the benchmark only), layer for layer:
same table, kernels, aux heads and preprocessing as layers/googlenet.py."""

import keras
from keras import layers

from layers.googlenet import BLOCKS


def _conv(x, filters, size, stride=1):
  return layers.Conv2D(filters, size, strides=stride, padding="same",
                       activation="relu")(x)


def _inception(x, s):
  b1 = _conv(x, s.conv1x1, 1)
  b3 = _conv(_conv(x, s.conv3x3_reduce, 1), s.conv3x3, 3)
  b5 = _conv(_conv(x, s.conv5x5_reduce, 1), s.conv5x5, 5)
  bp = _conv(layers.MaxPooling2D(3, 1, padding="same")(x), s.pool_proj, 1)
  return layers.Concatenate()([b1, b3, b5, bp])


def _aux(x, classes, name):
  size = x.shape[1]
  window, stride = (5, 3) if size >= 5 else (size, 1)
  x = layers.AveragePooling2D(window, stride, padding="valid")(x)
  x = _conv(x, 128, 1)
  x = layers.Flatten()(x)
  x = layers.Dense(1024, activation="relu")(x)
  x = layers.Dropout(0.7)(x)
  return layers.Dense(classes, name=name)(x)


def build(image_size: int, classes: int) -> keras.Model:
  """uint8 [N, 28, 28, 1] in; logits of (main, aux1, aux2) out."""
  images = keras.Input([28, 28, 1], dtype="uint8")
  x = layers.Rescaling(2.0 / 255.0, offset=-1.0)(images)
  if image_size != 28:
    x = layers.Resizing(image_size, image_size, interpolation="bilinear")(x)
  x = _conv(x, 64, 7, 2)
  x = layers.MaxPooling2D(3, 2, padding="same")(x)
  x = _conv(x, 64, 1)
  x = _conv(x, 192, 3)
  x = layers.MaxPooling2D(3, 2, padding="same")(x)
  aux = []
  for key, spec in BLOCKS.items():
    if key in ("4a", "5a"):
      x = layers.MaxPooling2D(3, 2, padding="same")(x)
    x = _inception(x, spec)
    if key == "4a":
      aux.append(_aux(x, classes, "aux1"))
    elif key == "4d":
      aux.append(_aux(x, classes, "aux2"))
  x = layers.GlobalAveragePooling2D()(x)
  x = layers.Dropout(0.4)(x)
  main = layers.Dense(classes, name="main")(x)
  return keras.Model(images, [main, *aux])
