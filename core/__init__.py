"""The engine's parts on raw TensorFlow: data, losses, metrics, optimizers,
schedules, checkpointing and distribution."""
