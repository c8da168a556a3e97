"""Strategies, logical CPU devices, and the one distribution convention.

The convention, which every part of the engine follows:
  1. Input: each global batch of B examples is split into N contiguous
     replica slices of B/N rows, replica r taking rows [r B/N, (r+1) B/N)
     (core/pipeline.py); dropout draws noise for all B rows and keeps its own
     (layers/dropout.py).
  2. Loss: each replica sums its per-example losses and divides by B, the
     *global* batch (core/losses.py), so the sum over replicas is the mean.
  3. Gradients: all-reduced once with SUM, explicitly, in replica context.
  4. Updates: every replica applies the same optimizer update, computed from
     the same reduced gradients and the same slot values, to its own copy.
     Weights and slots are MirroredVariables with aggregation NONE
     (layers/variables.py), so the update is a local assign.
  5. Counters that only the loop touches (global step, data cursor) are
     assigned in cross-replica context. Metrics are SyncOnRead/SUM.
tests/distribution_test.py checks that 2 replicas match 1 and stay identical.
"""


import os
from typing import Callable, NamedTuple

from absl import logging
import tensorflow as tf

from core.errors import InputError

STRATEGIES = ("mirrored", "one_device", "default")


def configure_cpu_devices(count: int, *,
                          warn: Callable[[str], None] = logging.warning
                          ) -> None:
  """Splits the physical CPU into `count` logical devices.

  With more than one, each replica's kernels get an equal share of the cores
  (intra-op threads = cores / count) and the replicas run side by side
  (inter-op threads = count). TF's default gives every kernel all the cores,
  so two replicas' kernels fight over the same threads: on 2 cores at 28x28
  the two-replica step took 113 ms instead of 98 (BUILD.md).
  On a machine with GPUs the GPUs are the replicas: a count above 1 is
  ignored, with one line to `warn`.
  Must run before TensorFlow initialises its devices (before any op).

  Raises:
    InputError: If `count` < 1, or TF is already initialised with another
      number of CPU devices.
  """
  if not isinstance(count, int) or isinstance(count, bool) or count < 1:
    raise InputError(f"`num_cpu_devices` must be a positive integer; "
                     f"received num_cpu_devices={count!r}.")
  gpus = tf.config.list_physical_devices("GPU")
  if gpus and count > 1:
    warn(f"--num_cpu_devices={count} is ignored: this machine has "
         f"{len(gpus)} GPU(s), and --strategy=mirrored replicates over them.")
    return
  cpu = tf.config.list_physical_devices("CPU")[0]
  current = tf.config.get_logical_device_configuration(cpu)
  if current is not None and len(current) == count:
    return
  if count == 1 and current is None:
    return
  try:
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    tf.config.threading.set_intra_op_parallelism_threads(
        max(1, _cores() // count))
    tf.config.threading.set_inter_op_parallelism_threads(count)
  except RuntimeError:
    have = len(tf.config.list_logical_devices("CPU"))
    if have != count:
      raise InputError(
          f"TensorFlow is already initialised with {have} CPU devices; "
          f"`num_cpu_devices`={count} must be set before any TF op runs."
      ) from None


def _cores() -> int:
  """Cores this process may run on (the affinity mask, not the host's)."""
  if hasattr(os, "sched_getaffinity"):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


def make_strategy(name: str) -> tf.distribute.Strategy:
  """Builds a strategy over this machine's devices.

  "mirrored" replicates over every GPU, or over every logical CPU device when
  there is no GPU (reducing gradients on the first one); "one_device" uses
  GPU:0 or CPU:0; "default" is TF's no-op strategy.

  Raises:
    InputError: If `name` is unknown.
  """
  if name not in STRATEGIES:
    raise InputError(f"`strategy` must be one of {', '.join(STRATEGIES)}; "
                     f"received strategy={name!r}.")
  gpus = tf.config.list_logical_devices("GPU")
  devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
  if name == "mirrored":
    # GPUs: TF's default (NCCL all-reduce). Logical CPU devices share one
    # memory, where the sum on one device plus copies beats the collective
    # ring, which packs every gradient into one buffer and splits it again:
    # 2 replicas at 28x28 took 101 ms per step with it, 89 without.
    return tf.distribute.MirroredStrategy(
        devices, cross_device_ops=None if gpus else
        tf.distribute.ReductionToOneDevice())
  if name == "one_device":
    return tf.distribute.OneDeviceStrategy(devices[0])
  return tf.distribute.get_strategy()


class BatchSplit(NamedTuple):
  """How a global batch is cut over the replicas (convention 1); computed
  once per run by `split_batch` and passed to whatever needs it."""
  global_batch_size: int
  num_replicas: int

  @property
  def per_replica(self) -> int:
    return self.global_batch_size // self.num_replicas


def split_batch(global_batch_size: int,
                strategy: tf.distribute.Strategy) -> BatchSplit:
  """The run's `BatchSplit` over `strategy`'s replicas.

  Raises:
    InputError: If the global batch does not split evenly over the replicas.
  """
  replicas = strategy.num_replicas_in_sync
  if global_batch_size % replicas:
    raise InputError(
        f"`global_batch_size` must be divisible by the number of replicas "
        f"({replicas}); received global_batch_size={global_batch_size}.")
  return BatchSplit(global_batch_size, replicas)


def replica_row_offset(per_replica_batch: int) -> tf.Tensor:
  """First row of this replica's slice of the global batch (convention 1)."""
  context = tf.distribute.get_replica_context()
  replica = 0 if context is None else context.replica_id_in_sync_group
  return tf.cast(replica, tf.int32) * per_replica_batch


def all_reduce_sum(values: list) -> list:
  """SUM all-reduce across replicas (identity without a strategy)."""
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return list(values)
  return context.all_reduce(tf.distribute.ReduceOp.SUM, list(values))
