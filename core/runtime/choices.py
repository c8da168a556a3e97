"""The runtime's choices, without TensorFlow: the tf.distribute strategies
core/runtime/distribution.py builds, which the command line offers as flags
before TensorFlow loads."""

STRATEGIES = ("mirrored", "one_device", "default", "multi_worker")
