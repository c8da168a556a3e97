"""Analytic cost of a model: multiply-adds of its convolutions and matrix
products, read from the graph traced with textbook convolutions (so fused
kernels count exactly once, and the engine's exact shortcuts on small maps,
layers/formulations.py, do not change the count: MFU is reported on the nominal
model, as the paper's 1.58 G multiply-adds are)."""

import tensorflow as tf



def forward_macs(fn, input_spec: tf.TensorSpec) -> int:
  """Multiply-adds of one call of `fn` on a batch of 1.

  Args:
    fn: A Python callable of one tensor (traced with `tf.function`); pass
      the model `reference=True` so the textbook graph is counted.
    input_spec: The input's spec with batch size 1.
  """
  graph = tf.function(fn).get_concrete_function(input_spec).graph
  total = 0
  for op in graph.get_operations():
    if op.type in ("Conv2D", "DepthwiseConv2dNative"):
      kernel = op.inputs[1].shape.as_list()  # [kh, kw, in, out]
      out = op.outputs[0].shape.as_list()    # [1, h, w, out]
      total += out[1] * out[2] * kernel[0] * kernel[1] * kernel[2] * kernel[3]
    elif op.type in ("MatMul", "BatchMatMulV2"):
      a, b = op.inputs[0].shape.as_list(), op.inputs[1].shape.as_list()
      rows = a[-1] if op.get_attr("transpose_a") else a[-2]
      inner = a[-2] if op.get_attr("transpose_a") else a[-1]
      cols = b[-2] if op.get_attr("transpose_b") else b[-1]
      total += rows * inner * cols
  return total


def training_flops_per_image(forward: int) -> float:
  """Training ~ 3x the forward pass (forward, input and weight gradients),
  2 FLOPs per multiply-add."""
  return 3 * 2 * forward
