"""A local cluster for trying multi-worker training on one machine.

  python -m train.launch --workers=2 -- --dataset=fashion_mnist --epochs=1

picks free loopback ports, starts one `python -m train.main
--strategy=multi_worker <flags>` per worker with its TF_CONFIG, prefixes each
output line with the worker's name, and stops every worker if one fails (or
if the launcher itself gets SIGTERM/SIGINT, which it passes on: the workers
checkpoint together and exit 75). Its exit code is the first failing
worker's, or 0. On several machines, set TF_CONFIG on each and run
`train.main --strategy=multi_worker` there instead (README, BUILD.md).

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


def worker_environment(environ, config: str, workers: int) -> dict:
  """A worker's environment: `environ` with this worker's TF_CONFIG (one
  exported already is replaced) and, unless `environ` sets them, thread
  counts that share the machine's cores among the workers (without them
  each would run as many threads as there are cores: 2 workers on 2 cores,
  6 % slower)."""
  threads = {"TF_NUM_INTRAOP_THREADS": str(max(1, _cores() // workers)),
             "TF_NUM_INTEROP_THREADS": "1"}
  return {**threads, **environ, "TF_CONFIG": config}


def _die_with_parent() -> None:  # runs in the child, before exec
  libc = ctypes.CDLL(None, use_errno=True)
  libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


class Cluster:
  """The worker processes, their output, and stopping them together."""

  def __init__(self, flags: Sequence[str], workers: int,
               grace_seconds: float = GRACE_SECONDS):
    self.grace_seconds = grace_seconds
    self.procs: List[subprocess.Popen] = []
    self._threads = []
    self._reported, self._failed_at, self._ended = set(), 0.0, {}
    command = [sys.executable, "-m", "train.main", *flags,
               "--strategy=multi_worker"]
    for i, config in enumerate(tf_configs(free_ports(workers))):
      proc = subprocess.Popen(
          command, env=worker_environment(os.environ, config, workers),
          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
          bufsize=1, start_new_session=True, preexec_fn=_die_with_parent)
      print(f"[launch] worker {i}: pid {proc.pid}", flush=True)
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
  for line in proc.stdout:
    sys.stdout.write(f"[{name}] {line}")
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


def main(argv: Sequence[str]) -> int:
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
  parser.add_argument("flags", nargs="*", help="flags for train.main")
  args = parser.parse_args(argv)
  if args.workers < 1:
    print("error: --workers must be a positive integer; received "
          f"--workers={args.workers}.", file=sys.stderr)
    return errors.EXIT_USAGE
  if any(f.startswith("--strategy") for f in args.flags):
    print("error: train.launch runs --strategy=multi_worker; leave "
          "--strategy out of the flags.", file=sys.stderr)
    return errors.EXIT_USAGE
  if args.grace_seconds <= 0:
    print("error: --grace_seconds must be positive; received "
          f"--grace_seconds={args.grace_seconds:g}.", file=sys.stderr)
    return errors.EXIT_USAGE
  if args.network == "private":
    why = isolate(argv)
    if why:
      print(f"error: no private network namespace here ({why}), and the "
            "workers' gRPC ports would be open on every interface; run "
            "where unshare is allowed, or pass --network=host to accept "
            "that.", file=sys.stderr)
      return errors.EXIT_USAGE
  cluster = Cluster(args.flags, args.workers, args.grace_seconds)
  for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda *_: cluster.signal_all(signal.SIGTERM))
  return cluster.wait()


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
