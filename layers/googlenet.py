"""GoogLeNet (Inception v1) with its two auxiliary classifiers.

Szegedy et al., "Going Deeper with Convolutions", arXiv:1409.4842, Table 1.
Deviations from the paper (also listed in BUILD.md):
  * No local response normalisation (most re-implementations drop it too).
  * Auxiliary heads pool the whole map when it is smaller than 5x5 (aux_head.py).
  * Dropout noise is drawn for the global batch (dropout.py), so training does
    not depend on the number of replicas.
  * Optional stems for small images: stem="small", a 3x3 stride-1 first
    convolution and no first pool, as the CIFAR variants of ImageNet networks
    do; stem="medium", the same convolution followed by the paper's first
    pool (half the side of "small" in every later layer).
"""

from typing import Dict, NamedTuple, Optional

import tensorflow as tf

from layers import _checks
from layers import aux_head
from layers import conv
from layers import dense
from layers import dropout
from layers import inception
from layers import pooling

Spec = inception.InceptionSpec
# The stem before conv2: Table 1's ("paper", 1/4 of the image side), or one
# for small images: "medium" keeps 1/2 of the side, "small" all of it.
STEMS = ("paper", "medium", "small")

# Table 1 of the paper.                                     out channels
BLOCKS: Dict[str, Spec] = {
    "3a": Spec(64, 96, 128, 16, 32, 32),                    # 256
    "3b": Spec(128, 128, 192, 32, 96, 64),                  # 480
    "4a": Spec(192, 96, 208, 16, 48, 64),                   # 512 -> aux1
    "4b": Spec(160, 112, 224, 24, 64, 64),                  # 512
    "4c": Spec(128, 128, 256, 24, 64, 64),                  # 512
    "4d": Spec(112, 144, 288, 32, 64, 64),                  # 528 -> aux2
    "4e": Spec(256, 160, 320, 32, 128, 128),                # 832
    "5a": Spec(256, 160, 320, 32, 128, 128),                # 832
    "5b": Spec(384, 192, 384, 48, 128, 128),                # 1024
}


class GoogLeNetOutputs(NamedTuple):
  """Logits of the three heads; the aux fields are None unless training."""
  logits: tf.Tensor
  aux1: Optional[tf.Tensor] = None
  aux2: Optional[tf.Tensor] = None


