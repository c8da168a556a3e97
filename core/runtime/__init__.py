"""Runtime: distribution (strategies, the batch split, the distribution
convention), the cluster's TF_CONFIG, checkpointing, and the user-facing
errors with their exit codes."""
