"""The engine: model, optimizer, counters and compiled loops, built in scope."""

from typing import Dict

import numpy as np
import tensorflow as tf

from core import datasets
from core import metrics
from core import optimizers
from core import pipeline
from core import schedules
from core.loss_scale import DynamicLossScale
from layers.googlenet import GoogLeNet
from train import step as step_lib
from train.config import TrainConfig
from train.state import TrainState
from train.trainer import Trainer

COMPUTE_DTYPES = {"float32": tf.float32, "mixed_float16": tf.float16,
                  "mixed_bfloat16": tf.bfloat16}


def make_schedule(config: TrainConfig, steps_per_epoch: int,
                  total_steps: int):
  """The learning-rate schedule the config names."""
  if config.lr_schedule == "step":
    # The paper: 4 % lower every 8 epochs.
    return schedules.StepDecay(config.rate, decay_steps=8 * steps_per_epoch)
  if config.lr_schedule == "cosine":
    return schedules.WarmupCosine(config.rate, total_steps=total_steps,
                                  warmup_steps=min(config.warmup_steps,
                                                   total_steps - 1))
  return schedules.Constant(config.rate)


class Engine:
  """Every variable of a run, created eagerly inside `strategy.scope()`,
  and the two compiled loops (train, evaluate)."""

  def __init__(self, config: TrainConfig, strategy: tf.distribute.Strategy,
               *, steps_per_epoch: int, total_steps: int):
    self.config, self.strategy = config, strategy
    self.compute_dtype = COMPUTE_DTYPES[config.mixed_precision]
    with strategy.scope():
      self.model = GoogLeNet(num_classes=datasets.NUM_CLASSES,
                             in_channels=datasets.IMAGE_SHAPE[-1],
                             image_size=config.image_size)
      kwargs = ({"momentum": config.momentum, "nesterov": config.nesterov}
                if config.optimizer == "sgd" else {})
      self.optimizer = optimizers.create(
          config.optimizer, self.model.trainable_variables,
          make_schedule(config, steps_per_epoch, total_steps), **kwargs)
      self.loss_scale = (DynamicLossScale()
                         if config.mixed_precision == "mixed_float16"
                         else None)
      self.state = TrainState(config.seed)
      self.train_sums = metrics.Sums(step_lib.TRAIN_SUMS, name="train_sums")
      self.eval_sums = metrics.Sums(
          step_lib.eval_sums(datasets.NUM_CLASSES), name="eval_sums")
    self.train_step = step_lib.TrainStep(
        self.model, self.optimizer, self.state, self.train_sums,
        global_batch_size=config.global_batch_size,
        aux_weights=config.aux_loss_weights,
        compute_dtype=self.compute_dtype, loss_scale=self.loss_scale,
        jit_compile=config.jit_compile)
    self.trainer = Trainer(strategy, self.train_step, self.train_sums,
                           self.state)
    self.evaluator = Trainer(
        strategy, step_lib.EvalStep(self.model, self.eval_sums,
                                    compute_dtype=self.compute_dtype),
        self.eval_sums, None)

  def checkpoint_objects(self) -> Dict[str, tf.Module]:
    """What a checkpoint holds; the keys are checkpoint names (API)."""
    objects = {"model": self.model, "optimizer": self.optimizer,
               "state": self.state}
    if self.loss_scale is not None:
      objects["loss_scale"] = self.loss_scale
    return objects

  def train_iterator(self, split: datasets.Split,
                     start: pipeline.Cursor):
    """A distributed iterator over the training stream from `start`."""
    n, batch = len(split.labels), self.config.global_batch_size
    seed = self.config.seed
    return iter(pipeline.distribute(
        self.strategy, lambda: pipeline.train_indices(n, batch, seed, start),
        split, batch))

  def evaluate(self, split: datasets.Split) -> Dict[str, np.ndarray]:
    """Main-head sums over every example of `split` (padding ignored)."""
    n, batch = len(split.labels), self.config.global_batch_size
    dataset = pipeline.distribute(
        self.strategy, lambda: pipeline.eval_indices(n, batch), split, batch)
    return self.evaluator.run(iter(dataset), pipeline.eval_steps(n, batch))
