"""The data's choices, without TensorFlow: the augmentations
core/data/augment.py applies, which the command line offers as flags before
TensorFlow loads."""

AUGMENTATIONS = ("crop", "flip", "erase", "randaugment", "trivialaugment",
                 "colour")
