"""Strategies, logical CPU devices, and the one distribution convention.

The convention, which every part of the engine follows:
  1. Input: each global batch of B examples is split into N contiguous
     replica slices of B/N rows, replica r taking rows [r B/N, (r+1) B/N)
     (core/data/pipeline.py); dropout draws noise for all B rows and keeps its
     own (layers/dropout.py).
  2. Loss: each replica sums its per-example losses and divides by B, the
     *global* batch (core/optim/losses.py), so the sum over replicas is the
     mean.
  3. Gradients: all-reduced once with SUM, explicitly, in replica context.
  4. Updates: every replica applies the same optimizer update, computed from
     the same reduced gradients and the same slot values, to its own copy.
     Weights and slots are MirroredVariables with aggregation NONE
     (layers/variables.py), so the update is a local assign.
  5. Counters that only the loop touches (global step, data cursor) are
     assigned in cross-replica context. Metrics are SyncOnRead/SUM.
  6. Decisions that end a loop (a stop request) are agreed by every worker
     through a collective (`agree_any`), so all stop at the same step.
Across several workers (MultiWorkerMirroredStrategy) replica ids are global,
so rows, dropout noise and the loss scale hold across machines unchanged.
tests/distribution_test.py checks that 2 replicas match 1 and stay identical;
tests/multi_worker_test.py that 2 worker processes match both.
"""


import os
from typing import Callable, NamedTuple, Optional

from absl import logging
import tensorflow as tf

from core.runtime import cluster as cluster_lib
from core.runtime.choices import STRATEGIES
from core.runtime.errors import InputError

# Multi-worker fault detection (BUILD.md, "Several machines"). A dead peer
# closes its connections, and a collective waiting on it fails at once; a
# peer that hangs or loses its network stops sending heartbeats, and the
# coordination service aborts every collective HEARTBEAT_TIMEOUT_S later.
# No collective timeout: TF (2.21) runs each collective that has one with a
# thread of its own pool ("collective_ops") parked until the timeout expires,
# even when the collective finished at once. A 2-worker run grew by ~11
# threads a step (1,000 after 70 steps, 3,300 after 270) and died near step
# 1,100 ("Resource temporarily unavailable"); without it 120 threads, flat
# (bench/cluster_soak.py, tests/multi_worker_test.py). The heartbeats
# above still end a run whose peer died, hung or lost its network.
HEARTBEAT_TIMEOUT_S = 10
SHUTDOWN_BARRIER_TIMEOUT_S = 60


def configure_gpus(*, use: bool = True, memory_growth: bool = True) -> int:
  """Hides the GPUs (`use` False: a CPU run on a GPU machine), or lets
  TensorFlow take each one's memory as it needs it (`memory_growth`;
  without it every process claims a whole GPU at start, so two workers on
  one machine could not share it). Must run before any op.

  Returns:
    The GPUs the run will use.
  """
  gpus = tf.config.list_physical_devices("GPU")
  if not gpus:
    return 0
  if not use:
    tf.config.set_visible_devices([], "GPU")
    return 0
  if memory_growth:
    for gpu in gpus:
      tf.config.experimental.set_memory_growth(gpu, True)
  return len(gpus)


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


def make_strategy(name: str, *,
                  cluster: Optional[cluster_lib.Cluster] = None,
                  join_timeout: int = 300) -> tf.distribute.Strategy:
  """Builds a strategy over this machine's devices (and its peers').

  "mirrored" replicates over every GPU, or over every logical CPU device when
  there is no GPU (reducing gradients on the first one); "one_device" uses
  GPU:0 or CPU:0; "default" is TF's no-op strategy; "multi_worker" is TF's
  MultiWorkerMirroredStrategy over `cluster` (from TF_CONFIG), which must be
  built before any TF op runs.

  Raises:
    InputError: If `name` is unknown, or "multi_worker" has no `cluster`.
  """
  if name not in STRATEGIES:
    raise InputError(f"`strategy` must be one of {', '.join(STRATEGIES)}; "
                     f"received strategy={name!r}.")
  if name == "multi_worker":
    if cluster is None:
      raise InputError("--strategy=multi_worker needs the cluster from "
                       "TF_CONFIG.")
    return _multi_worker(cluster, join_timeout)
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


def _multi_worker(cluster: cluster_lib.Cluster,
                  join_timeout: int) -> tf.distribute.Strategy:
  """MultiWorkerMirroredStrategy with deliberate timeouts.

  TF configures its coordination service itself when none is set; setting it
  first is the only way to choose how long workers wait for each other to
  join, how soon a silent peer counts as lost, and how long the last one
  waits for the others at exit. There is no public API for it (TF's own
  strategy calls the same private method).
  """
  # pylint: disable=g-import-not-at-top
  from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
  from tensorflow.python.eager import context
  jobs = [coordination_config_pb2.CoordinatedJob(name=job,
                                                 num_tasks=len(addresses))
          for job, addresses in cluster.jobs.items()]
  leader = "chief" if "chief" in cluster.jobs else "worker"
  context.context().configure_coordination_service(
      service_type="standalone",
      service_leader=f"/job:{leader}/replica:0/task:0",
      heartbeat_timeout_in_ms=HEARTBEAT_TIMEOUT_S * 1000,
      cluster_register_timeout_in_ms=join_timeout * 1000,
      shutdown_barrier_timeout_in_ms=SHUTDOWN_BARRIER_TIMEOUT_S * 1000,
      coordinated_jobs=jobs)
  # Without it a worker waits for missing peers forever, whatever the
  # register timeout says; with it, joining is a barrier with that timeout.
  context.context().coordination_service.cluster_register_with_barrier = True
  gpus = tf.config.list_physical_devices("GPU")
  implementation = tf.distribute.experimental.CommunicationImplementation
  # CPUs: RING over gRPC (NCCL needs GPUs); GPUs: TF's choice (NCCL).
  options = tf.distribute.experimental.CommunicationOptions(
      implementation=implementation.AUTO if gpus else implementation.RING)
  return tf.distribute.MultiWorkerMirroredStrategy(
      communication_options=options)


def input_pipelines(strategy: tf.distribute.Strategy) -> int:
  """The processes that train under `strategy`, each with its own input
  pipeline (1 for a one-process strategy)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None:
    return 1
  spec = resolver.cluster_spec().as_dict()
  return max(1, sum(len(spec.get(job, ())) for job in cluster_lib.JOBS))


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
  """Whether `strategy` spans several processes."""
  return input_pipelines(strategy) > 1


def agree_any(strategy: tf.distribute.Strategy, flag) -> tf.Tensor:
  """True on every worker if `flag` (a local bool) is True on any of them.

  One scalar all-reduce across processes; within one process every replica
  reads the same flag, so nothing is exchanged. Call in cross-replica
  context, from every worker at the same point of the program.
  """
  if not is_multi_worker(strategy):
    return tf.convert_to_tensor(flag)
  votes = strategy.run(lambda: tf.cast(flag, tf.int32))
  return strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None) > 0


def same_everywhere(strategy: tf.distribute.Strategy, value: int) -> bool:
  """Whether every worker holds the same `value` (one collective; call from
  every worker at once)."""

  @tf.function
  def differs():
    def vote():
      context = tf.distribute.get_replica_context()
      mine = tf.constant(value, tf.int64)
      first = tf.equal(context.replica_id_in_sync_group, 0)
      return tf.where(first, mine, tf.zeros_like(mine))
    # Replica 0 is on the chief: the sum of the votes is its value.
    chief = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(vote),
                            axis=None)
    return agree_any(strategy, tf.not_equal(chief, value))

  return not bool(differs())


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