class GoogLeNet(tf.Module):
  """GoogLeNet over float32 NHWC images of a fixed square size."""

  def __init__(self, num_classes: int = 1000, in_channels: int = 3,
               image_size: int = 224, *, dropout_rate: float = 0.4,
               aux_dropout_rate: float = 0.7, stem: str = "paper",
               name: str = "googlenet"):
    """Creates every variable of the network.

    Args:
      num_classes: Width of each head's logits.
      in_channels: Channels of the input images.
      image_size: Side of the square input images; fixes the auxiliary heads'
        flattened width.
      dropout_rate: Dropout before the main classifier (0.4 in the paper).
      aux_dropout_rate: Dropout inside each auxiliary head (0.7 in the paper).
      stem: "paper" (7x7 stride-2 convolution, then a 3x3 stride-2 max-pool),
        "medium" (3x3 stride-1 convolution, then that max-pool) or "small"
        (3x3 stride-1 convolution, no pool).
      name: Module name; prefixes every variable name.

    Raises:
      ValueError: If a size is not a positive integer, a rate is not in
        [0, 1) or the stem is unknown.
    """
    super().__init__(name=name)
    self.num_classes = _checks.positive_int("num_classes", num_classes)
    self.in_channels = _checks.positive_int("in_channels", in_channels)
    self.image_size = _checks.positive_int("image_size", image_size)
    if stem not in STEMS:
      raise ValueError(f"`stem` must be one of {', '.join(STEMS)}; received "
                       f"stem={stem!r}.")
    self.stem = stem
    relu = tf.nn.relu
    with self.name_scope:
      if stem == "paper":
        self.conv1 = conv.Conv2D(in_channels, 64, 7, stride=2,
                                 activation=relu, name="conv1")
        self.pool1 = pooling.MaxPool2D(3, 2, name="pool1")
      else:
        self.conv1 = conv.Conv2D(in_channels, 64, 3, activation=relu,
                                 name="conv1")
        self.pool1 = (pooling.MaxPool2D(3, 2, name="pool1")
                      if stem == "medium" else None)
      self.conv2_reduce = conv.Conv2D(64, 64, 1, activation=relu,
                                      name="conv2_reduce")
      self.conv2 = conv.Conv2D(64, 192, 3, activation=relu, name="conv2")
      self.pool2 = pooling.MaxPool2D(3, 2, name="pool2")
      self.pool3 = pooling.MaxPool2D(3, 2, name="pool3")
      self.pool4 = pooling.MaxPool2D(3, 2, name="pool4")
      size = self.conv1.out_size(image_size)
      if self.pool1 is not None:
        size = self.pool1.out_size(size)
      size = self.pool2.out_size(self.conv2.out_size(size))
      width = self.conv2.out_channels
      self.blocks = {}
      for key, spec in BLOCKS.items():
        if key == "4a":
          size = self.pool3.out_size(size)
        elif key == "5a":
          size = self.pool4.out_size(size)
        self.blocks[key] = inception.Inception(width, spec,
                                               name=f"inception_{key}")
        width = spec.out_channels
        if key == "4a":
          self.aux1 = aux_head.AuxHead(width, size, num_classes,
                                       dropout_rate=aux_dropout_rate,
                                       name="aux1")
        elif key == "4d":
          self.aux2 = aux_head.AuxHead(width, size, num_classes,
                                       dropout_rate=aux_dropout_rate,
                                       name="aux2")
      self.global_pool = pooling.GlobalAvgPool(name="global_pool")
      self.dropout = dropout.Dropout(dropout_rate, name="dropout")
      self.classifier = dense.Dense(width, num_classes, name="classifier")

  def __call__(self, images: tf.Tensor, *, training: bool,
               noise: Optional[dropout.DropoutNoise] = None,
               reference: bool = False) -> GoogLeNetOutputs:
    """Runs the network; shapes in comments are for 224x224 inputs.

    Args:
      images: [N, image_size, image_size, in_channels], float (preprocessed).
      training: Keyword-only Python bool: enables dropout and the aux heads.
      noise: Dropout noise source (dropout.py); None uses TF's stateful RNG.
      reference: Run every convolution as the textbook `tf.nn.conv2d`
        instead of its fastest exact formulation (layers/formulations.py):
        the nominal graph bench/flops.py counts and the tests compare with.

    Returns:
      GoogLeNetOutputs(logits, aux1, aux2); aux1 and aux2 are None unless
      `training`.
    """
    if not isinstance(training, bool):
      raise TypeError(
          f"`training` must be a Python bool; received training={training!r}.")
    expected = [self.image_size, self.image_size, self.in_channels]
    if images.shape[1:].as_list() != expected:
      raise ValueError(
          f"`images` must have shape [N, {', '.join(map(str, expected))}]; "
          f"received shape {images.shape.as_list()}.")
    blocks, ref = self.blocks, reference
    noise_for = (lambda i: None) if noise is None else noise.fold_in
    x = self.conv1(images, reference=ref)         # [N, 112, 112, 64]
    if self.pool1 is not None:
      x = self.pool1(x)                           # [N, 56, 56, 64]
    x = self.conv2_reduce(x, reference=ref)       # [N, 56, 56, 64]
    x = self.conv2(x, reference=ref)              # [N, 56, 56, 192]
    x = self.pool2(x)                             # [N, 28, 28, 192]
    x = blocks["3a"](x, reference=ref)            # [N, 28, 28, 256]
    x = blocks["3b"](x, reference=ref)            # [N, 28, 28, 480]
    x = self.pool3(x)                             # [N, 14, 14, 480]
    x = blocks["4a"](x, reference=ref)            # [N, 14, 14, 512]
    aux1 = (self.aux1(x, training=True, noise=noise_for(1), reference=ref)
            if training else None)                # [N, classes]
    x = blocks["4b"](x, reference=ref)            # [N, 14, 14, 512]
    x = blocks["4c"](x, reference=ref)            # [N, 14, 14, 512]
    x = blocks["4d"](x, reference=ref)            # [N, 14, 14, 528]
    aux2 = (self.aux2(x, training=True, noise=noise_for(2), reference=ref)
            if training else None)                # [N, classes]
    x = blocks["4e"](x, reference=ref)            # [N, 14, 14, 832]
    x = self.pool4(x)                             # [N, 7, 7, 832]
    x = blocks["5a"](x, reference=ref)            # [N, 7, 7, 832]
    x = blocks["5b"](x, reference=ref)            # [N, 7, 7, 1024]
    x = self.global_pool(x)                       # [N, 1024]
    x = self.dropout(x, training=training, noise=noise_for(0))
    logits = self.classifier(x)                   # [N, classes]
    return GoogLeNetOutputs(logits, aux1, aux2)

  @property
  def trunk_variables(self):
    """Trainable variables outside the auxiliary heads (used at inference)."""
    aux = {id(v) for v in self.aux1.trainable_variables}
    aux |= {id(v) for v in self.aux2.trainable_variables}
    return tuple(v for v in self.trainable_variables if id(v) not in aux)
