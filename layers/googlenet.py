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
  * Optional batch normalisation after every convolution (norm="batch"),
    from Inception v2 (Ioffe & Szegedy 2015), over fixed groups of examples
    (normalization.py).
  * Optional architecture variants of the two published ImageNet GoogLeNets,
    so that their weights import exactly (variant=, tools/import_weights.py):
    "torchvision" (batch normalisation after every convolution, a 3x3
    kernel in the "5x5" branch, the first convolution padded 3 on every
    side, PyTorch's ceil-mode max-pools, a 2x2 pool before 5a, auxiliary
    heads pooling adaptively to 4x4) and "slim" (TF-slim's inception_v1:
    batch normalisation, the 3x3 kernel, the 2x2 pool, TF's SAME padding
    as here).
  * Optional fewer inception blocks (`blocks`, a subsequence of Table 1's
    that keeps 4a and 4d, where the auxiliary heads sit): not the paper's
    network but the same kinds of layer, for tests and trials whose subject
    is the machinery around the network (the engine's tests use 4a, 4d).
"""

from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import tensorflow as tf

from layers import _checks
from layers import aux_head
from layers import conv
from layers import crops as crops_lib
from layers import dense
from layers import dropout
from layers import inception
from layers import normalization
from layers import pooling
# The stems, norms, variants and Table 1 live without TensorFlow, so the
# command line offers them as flags before TensorFlow loads.
from layers.choices import NORMS, STEMS, TABLE_1, VARIANTS

# Table 1 of the paper: each inception block's filter counts, by name.
BLOCKS: Dict[str, inception.InceptionSpec] = {
    name: inception.InceptionSpec(*row) for name, row in TABLE_1.items()}


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
               norm: str = "none", blocks: Sequence[str] = tuple(BLOCKS),
               variant: str = "paper", name: str = "googlenet"):
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
      norm: "none" (the paper) or "batch": batch normalisation after every
        convolution, before its ReLU (normalization.py).
      blocks: The inception blocks built, in Table 1's order (default all
        nine); it must keep "4a" and "4d", where the auxiliary heads sit.
        Each block's input width is the previous built block's output.
      variant: "paper", or the architecture of a published ImageNet
        GoogLeNet: "torchvision" or "slim" (the module docstring); those
        need norm="batch" and stem="paper".
      name: Module name; prefixes every variable name.

    Raises:
      ValueError: If a size is not a positive integer, a rate is not in
        [0, 1), the stem, norm or variant is unknown or they do not fit
        together, or `blocks` is not an ordered subset of Table 1's names
        holding 4a and 4d.
    """
    super().__init__(name=name)
    self.num_classes = _checks.positive_int("num_classes", num_classes)
    self.in_channels = _checks.positive_int("in_channels", in_channels)
    self.image_size = _checks.positive_int("image_size", image_size)
    if stem not in STEMS:
      raise ValueError(f"`stem` must be one of {', '.join(STEMS)}; received "
                       f"stem={stem!r}.")
    if norm not in NORMS:
      raise ValueError(f"`norm` must be one of {', '.join(NORMS)}; received "
                       f"norm={norm!r}.")
    check_variant(variant, stem, norm)
    self.stem, self.norm, self.variant = stem, norm, variant
    self.block_names = check_blocks(blocks)
    relu, bn = tf.nn.relu, norm == "batch"
    torch = variant == "torchvision"
    def max_pool(window, name):  # stride 2; PyTorch's ceil mode for torch
      return pooling.MaxPool2D(window, 2, ceil_mode=torch, name=name)
    with self.name_scope:
      if stem == "paper":
        self.conv1 = conv.Conv2D(in_channels, 64, 7, stride=2,
                                 padding=3 if torch else "SAME",
                                 activation=relu, batch_norm=bn, name="conv1")
        self.pool1 = max_pool(3, "pool1")
      else:
        self.conv1 = conv.Conv2D(in_channels, 64, 3, activation=relu,
                                 batch_norm=bn, name="conv1")
        self.pool1 = (pooling.MaxPool2D(3, 2, name="pool1")
                      if stem == "medium" else None)
      self.conv2_reduce = conv.Conv2D(64, 64, 1, activation=relu,
                                      batch_norm=bn, name="conv2_reduce")
      self.conv2 = conv.Conv2D(64, 192, 3, activation=relu, batch_norm=bn,
                               name="conv2")
      self.pool2 = max_pool(3, "pool2")
      self.pool3 = max_pool(3, "pool3")
      self.pool4 = max_pool(3 if variant == "paper" else 2, "pool4")
      size = self.conv1.out_size(image_size)
      if self.pool1 is not None:
        size = self.pool1.out_size(size)
      size = self.pool2.out_size(self.conv2.out_size(size))
      width = self.conv2.out_channels
      self.blocks = {}
      for key in self.block_names:
        spec = BLOCKS[key]
        if key == "4a":
          size = self.pool3.out_size(size)
        elif key == self._first_of_stage5:
          size = self.pool4.out_size(size)
        self.blocks[key] = inception.Inception(
            width, spec, batch_norm=bn, name=f"inception_{key}",
            wide_kernel=5 if variant == "paper" else 3)
        width = spec.out_channels
        if key in ("4a", "4d"):
          name = "aux1" if key == "4a" else "aux2"
          setattr(self, name, aux_head.AuxHead(
              width, size, num_classes, dropout_rate=aux_dropout_rate,
              batch_norm=bn, adaptive_pool=torch, name=name))
      self.global_pool = pooling.GlobalAvgPool(name="global_pool")
      self.dropout = dropout.Dropout(dropout_rate, name="dropout")
      self.classifier = dense.Dense(width, num_classes, name="classifier")
    self._norm_layers = self._in_call_order()

  def _in_call_order(self) -> Tuple[normalization.BatchNorm, ...]:
    """The batch normalisations in the order a training pass runs them."""
    if self.norm != "batch":
      return ()
    convs = [self.conv1, self.conv2_reduce, self.conv2]
    for key, block in self.blocks.items():
      convs += [block.branch1x1, block.branch3x3_reduce, block.branch3x3,
                block.branch5x5_reduce, block.branch5x5, block.branch_pool]
      if key in ("4a", "4d"):
        convs.append((self.aux1 if key == "4a" else self.aux2).conv)
    return tuple(c.norm for c in convs)

  def __call__(self, images: tf.Tensor, *, training: bool,
               noise: Optional[dropout.DropoutNoise] = None,
               stats: Optional[normalization.BatchStatistics] = None,
               reference: bool = False) -> GoogLeNetOutputs:
    """Runs the network; shapes in comments are for 224x224 inputs.

    Args:
      images: [N, image_size, image_size, in_channels], float (preprocessed).
      training: Keyword-only Python bool: enables dropout, the aux heads and,
        with norm="batch", normalisation by batch statistics.
      noise: Dropout noise source (dropout.py); None uses TF's stateful RNG.
      stats: With norm="batch" and `training`: the groups and example
        weights to normalise over, and where the layers' statistics are
        collected for the moving averages (`update_statistics`); None: the
        whole batch is one group and the statistics are dropped.
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
    if not (training and self.norm == "batch"):
      stats = None
    elif stats is None:
      stats = normalization.BatchStatistics()
    block, kw = self._block, {"stats": stats, "reference": reference}
    noise_for = (lambda i: None) if noise is None else noise.fold_in
    x = self.conv1(images, **kw)                  # [N, 112, 112, 64]
    if self.pool1 is not None:
      x = self.pool1(x)                           # [N, 56, 56, 64]
    x = self.conv2_reduce(x, **kw)                # [N, 56, 56, 64]
    x = self.conv2(x, **kw)                       # [N, 56, 56, 192]
    x = self.pool2(x)                             # [N, 28, 28, 192]
    x = block("3a", x, kw)                        # [N, 28, 28, 256]
    x = block("3b", x, kw)                        # [N, 28, 28, 480]
    x = self.pool3(x)                             # [N, 14, 14, 480]
    x = block("4a", x, kw)                        # [N, 14, 14, 512]
    aux1 = (self.aux1(x, training=True, noise=noise_for(1), **kw)
            if training else None)                # [N, classes]
    x = block("4b", x, kw)                        # [N, 14, 14, 512]
    x = block("4c", x, kw)                        # [N, 14, 14, 512]
    x = block("4d", x, kw)                        # [N, 14, 14, 528]
    aux2 = (self.aux2(x, training=True, noise=noise_for(2), **kw)
            if training else None)                # [N, classes]
    x = block("4e", x, kw)                        # [N, 14, 14, 832]
    if self._first_of_stage5:
      x = self.pool4(x)                           # [N, 7, 7, 832]
    x = block("5a", x, kw)                        # [N, 7, 7, 832]
    x = block("5b", x, kw)                        # [N, 7, 7, 1024]
    x = self.global_pool(x)                       # [N, 1024]
    x = self.dropout(x, training=training, noise=noise_for(0))
    logits = self.classifier(x)                   # [N, classes]
    return GoogLeNetOutputs(logits, aux1, aux2)

  def _block(self, key: str, x: tf.Tensor, kw) -> tf.Tensor:
    """Inception block `key` on `x`; `x` itself where it is not built."""
    return self.blocks[key](x, **kw) if key in self.blocks else x

  @property
  def _first_of_stage5(self) -> Optional[str]:
    """The first built block after pool4 (None: no pool4 either)."""
    return next((k for k in self.block_names if k.startswith("5")), None)

  def classify(self, images: tf.Tensor, *, crops: str = "1",
               mirror: bool = False, reference: bool = False) -> tf.Tensor:
    """Inference answers of the main head, over test-time views.

    Args:
      images: [N, H, W, in_channels], float (preprocessed): H and W are
        `image_size`, or, with crops "10" or "144", any static size the
        crops are taken from (layers/crops.py).
      crops: "1": each image as it is; "10": AlexNet's 10 crops, "144": the
        paper's (sec. 7), mirror images included.
      mirror: With crops="1", each image and its left-right mirror image
        (the paper's test-time mirroring).
      reference: As `__call__`'s.

    Returns:
      [N, num_classes]: the logits for one view per image; otherwise the
      log of the mean class probability over the views (the paper averages
      probabilities), in float32.

    Raises:
      ValueError: If `crops` is not "1", "10" or "144".
    """
    return crops_lib.classify(
        lambda x: self(x, training=False, reference=reference).logits,
        images, crops_lib.mode(crops, mirror), self.image_size)

  @property
  def norm_layers(self) -> Tuple[normalization.BatchNorm, ...]:
    """Every batch normalisation, in the order a training pass calls them
    (the order of BatchStatistics.sums())."""
    return self._norm_layers

  @property
  def moving_statistics(self) -> Tuple[tf.Variable, ...]:
    """Every batch normalisation's moving mean and variance (none with
    norm="none"), in `norm_layers` order."""
    return tuple(v for layer in self.norm_layers for v in layer.statistics)

  @property
  def weights_and_statistics(self) -> Tuple[tf.Variable, ...]:
    """The trainable weights (aux heads included), then the moving
    statistics: what the moving average, the best validated weights and the
    checkpoint guard hold."""
    return tuple(self.trainable_variables) + self.moving_statistics

  def update_statistics(self, sums: Sequence[tf.Tensor],
                        total_weight: tf.Tensor,
                        num_updates: tf.Tensor) -> None:
    """Moves every layer's moving statistics towards the batch's.

    Args:
      sums: BatchStatistics.sums(), added over all replicas.
      total_weight: BatchStatistics.total_weight(), added the same way; at
        0 (a batch of padding only) nothing moves.
      num_updates: How many updates came before, counting this one
        (normalization.BatchNorm.update).
    """
    if len(sums) != 2 * len(self.norm_layers):
      raise ValueError(f"`sums` must hold 2 tensors per normalisation layer "
                       f"({2 * len(self.norm_layers)}); received "
                       f"{len(sums)}.")
    def batch_value(total, moving):
      return tf.where(total_weight > 0,
                      total / tf.maximum(total_weight, 1e-30), moving)
    for i, layer in enumerate(self.norm_layers):
      if layer.frozen:  # fine-tuning keeps the frozen part's statistics
        continue
      layer.update(batch_value(sums[2 * i], layer.moving_mean),
                   batch_value(sums[2 * i + 1], layer.moving_variance),
                   num_updates)

  @property
  def trunk_variables(self):
    """Trainable variables outside the auxiliary heads (used at inference)."""
    aux = {id(v) for v in self.aux1.trainable_variables}
    aux |= {id(v) for v in self.aux2.trainable_variables}
    return tuple(v for v in self.trainable_variables if id(v) not in aux)

  @property
  def inference_variables(self) -> Tuple[tf.Variable, ...]:
    """Everything inference reads: `trunk_variables`, then the trunk's
    moving statistics (none with norm="none")."""
    aux = {id(v) for v in self.aux1.variables + self.aux2.variables}
    return self.trunk_variables + tuple(
        v for v in self.moving_statistics if id(v) not in aux)


def check_variant(variant: str, stem: str, norm: str) -> None:
  """Raises ValueError unless `variant` is known and, for a published
  network's, `stem` is "paper" and `norm` "batch" (theirs)."""
  if variant not in VARIANTS:
    raise ValueError(f"`variant` must be one of {', '.join(VARIANTS)}; "
                     f"received variant={variant!r}.")
  if variant != "paper" and (stem, norm) != ("paper", "batch"):
    raise ValueError(
        f"variant={variant!r} is a published ImageNet GoogLeNet, with the "
        f"paper's stem and batch normalisation: it needs stem='paper' and "
        f"norm='batch'; received stem={stem!r}, norm={norm!r}.")


def check_blocks(blocks: Sequence[str]) -> Tuple[str, ...]:
  """`blocks` as a tuple, checked to be Table 1's names in order with 4a and
  4d (the auxiliary heads' places) among them.

  Raises:
    ValueError: Otherwise, naming the rule.
  """
  names = tuple(blocks)
  order = [list(BLOCKS).index(k) if k in BLOCKS else -1 for k in names]
  if (-1 in order or order != sorted(set(order))
      or not {"4a", "4d"} <= set(names)):
    raise ValueError(
        f"`blocks` must be inception blocks of Table 1 "
        f"({', '.join(BLOCKS)}) in that order, without repeats, keeping 4a "
        f"and 4d (the auxiliary heads' places); received "
        f"blocks={','.join(names)!r}.")
  return names
