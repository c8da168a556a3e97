"""A local cluster for trying multi-worker training on one machine.

  python -m train.launch --workers=2 -- --dataset=fashion_mnist --epochs=1

picks free loopback ports, starts one `python -m train.main
--strategy=multi_worker <flags>` per worker with its TF_CONFIG, prefixes each
output line with the worker's name, and stops every worker if one fails (or
if the launcher itself gets SIGTERM/SIGINT/SIGHUP, which it passes on as
SIGTERM: the workers checkpoint together and exit 75). Its exit code is the
first failing worker's, or 0. On several machines, set TF_CONFIG on each and
run `train.main --strategy=multi_worker` there instead (README, BUILD.md).

TF's gRPC servers listen on every interface, not only loopback, and anyone
who reaches a worker's port can run ops in it. The launcher therefore first
moves itself into a new network namespace that holds only loopback
(`unshare`: root, or unprivileged user namespaces); where that is not
possible it refuses in one line (exit 2) unless `--network=host` says to
use the machine's network anyway. Isolation fails closed.

The workers die with the launcher: each asks the kernel for SIGTERM when its
parent goes (`PR_SET_PDEATHSIG`), so a `kill -9` of the launcher makes them
checkpoint and stop, not train on unwatched. After the first worker ends,
the others get `--grace_seconds` (default 30; a preempted worker's peers
are saving their checkpoints, so give slow storage more) before SIGKILL.

On a machine with GPUs each worker gets its own: `--gpus_per_worker=N`
(default: the GPUs shared out evenly) sets each worker's
CUDA_VISIBLE_DEVICES to N of the GPUs the launcher may use (its own
CUDA_VISIBLE_DEVICES, else what `nvidia-smi` lists); 0 runs the workers on
the CPU. The workers take GPU memory as they need it (train.main's
--gpu_memory_growth, on by default).
"""

import argparse
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import List, Optional, Sequence

from core.runtime import errors
from train.startup import cli

# When a worker fails, the others notice within TF's heartbeat timeout (10 s)
# and leave with a line naming it; one still running after this many seconds
# (waiting for a peer that never joined, say) is killed.
GRACE_SECONDS = 30
_IN_NAMESPACE = "TRAIN_LAUNCH_PRIVATE_NETWORK"


def free_ports(count: int) -> List[int]:
  """`count` distinct free TCP ports on loopback."""
  sockets = []
  try:
    for _ in range(count):
      s = socket.socket()
      s.bind(("127.0.0.1", 0))
      sockets.append(s)
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def tf_configs(ports: Sequence[int]) -> List[str]:
  """One TF_CONFIG per worker of a loopback cluster (worker 0 is chief)."""
  cluster = {"worker": [f"localhost:{p}" for p in ports]}
  return [json.dumps({"cluster": cluster,
                      "task": {"type": "worker", "index": i}})
          for i in range(len(ports))]


