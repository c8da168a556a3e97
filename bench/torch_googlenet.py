"""The same GoogLeNet in PyTorch (for the benchmark only), layer for layer,
with the engine's `stem` and `norm` options (batch normalisation after every
convolution, before its ReLU, with the engine's momentum and epsilon)."""

import torch
from torch import nn

from layers import normalization
from layers.googlenet import BLOCKS


def _conv(cin, cout, size, stride=1, norm="none"):
  padding = "same" if stride == 1 else size // 2
  if norm == "none":
    return nn.Sequential(nn.Conv2d(cin, cout, size, stride, padding),
                         nn.ReLU(inplace=True))
  # PyTorch's momentum is the weight of the new batch: 1 - Keras's.
  return nn.Sequential(
      nn.Conv2d(cin, cout, size, stride, padding, bias=False),
      nn.BatchNorm2d(cout, eps=normalization.EPSILON,
                     momentum=1 - normalization.MOMENTUM),
      nn.ReLU(inplace=True))


class _Inception(nn.Module):

  def __init__(self, cin, s, norm):
    super().__init__()
    self.b1 = _conv(cin, s.conv1x1, 1, norm=norm)
    self.b3 = nn.Sequential(_conv(cin, s.conv3x3_reduce, 1, norm=norm),
                            _conv(s.conv3x3_reduce, s.conv3x3, 3, norm=norm))
    self.b5 = nn.Sequential(_conv(cin, s.conv5x5_reduce, 1, norm=norm),
                            _conv(s.conv5x5_reduce, s.conv5x5, 5, norm=norm))
    self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1),
                            _conv(cin, s.pool_proj, 1, norm=norm))

  def forward(self, x):
    return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


class _Aux(nn.Module):

  def __init__(self, cin, size, classes, norm):
    super().__init__()
    window, stride = (5, 3) if size >= 5 else (size, 1)
    pooled = (size - window) // stride + 1
    self.body = nn.Sequential(
        nn.AvgPool2d(window, stride), _conv(cin, 128, 1, norm=norm),
        nn.Flatten(), nn.Linear(128 * pooled * pooled, 1024),
        nn.ReLU(inplace=True), nn.Dropout(0.7), nn.Linear(1024, classes))

  def forward(self, x):
    return self.body(x)


class GoogLeNet(nn.Module):
  """NCHW [N, 1, image_size, image_size] in; (main, aux1, aux2) logits out.
  `stem` ("paper", "medium", "small") and `norm` ("none", "batch") as the
  engine's flags."""

  def __init__(self, image_size, classes, stem="paper", norm="none"):
    super().__init__()
    half = lambda n: -(-n // 2)
    stem_layers = ([_conv(1, 64, 7, 2, norm=norm)] if stem == "paper"
                   else [_conv(1, 64, 3, norm=norm)])
    size = half(image_size) if stem == "paper" else image_size
    if stem != "small":
      stem_layers.append(nn.MaxPool2d(3, 2, 1))
      size = half(size)
    self.stem = nn.Sequential(*stem_layers, _conv(64, 64, 1, norm=norm),
                              _conv(64, 192, 3, norm=norm),
                              nn.MaxPool2d(3, 2, 1))
    size, width = half(size), 192
    self.blocks = nn.ModuleDict()
    self.pools = nn.ModuleDict({"4a": nn.MaxPool2d(3, 2, 1),
                                "5a": nn.MaxPool2d(3, 2, 1)})
    for key, spec in BLOCKS.items():
      if key in self.pools:
        size = half(size)
      self.blocks[key] = _Inception(width, spec, norm)
      width = spec.out_channels
      if key == "4a":
        self.aux1 = _Aux(width, size, classes, norm)
      elif key == "4d":
        self.aux2 = _Aux(width, size, classes, norm)
    self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                              nn.Dropout(0.4), nn.Linear(width, classes))

  def forward(self, x):
    x = self.stem(x)
    aux = []
    for key, block in self.blocks.items():
      if key in self.pools:
        x = self.pools[key](x)
      x = block(x)
      if key == "4a":
        aux.append(self.aux1(x))
      elif key == "4d":
        aux.append(self.aux2(x))
    return self.head(x), aux[0], aux[1]
