"""The engine as every bench tool builds it: an Engine over synthetic data on
`replicas` logical CPU devices, and an iterator from the first step."""

from core import datasets


def engine_on(split: datasets.Split, *, image_size: int, replicas: int,
              batch: int, steps_per_epoch: int = 16, **config):
  """Returns (engine, iterator, strategy).

  Splits the CPU first, so call it before any TensorFlow op runs. One replica
  uses OneDeviceStrategy, more use MirroredStrategy; `config` holds further
  TrainConfig fields (e.g. jit_compile=True).
  """
  from core import distribution, pipeline
  distribution.configure_cpu_devices(replicas)
  from train.config import TrainConfig
  from train.engine import Engine
  strategy = distribution.make_strategy("mirrored" if replicas > 1
                                        else "one_device")
  engine = Engine(TrainConfig(model_dir="/unused", image_size=image_size,
                              global_batch_size=batch,
                              num_cpu_devices=replicas, **config),
                  strategy, steps_per_epoch=steps_per_epoch,
                  total_steps=10**6)
  return (engine, engine.train_iterator(split, pipeline.Cursor(0, 0)),
          strategy)
