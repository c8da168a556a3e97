"""tf.Module layers with explicit, eagerly created tf.Variable weights (NHWC)."""
