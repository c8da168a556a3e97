"""Optimisation: the weighted multi-head loss, metrics, raw-TF optimizers,
learning-rate schedules, the loss scale and weight averaging."""
