"""The cluster a multi-worker run belongs to, read from `TF_CONFIG`.

TF's MultiWorkerMirroredStrategy reads the same variable, but a missing or
malformed one surfaces there as a ValueError deep inside the strategy, or as
a process that waits for peers that do not exist. This module reads it first
(without TensorFlow, so it runs before TF starts) and turns every mistake into
one line. It also names tasks the way users do ("worker 1 (10.0.0.2:2222)"),
and finds the lost task in TF's error when a peer dies.

The format (TF's):
  {"cluster": {"worker": ["host:port", ...], "chief": ["host:port"]},
   "task": {"type": "worker", "index": 0}}
The chief, if listed, is the writer; otherwise worker 0 is.
"""

import dataclasses
import json
import os
import re
from typing import Dict, List, Mapping, Tuple

from core.runtime.errors import InputError

JOBS = ("chief", "worker")
_ADDRESS = re.compile(r"^\[?[A-Za-z0-9_.:-]+\]?:\d{1,5}$")
_TASK_IN_ERROR = re.compile(
    r"/job:(chief|worker)(?:/replica:\d+)?/task:(\d+)")


@dataclasses.dataclass(frozen=True)
class Cluster:
  """This process's place in the cluster."""
  jobs: Dict[str, Tuple[str, ...]]   # job name -> addresses, in task order
  task_type: str
  task_index: int

  @property
  def num_workers(self) -> int:
    """Processes that train (the chief trains too)."""
    return sum(len(self.jobs.get(job, ())) for job in JOBS)

  @property
  def is_chief(self) -> bool:
    """Whether this process writes the run's files."""
    if "chief" in self.jobs:
      return self.task_type == "chief"
    return self.task_type == "worker" and self.task_index == 0

  @property
  def name(self) -> str:
    return task_name(self, self.task_type, self.task_index)

  def tasks(self) -> List[Tuple[str, int]]:
    """Every (type, index), chief first."""
    return [(job, i) for job in JOBS for i in range(len(self.jobs.get(job,
                                                                      ())))]


def task_name(cluster: Cluster, task_type: str, index: int) -> str:
  """"worker 1 (host:port)", as messages name a task."""
  addresses = cluster.jobs.get(task_type, ())
  where = f" ({addresses[index]})" if index < len(addresses) else ""
  return f"{task_type} {index}{where}"


def from_environment(environ: Mapping[str, str] = os.environ) -> Cluster:
  """Parses `TF_CONFIG`.

  Raises:
    InputError: If it is missing, not JSON, or does not describe a cluster
      with this task in it (one line saying which part is wrong).
  """
  text = environ.get("TF_CONFIG", "").strip()
  if not text:
    raise InputError(
        "--strategy=multi_worker needs TF_CONFIG, the JSON that names the "
        "cluster and this task, e.g. {\"cluster\": {\"worker\": [\"host1:"
        "2222\", \"host2:2222\"]}, \"task\": {\"type\": \"worker\", "
        "\"index\": 0}} (python -m train.launch sets it for a local "
        "cluster).")
  try:
    config = json.loads(text)
  except ValueError as e:
    raise InputError(f"TF_CONFIG is not valid JSON ({e}).") from None
  if not isinstance(config, dict):
    raise InputError("TF_CONFIG must be a JSON object with \"cluster\" and "
                     "\"task\".")
  return Cluster(_jobs(config.get("cluster")), *_task(config.get("task"),
                                                      config.get("cluster")))


def _jobs(cluster) -> Dict[str, Tuple[str, ...]]:
  if not isinstance(cluster, dict) or not cluster.get("worker"):
    raise InputError("TF_CONFIG's \"cluster\" must list at least one "
                     "\"worker\" address (host:port).")
  jobs = {}
  for job, addresses in cluster.items():
    if job not in JOBS:
      raise InputError(f"TF_CONFIG's cluster has a {job!r} job; this engine "
                       f"trains with {' and '.join(JOBS)} tasks only.")
    if isinstance(addresses, str) or not isinstance(addresses, list) or not (
        addresses and all(isinstance(a, str) and _ADDRESS.match(a)
                          for a in addresses)):
      raise InputError(f"TF_CONFIG's cluster.{job} must be a list of "
                       f"host:port addresses; received {addresses!r}.")
    if len(set(addresses)) != len(addresses):
      raise InputError(f"TF_CONFIG's cluster.{job} lists an address twice: "
                       f"{addresses!r}.")
    jobs[job] = tuple(addresses)
  if len(jobs.get("chief", ())) > 1:
    raise InputError("TF_CONFIG's cluster may have one chief; received "
                     f"{list(jobs['chief'])!r}.")
  return jobs


def _task(task, cluster) -> Tuple[str, int]:
  if not isinstance(task, dict):
    raise InputError("TF_CONFIG needs \"task\": {\"type\": ..., \"index\": "
                     "...} naming this process.")
  task_type, index = task.get("type"), task.get("index", 0)
  addresses = cluster.get(task_type) if task_type in JOBS else None
  if not addresses:
    raise InputError(f"TF_CONFIG's task type {task_type!r} is not a job of "
                     f"its cluster ({', '.join(sorted(cluster))}).")
  if isinstance(index, bool) or not isinstance(index, int) or not (
      0 <= index < len(addresses)):
    raise InputError(f"TF_CONFIG's task index {index!r} is not in [0, "
                     f"{len(addresses)}) for the {task_type} job.")
  return task_type, index


def lost_tasks(cluster: Cluster, message: str) -> List[str]:
  """The tasks a TF error blames, named as users name them, in order.

  TF's coordination service and collectives name tasks as
  /job:worker/replica:0/task:1 (or /job:worker/task:1); the ones named that
  are not this process are the lost (or missing) ones.
  """
  found = []
  for job, index in _TASK_IN_ERROR.findall(message):
    name = task_name(cluster, job, int(index))
    if (job, int(index)) != (cluster.task_type, cluster.task_index) and (
        name not in found):
      found.append(name)
  return found
