"""Optimisation's choices, without TensorFlow: the optimizers
core/optim/optimizers.py builds and the precisions a step computes in, which
the command line offers as flags before TensorFlow loads."""

OPTIMIZERS = ("adam", "sgd")
# Each precision's compute dtype, by name (tf.as_dtype reads it); float16
# needs the loss scale (core/optim/loss_scale.py).
COMPUTE_DTYPES = {"float32": "float32", "mixed_float16": "float16",
                  "mixed_bfloat16": "bfloat16"}
PRECISIONS = tuple(COMPUTE_DTYPES)
# The fastest one the machine supports that starts the run
# (core/optim/precision.py), kept by its resumes.
AUTO = "auto"
