"""What a GoogLeNet is built from, without TensorFlow: its stems,
normalisations and variants, and Table 1's inception blocks with their
filter counts. The command line offers them as flags before TensorFlow loads
(train/startup/config.py); layers/googlenet.py builds from them."""

from typing import Dict, Sequence, Tuple

# The stem before conv2: Table 1's ("paper", 1/4 of the image side), or one
# for small images: "medium" keeps 1/2 of the side, "small" all of it.
STEMS = ("paper", "medium", "small")
# The paper's (none), or batch normalisation after every convolution
# (layers/normalization.py).
NORMS = ("none", "batch")
# The paper's network, and the two published ImageNet GoogLeNets'
# (layers/googlenet.py's docstring).
VARIANTS = ("paper", "torchvision", "slim")
# Crops each test image is scored by (layers/crops.py): one, AlexNet's 10,
# the paper's 144.
TEST_CROPS = ("1", "10", "144")

# Table 1 of the paper: each inception block's filter counts, in the forward
# pass's order and layers/inception.InceptionSpec's fields (1x1, 3x3 reduce,
# 3x3, 5x5 reduce, 5x5, pool proj).                     out channels
TABLE_1: Dict[str, Tuple[int, ...]] = {
    "3a": (64, 96, 128, 16, 32, 32),                    # 256
    "3b": (128, 128, 192, 32, 96, 64),                  # 480
    "4a": (192, 96, 208, 16, 48, 64),                   # 512 -> aux1
    "4b": (160, 112, 224, 24, 64, 64),                  # 512
    "4c": (128, 128, 256, 24, 64, 64),                  # 512
    "4d": (112, 144, 288, 32, 64, 64),                  # 528 -> aux2
    "4e": (256, 160, 320, 32, 128, 128),                # 832
    "5a": (256, 160, 320, 32, 128, 128),                # 832
    "5b": (384, 192, 384, 48, 128, 128),                # 1024
}
BLOCKS = tuple(TABLE_1)


def layer_names(blocks: Sequence[str]) -> Tuple[str, ...]:
  """The trunk's layers in the order the forward pass runs them, as their
  variables are named (`googlenet/<layer>/...`); --trainable=from: takes
  one."""
  return ("conv1", "conv2_reduce", "conv2",
          *(f"inception_{b}" for b in blocks))
