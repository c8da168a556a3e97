"""The engine's parts on raw TensorFlow, in three families: `data` (sources
and input pipelines), `optim` (losses, metrics, optimizers, schedules) and
`runtime` (distribution, cluster, checkpointing, errors)."""
