"""A cluster's failures as one line: TensorFlow's errors for a worker that
never joined or was lost, turned into a ClusterError that names it (exit
69; BUILD.md "Several machines"). Without a cluster they pass unchanged."""

import contextlib
import re
from typing import Optional

import tensorflow as tf

from core.runtime import cluster as cluster_lib
from core.runtime.errors import ClusterError


@contextlib.contextmanager
def naming_missing_workers(cluster: Optional[cluster_lib.Cluster],
                           join_timeout: int):
  """While the strategy is built: a cluster that does not form within
  `join_timeout` seconds is one line naming the workers that did not join.

  Raises:
    ClusterError: Instead of TF's error, in a multi-worker run.
  """
  try:
    yield
  except tf.errors.OpError as e:
    if cluster is None:
      raise
    missing = sorted(set(cluster_lib.lost_tasks(cluster, e.message)))
    raise ClusterError(
        f"the cluster did not form within --cluster_join_timeout="
        f"{join_timeout} s"
        + (f": {', '.join(missing)} did not join" if missing else
           f" ({first_line(e.message)})")
        + "; start every worker listed in TF_CONFIG.") from None


@contextlib.contextmanager
def naming_lost_workers(cluster: Optional[cluster_lib.Cluster]):
  """While the run runs: TF's error for a lost peer is one line naming it.

  Raises:
    ClusterError: Instead of TF's error, when it names a peer of `cluster`.
  """
  try:
    yield
  except tf.errors.OpError as e:
    lost = cluster and cluster_lib.lost_tasks(cluster, e.message)
    if not lost:
      raise
    raise ClusterError(
        f"lost {lost[0]}: {reason(e.message)}; {cluster.name} stopped "
        "too. Restart every worker with the same command to resume from the "
        "newest checkpoint.") from None


def reason(message: str) -> str:
  """Why a peer was lost, from TF's error message."""
  if "heartbeat" in message:
    return "it stopped sending heartbeats (hung, stopped or unreachable)"
  if re.search(r"Connection reset|Connection refused|Socket closed|"
               r"failed to connect", message, re.I):
    return "its connection closed (the process ended)"
  if "Deadline" in message or "timed out" in message:
    return "it did not answer in time"
  return first_line(message)


def first_line(message: str) -> str:
  """The first line of a message, at most 200 characters ("?" if empty)."""
  return message.strip().splitlines()[0][:200] if message.strip() else "?"
