"""The engine as every bench tool builds it: the run's trainer over synthetic
data on `replicas` logical CPU devices, and an iterator from the first step."""

from core.data import datasets


def engine_on(split: datasets.Split, *, image_size: int, replicas: int,
              batch: int, steps_per_epoch: int = 16, num_classes: int = 10,
              **config):
  """Returns (trainer, iterator, strategy): train/loop/trainer.py's
  Trainer; `trainer.loop.run(iterator, n)` runs n compiled steps.

  Splits the CPU first, so call it before any TensorFlow op runs. One replica
  uses OneDeviceStrategy, more use MirroredStrategy; `config` holds further
  RunConfig fields (e.g. jit_compile=True). The data set's facts come from
  `split` (image shape) and `num_classes`.
  """
  from core.runtime import distribution
  distribution.configure_cpu_devices(replicas)
  from train.startup.config import RunConfig
  from train.assembly import build
  strategy = distribution.make_strategy("mirrored" if replicas > 1
                                        else "one_device")
  info = datasets.DatasetInfo(
      "bench", tuple(split.images.shape[1:]),
      tuple(f"class {i}" for i in range(num_classes)))
  config, _ = build.with_precision(RunConfig(
      model_dir="/unused", image_size=image_size, global_batch_size=batch,
      num_cpu_devices=replicas, **config))  # --mixed_precision=auto
  trainer = build.training_parts(
      config, strategy, info, distribution.split_batch(batch, strategy),
      steps_per_epoch=steps_per_epoch, total_steps=10**6,
      in_memory=True).trainer
  return trainer, trainer.iterator(split, 0), strategy