def worker_environment(environ, config: str, workers: int,
                       gpus: Optional[str] = None) -> dict:
  """A worker's environment: `environ` with this worker's TF_CONFIG (one
  exported already is replaced), its GPUs as CUDA_VISIBLE_DEVICES when
  `gpus` is given ("" for none), and, unless `environ` sets them, thread
  counts that share the machine's cores among the workers (without them
  each would run as many threads as there are cores: 2 workers on 2 cores,
  6 % slower)."""
  threads = {"TF_NUM_INTRAOP_THREADS": str(max(1, _cores() // workers)),
             "TF_NUM_INTEROP_THREADS": "1"}
  own = {"TF_CONFIG": config}
  if gpus is not None:
    own["CUDA_VISIBLE_DEVICES"] = gpus
  return {**threads, **environ, **own}


def visible_gpus(environ, run=subprocess.run) -> List[str]:
  """The GPUs the workers may use: the launcher's own CUDA_VISIBLE_DEVICES
  when set, else the indices `nvidia-smi` lists (none without it)."""
  if "CUDA_VISIBLE_DEVICES" in environ:
    return [g.strip() for g in environ["CUDA_VISIBLE_DEVICES"].split(",")
            if g.strip() and not g.strip().startswith("-")]
  tool = shutil.which("nvidia-smi", path=environ.get("PATH"))
  if not tool:
    return []
  try:
    listed = run([tool, "--query-gpu=index", "--format=csv,noheader"],
                 capture_output=True, text=True, timeout=60, check=False)
  except (OSError, subprocess.SubprocessError):
    return []
  if listed.returncode:
    return []
  return [line.strip() for line in listed.stdout.splitlines() if line.strip()]


def gpu_shares(gpus: Sequence[str], workers: int,
               per_worker: Optional[int]) -> List[Optional[str]]:
  """Each worker's CUDA_VISIBLE_DEVICES: `per_worker` of `gpus` each, in
  order (default: as many as every worker can have, at least one); None
  for all when there are no GPUs and none were asked for.

  Raises:
    InputError: More GPUs asked for than there are, naming both counts.
  """
  if per_worker is None:
    if not gpus:
      return [None] * workers
    per_worker = max(1, len(gpus) // workers)
  if per_worker * workers > len(gpus):
    raise errors.InputError(
        f"{workers} workers with {per_worker} GPU(s) each need "
        f"{per_worker * workers}, and the launcher sees {len(gpus)} "
        f"({'CUDA_VISIBLE_DEVICES' if gpus else 'nvidia-smi lists none'}); "
        "pass --gpus_per_worker=0 to run the workers on the CPU.")
  return [",".join(gpus[i * per_worker:(i + 1) * per_worker])
          for i in range(workers)]


def _die_with_parent() -> None:  # runs in the child, before exec
  libc = ctypes.CDLL(None, use_errno=True)
  libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


class Cluster:
  """The worker processes, their output, and stopping them together."""

  def __init__(self, flags: Sequence[str], workers: int,
               grace_seconds: float = GRACE_SECONDS,
               gpus: Optional[Sequence[Optional[str]]] = None):
    self.grace_seconds = grace_seconds
    self.procs: List[subprocess.Popen] = []
    self._threads = []
    self._reported, self._failed_at, self._ended = set(), 0.0, {}
    command = [sys.executable, "-m", "train.main", *flags,
               "--strategy=multi_worker"]
    gpus = gpus or [None] * workers
    for i, config in enumerate(tf_configs(free_ports(workers))):
      proc = subprocess.Popen(
          command, env=worker_environment(os.environ, config, workers,
                                          gpus[i]),
          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
          start_new_session=True, preexec_fn=_die_with_parent)
      print(f"[launch] worker {i}: pid {proc.pid}" + (
          f", GPUs {gpus[i] or 'none'}" if gpus[i] is not None else ""),
            flush=True)
      thread = threading.Thread(target=_prefix, args=(proc, f"worker {i}"),
                                daemon=True)
      thread.start()
      self.procs.append(proc)
      self._threads.append(thread)
      threading.Thread(target=self._watch, args=(i,), daemon=True).start()

  def signal_all(self, sig: int) -> None:
    for proc in self.procs:
      if proc.poll() is None:
        proc.send_signal(sig)

  def wait(self) -> int:
    """Waits for every worker; kills the rest `grace_seconds` after the
    first failure. Returns the first failing worker's exit code, or 0."""
    first: Optional[int] = None
    while True:
      running = len(self._ended) < len(self.procs)
      for i, code in self._new_failures():
        if first is None:
          first, self._failed_at = code, time.monotonic()
          print(f"[launch] worker {i} {_describe(code)}; the others stop on "
                f"their own or are killed in {self.grace_seconds:g} s",
                flush=True)
          killer = threading.Timer(self.grace_seconds, self.signal_all,
                                   (signal.SIGKILL,))
          killer.daemon = True
          killer.start()
        else:
          print(f"[launch] worker {i} {_describe(code)} "
                f"({time.monotonic() - self._failed_at:.1f} s after the "
                "first)", flush=True)
      if not running:
        break
      time.sleep(0.2)
    for thread in self._threads:
      thread.join(timeout=5)
    first = first or 0
    return first if first >= 0 else 128 - first

  def _new_failures(self):
    """Failures not reported yet, in the order the workers ended (a lost
    worker's peers end a few milliseconds after it)."""
    ended = sorted((self._ended[i], i) for i in range(len(self.procs))
                   if i in self._ended and i not in self._reported)
    for _, i in ended:
      self._reported.add(i)
      if self.procs[i].returncode:
        yield i, self.procs[i].returncode

  def _watch(self, i: int) -> None:
    self.procs[i].wait()
    self._ended[i] = time.monotonic()


def _cores() -> int:
  return len(os.sched_getaffinity(0)) if hasattr(
      os, "sched_getaffinity") else os.cpu_count() or 1


def _prefix(proc: subprocess.Popen, name: str) -> None:
  """Copies a worker's lines to stdout after `[name] `, to the end of its
  output: a worker whose pipe nobody drains blocks once 64 KiB wait in it,
  and every peer waits for it. stdout drops what its reader no longer
  takes (cli.OutlivingOutput); bytes that are not UTF-8 are shown as
  \\xNN."""
  for line in proc.stdout:
    sys.stdout.write(f"[{name}] {line.decode('utf-8', 'backslashreplace')}")
    sys.stdout.flush()


def _describe(code: int) -> str:
  if code < 0:
    return f"was killed by {signal.Signals(-code).name}"
  return f"exited with code {code}"


def isolate(argv: Sequence[str]) -> Optional[str]:
  """Re-executes the launcher in a network namespace with only loopback;
  returns why it cannot where this machine does not allow it."""
  if os.environ.get(_IN_NAMESPACE):
    return None
  missing = [tool for tool in ("unshare", "ip") if not shutil.which(tool)]
  if missing:
    return f"{' and '.join(missing)} not found"
  unshare = ["unshare", "-n" if os.geteuid() == 0 else "-rn"]
  probe = subprocess.run([*unshare, "ip", "link", "set", "lo", "up"],
                         capture_output=True, check=False)
  if probe.returncode:
    return (f"`{' '.join(unshare)}` was refused ("
            f"{probe.stderr.decode(errors='replace').strip()[:100]})")
  os.environ[_IN_NAMESPACE] = "1"
  os.execvp(unshare[0], [*unshare, "--", "sh", "-c",
                         'ip link set lo up && exec "$0" "$@"',
                         sys.executable, "-m", "train.launch", *argv])


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m train.launch", description=__doc__.split("\n")[0],
      usage="python -m train.launch --workers=N -- <train.main flags>")
  parser.add_argument("--workers", type=int, default=2,
                      help="worker processes to start (default 2)")
  parser.add_argument("--network", choices=("private", "host"),
                      default="private",
                      help="private: a network namespace with only loopback "
                      "where possible (default); host: this machine's")
  parser.add_argument("--grace_seconds", type=float, default=GRACE_SECONDS,
                      help="seconds the other workers get after the first "
                      "ends before SIGKILL (default 30)")
  parser.add_argument("--gpus_per_worker", type=int, default=None,
                      help="GPUs each worker gets as its CUDA_VISIBLE_DEVICES "
                      "(default: the GPUs shared out evenly; 0: the CPU)")
  parser.add_argument("flags", nargs="*", help="flags for train.main")
  return parser


def _problem(args) -> Optional[str]:
  """What is wrong with the launcher's own flags, in one line, or None."""
  if args.workers < 1:
    return ("--workers must be a positive integer; received "
            f"--workers={args.workers}.")
  if any(f.startswith("--strategy") for f in args.flags):
    return ("train.launch runs --strategy=multi_worker; leave --strategy "
            "out of the flags.")
  if args.grace_seconds <= 0:
    return ("--grace_seconds must be positive; received "
            f"--grace_seconds={args.grace_seconds:g}.")
  if args.gpus_per_worker is not None and args.gpus_per_worker < 0:
    return ("--gpus_per_worker must be 0 or more; received "
            f"--gpus_per_worker={args.gpus_per_worker}.")
  return None


def main(argv: Sequence[str]) -> int:
  args = _parser().parse_args(argv)
  problem = _problem(args)
  try:
    gpus = None if problem else gpu_shares(
        visible_gpus(os.environ), args.workers, args.gpus_per_worker)
  except errors.InputError as e:
    problem = str(e)
  if not problem and args.network == "private":
    why = isolate(argv)
    if why:
      problem = (f"no private network namespace here ({why}), and the "
                 "workers' gRPC ports would be open on every interface; run "
                 "where unshare is allowed, or pass --network=host to accept "
                 "that.")
  if problem:
    print(f"error: {problem}", file=sys.stderr)
    return errors.EXIT_USAGE
  sys.stdout = cli.OutlivingOutput(sys.stdout)
  cluster = Cluster(args.flags, args.workers, args.grace_seconds, gpus)
  for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, lambda *_: cluster.signal_all(signal.SIGTERM))
  return cluster.wait()


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
