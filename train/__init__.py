"""The training engine: configuration, step, loops, summaries and export."""
