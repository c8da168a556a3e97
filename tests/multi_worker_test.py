"""Two real worker processes under MultiWorkerMirroredStrategy, started by
`python -m train.launch` on loopback: one writer, the same numbers as one
process, preemption agreed by every worker, an exact resume, and a lost
worker turned into one line. Every process is killed at the end of each test
(bounded waits, no strays)."""

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import numpy as np
import tensorflow as tf

from tests import helpers

FLAGS = ("--dataset=synthetic", "--image_size=28", "--global_batch_size=16",
         "--validation_size=64", "--train_examples=160", "--optimizer=sgd",
         "--learning_rate=0.05", "--deterministic", "--seed=3",
         "--train_steps=6", "--steps_per_loop=1", "--checkpoint_every=1",
         "--keep_checkpoints=6", helpers.SMALL_NETWORK, helpers.ON_CPU)
WRITES = re.compile(r'^(\d+) +(?:openat\(AT_FDCWD, "([^"]+)", [^)]*'
                    r'(?:O_WRONLY|O_RDWR|O_CREAT)|(?:mkdir|unlink|rmdir)'
                    r'(?:at)?\((?:AT_FDCWD, )?"([^"]+)"|rename(?:at2?)?\('
                    r'(?:AT_FDCWD, )?"[^"]+", (?:AT_FDCWD, )?"([^"]+)")')
CHILD = re.compile(r"^(\d+) +(?:<\.\.\. )?(?:clone3?|v?fork)\b.*= (\d+)$")


def threads(pid: int) -> int:
  """The thread count of process `pid` (/proc)."""
  with open(f"/proc/{pid}/status") as f:
    return next(int(line.split()[1]) for line in f
                if line.startswith("Threads:"))


class Launch:
  """`train.launch --workers=2` in the background; its lines are kept."""

  def __init__(self, model_dir, *extra, wrapper=()):
    self.proc = subprocess.Popen(
        [*wrapper, sys.executable, "-m", "train.launch", "--workers=2", "--",
         f"--model_dir={model_dir}", *FLAGS, *extra], cwd=helpers.ROOT,
        env=helpers._env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True)  # pylint: disable=protected-access
    self.lines, self.pids = [], {}
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self):
    for line in self.proc.stdout:
      self.lines.append(line.rstrip("\n"))
      found = re.match(r"\[launch\] worker (\d): pid (\d+)", line)
      if found:
        self.pids[int(found.group(1))] = int(found.group(2))

  def wait_for(self, pattern, timeout=300):
    """Waits for a line matching `pattern` (bounded, so never hangs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      if any(re.search(pattern, line) for line in self.lines):
        return
      if self.proc.poll() is not None and not self._reader.is_alive():
        break
      time.sleep(0.1)
    raise AssertionError(f"no line matching {pattern!r}:\n"
                         + "\n".join(self.lines[-30:]))

  def finish(self, timeout=400):
    code = self.proc.wait(timeout=timeout)
    self._reader.join(timeout=10)
    return code

  def output(self, worker):
    prefix = f"[worker {worker}] "
    return [l[len(prefix):] for l in self.lines if l.startswith(prefix)]

  def kill(self):
    for pid in [self.proc.pid, *self.pids.values()]:
      try:
        os.kill(pid, signal.SIGKILL)
      except ProcessLookupError:
        pass
    self.proc.wait(timeout=30)


def weights(prefix):
  """Every float variable of a checkpoint, by name."""
  reader = tf.train.load_checkpoint(prefix)
  return {k: reader.get_tensor(k)
          for k, dtype in reader.get_variable_to_dtype_map().items()
          if dtype.is_floating and "OPTIMIZER_SLOT" not in k}


def writes_by_worker(trace, pids):
  """Paths each worker process (and its threads) wrote, from `strace -f`."""
  parent, written = {}, {}
  with open(trace) as f:
    lines = f.readlines()
  for line in lines:
    child = CHILD.match(line.strip())
    if child:
      parent[int(child.group(2))] = int(child.group(1))
  roots = {pid: worker for worker, pid in pids.items()}
  for line in lines:
    found = WRITES.match(line)
    if not found:
      continue
    pid = int(found.group(1))
    while pid not in roots and pid in parent:
      pid = parent[pid]
    if pid in roots:
      path = next(g for g in found.groups()[1:] if g)
      written.setdefault(roots[pid], set()).add(os.path.normpath(path))
  return written


REFERENCE = """
import os, sys
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
from train.assembly import build
from train.startup.config import RunConfig
root = sys.argv[1]
common = dict(dataset="synthetic", image_size=28, global_batch_size=16,
              validation_size=64, train_examples=160, optimizer="sgd",
              deterministic=True, seed=3, train_steps=6, steps_per_loop=1,
              checkpoint_every=1, keep_checkpoints=6, num_cpu_devices=2,
              epochs=1, blocks=("4a", "4d"),  # helpers.SMALL_NETWORK
              export="none")  # only the checkpoints are compared
runs = {"one": dict(strategy="one_device", learning_rate=0.05),
        "two": dict(strategy="mirrored", learning_rate=0.05)}
for name, extra in runs.items():
  build.run(RunConfig(model_dir=os.path.join(root, name),
                      **dict(common, **extra, train_steps=1)),
            report=lambda line: None)
"""


@unittest.skipUnless(shutil.which("strace"), "needs strace (Debian: strace)")
class TwoWorkersTest(unittest.TestCase):
  """One uninterrupted 2-worker run (traced), shared by the tests."""

  @classmethod
  def setUpClass(cls):
    cls.root = tempfile.mkdtemp()
    cls.model_dir = os.path.join(cls.root, "run")
    cls.trace = os.path.join(cls.root, "trace")
    cls.straight = Launch(cls.model_dir, wrapper=(
        "strace", "-f", "-qq", "--seccomp-bpf", "-o", cls.trace, "-e", "trace=openat,creat,"
        "mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,rmdir,"
        "clone,clone3,fork,vfork"))
    try:
      cls.code = cls.straight.finish()
    finally:
      cls.straight.kill()

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)

  def test_the_run_trains_and_only_the_chief_writes(self):
    self.assertEqual(self.code, 0, "\n".join(self.straight.lines[-30:]))
    self.assertTrue(self.straight.output(0)[0].startswith(
        "starting at step 0/6: 2 replica(s), global batch 16"))
    self.assertTrue(any(l.startswith("test accuracy") for l in
                        self.straight.output(1)))  # the worker computes it too
    self.assertTrue(os.path.isdir(os.path.join(self.model_dir, "export",
                                               "6")))
    written = writes_by_worker(self.trace, self.straight.pids)
    inside = lambda paths: {p for p in paths
                            if p.startswith(self.root + os.sep)}
    chief, worker = inside(written[0]), inside(written.get(1, set()))
    self.assertEqual(worker, set())  # not one path in model_dir
    for part in ("ckpt-6.index", "manifest.json", ".run.lock", "export/6",
                 "train/events.out.tfevents"):
      self.assertTrue(any(part in p for p in chief), part)
    # The worker took part in every save, in a private folder it removed.
    private = {os.path.dirname(p) for p in written[1]
               if re.search(r"/ckpt-\d+-worker-[^/]+/", p)}
    self.assertGreaterEqual(len(private), 6)
    self.assertFalse([p for p in private if os.path.exists(p)])
    shared = {p for p in set(written[0]) & set(written[1])
              if not p.startswith(("/proc/", "/dev/"))}
    self.assertEqual(shared, set())

  def test_two_workers_match_one_process_with_two_replicas_and_one(self):
    refs = os.path.join(self.root, "reference")
    result = helpers.python("-c", REFERENCE, refs)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    workers = weights(os.path.join(self.model_dir, "ckpt-1"))
    # The scale of one step's update: the workers' second (SGD at a fixed
    # rate: the first's size, give or take).
    second = weights(os.path.join(self.model_dir, "ckpt-2"))
    update = np.sqrt(sum(np.sum((second[k] - workers[k]) ** 2)
                         for k in workers))
    self.assertGreater(update, 0)
    for name in ("one", "two"):
      ref = weights(os.path.join(refs, name, "ckpt-1"))
      gap = np.sqrt(sum(np.sum((workers[k] - ref[k]) ** 2) for k in ref))
      # The bound of tests/distribution_test.py: round-off, not a convention
      # bug (which would move the update by a sizeable fraction).
      self.assertLess(gap / update, 1e-3, name)

  def test_sigterm_to_one_worker_stops_both_and_the_resume_is_exact(self):
    model_dir = os.path.join(self.root, "preempted")
    run = Launch(model_dir)
    try:
      run.wait_for(r"^\[worker 0\] step 2/6")
      if os.path.exists("/proc/self/ns/net"):  # the private network
        self.assertNotEqual(os.readlink(f"/proc/{run.pids[1]}/ns/net"),
                            os.readlink("/proc/self/ns/net"))
      os.kill(run.pids[1], signal.SIGTERM)
      self.assertEqual(run.finish(), 75, "\n".join(run.lines[-20:]))
    finally:
      run.kill()
    stops = [re.search(r"^error: preempted by (.*) at step (\d+): checkpoint "
                       "saved", run.output(w)[-1]) for w in (0, 1)]
    self.assertTrue(all(stops), run.lines[-6:])
    self.assertEqual(stops[1].group(1), "SIGTERM")
    self.assertEqual(stops[0].group(1), "a signal to another worker")
    step = int(stops[0].group(2))
    self.assertEqual(int(stops[1].group(2)), step)
    self.assertLess(step, 6)
    self.assertTrue(os.path.exists(os.path.join(model_dir,
                                                f"ckpt-{step}.index")))
    again = Launch(model_dir)
    try:
      self.assertEqual(again.finish(), 0, "\n".join(again.lines[-20:]))
    finally:
      again.kill()
    self.assertTrue(again.output(0)[0].startswith(f"resuming at step {step}"))
    resumed = weights(os.path.join(model_dir, "ckpt-6"))
    straight = weights(os.path.join(self.model_dir, "ckpt-6"))
    self.assertEqual(sorted(resumed), sorted(straight))
    for name, value in straight.items():
      np.testing.assert_array_equal(resumed[name], value, err_msg=name)


class LostWorkerTest(unittest.TestCase):

  def test_kill_9_of_a_worker_ends_the_other_with_one_line(self):
    model_dir = tempfile.mkdtemp()
    run = Launch(model_dir, "--train_steps=500", "--checkpoint_every=100")
    try:
      run.wait_for(r"^\[worker 0\] step 2/500")
      os.kill(run.pids[1], signal.SIGKILL)
      code = run.finish()
    finally:
      run.kill()
      shutil.rmtree(model_dir, ignore_errors=True)
    self.assertEqual(code, 128 + signal.SIGKILL)
    errors = [l for l in run.output(0) if "error" in l.lower()
              or "Traceback" in l]
    self.assertEqual(len(errors), 1, run.output(0)[-8:])
    self.assertRegex(errors[0], r"^error: lost worker 1 \(localhost:\d+\): "
                     r"(its connection closed|it stopped sending heartbeats)"
                     r" \(.*\); worker 0 \(localhost:\d+\) stopped too\. "
                     "Restart every worker with the same command")
    ended = [l for l in run.lines if l.startswith("[launch] worker 0 ")]
    self.assertRegex(ended[0], r"exited with code 69 \([\d.]+ s after the "
                     "first\)")
    print(ended[0])  # the figure the cluster note reports (pytest -s shows it)
    for pid in run.pids.values():  # no stray worker left behind
      with self.assertRaises(ProcessLookupError):
        os.kill(pid, 0)

  def test_threads_stay_flat_and_a_kill_9_of_the_launcher_stops_both(self):
    # 100 steps of 2 workers: with a collective timeout, TF parked a thread
    # per collective until it expired (+11 threads a step, dead near step
    # 1,100); the thread count must not grow. Then the launcher is killed.
    model_dir = tempfile.mkdtemp()
    run = Launch(model_dir, "--train_steps=500", "--checkpoint_every=100",
                 "--eval_every=1000", "--steps_per_loop=10")
    try:
      run.wait_for(r"^\[worker 1\] step 30/500")
      self.assertEqual(sorted(run.pids), [0, 1])
      before = {w: threads(pid) for w, pid in run.pids.items()}
      run.wait_for(r"^\[worker 1\] step 130/500")
      after = {w: threads(pid) for w, pid in run.pids.items()}
      for worker in (0, 1):
        self.assertLessEqual(after[worker] - before[worker], 20,
                             (worker, before, after))
      os.kill(run.proc.pid, signal.SIGKILL)
      # Each worker got SIGTERM from the kernel when its parent died
      # (PR_SET_PDEATHSIG): they agree to stop, checkpoint, and exit.
      deadline = time.monotonic() + 180
      alive = set(run.pids.values())
      while alive and time.monotonic() < deadline:
        for pid in list(alive):
          try:
            os.kill(pid, 0)
          except ProcessLookupError:
            alive.discard(pid)
        time.sleep(0.5)
      self.assertEqual(alive, set())
    finally:
      run.kill()
      for pid in run.pids.values():
        try:
          os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
          pass
    saved = [int(m.group(1)) for m in (re.match(r"ckpt-(\d+)\.index$", n)
                                       for n in os.listdir(model_dir)) if m]
    self.assertTrue(saved and max(saved) % 100, saved)  # the stop's step
    shutil.rmtree(model_dir, ignore_errors=True)

  def test_without_a_private_network_the_launcher_refuses(self):
    empty = tempfile.mkdtemp()  # a PATH without unshare and ip
    result = subprocess.run(
        [sys.executable, "-m", "train.launch", "--workers=2", "--",
         "--dataset=synthetic"], cwd=helpers.ROOT,
        env=dict(helpers._env(), PATH=empty),  # pylint: disable=protected-access
        capture_output=True, text=True, timeout=300)
    self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
    self.assertEqual(result.stdout, "")
    self.assertRegex(result.stderr, r"^error: no private network namespace "
                     r"here \(unshare and ip not found\), .* pass "
                     r"--network=host to accept that\.\n$")

  def test_the_launcher_refuses_a_strategy_and_passes_on_bad_flags(self):
    for flags, message in (["--strategy=mirrored"], "leave --strategy out"), (
        ["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"):
      with self.subTest(flags=flags):
        result = subprocess.run(
            [sys.executable, "-m", "train.launch", "--workers=2", "--",
             *flags], cwd=helpers.ROOT,
            env=helpers._env(),  # pylint: disable=protected-access
            capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        self.assertIn(message, result.stdout + result.stderr)


class SettingsTest(unittest.TestCase):

  def test_a_worker_environment_takes_any_environment(self):
    from train import launch  # pylint: disable=g-import-not-at-top
    exported = {"TF_CONFIG": '{"old": 1}', "TF_NUM_INTRAOP_THREADS": "7",
                "PATH": "/bin"}
    env = launch.worker_environment(exported, '{"new": 1}', 2)
    self.assertEqual(env["TF_CONFIG"], '{"new": 1}')  # this worker's
    self.assertEqual(env["TF_NUM_INTRAOP_THREADS"], "7")  # the user's wins
    self.assertEqual(env["TF_NUM_INTEROP_THREADS"], "1")
    self.assertEqual(env["PATH"], "/bin")
    self.assertEqual(exported["TF_CONFIG"], '{"old": 1}')  # not changed

  def fake_nvidia_smi(self, listed: str) -> str:
    """A PATH whose nvidia-smi lists the GPU indices in `listed`."""
    folder = tempfile.mkdtemp()
    with open(os.path.join(folder, "nvidia-smi"), "w") as f:
      f.write(f"#!/bin/sh\nprintf '{listed}'\n")
    os.chmod(os.path.join(folder, "nvidia-smi"), 0o755)
    return folder + os.pathsep + os.environ["PATH"]

  def test_the_gpus_come_from_cuda_visible_devices_or_nvidia_smi(self):
    from train import launch  # pylint: disable=g-import-not-at-top
    self.assertEqual(launch.visible_gpus({"CUDA_VISIBLE_DEVICES": "0, 2"}),
                     ["0", "2"])
    self.assertEqual(launch.visible_gpus({"CUDA_VISIBLE_DEVICES": ""}), [])
    self.assertEqual(launch.visible_gpus(
        {"PATH": self.fake_nvidia_smi("0\\n1\\n2\\n3\\n")}),
                     ["0", "1", "2", "3"])
    self.assertEqual(launch.visible_gpus({"PATH": tempfile.mkdtemp()}), [])

  def test_each_worker_gets_its_own_gpus(self):
    from train import launch  # pylint: disable=g-import-not-at-top
    four = ["0", "1", "2", "3"]
    self.assertEqual(launch.gpu_shares(four, 2, None), ["0,1", "2,3"])
    self.assertEqual(launch.gpu_shares(four, 2, 1), ["0", "1"])
    self.assertEqual(launch.gpu_shares(four, 2, 0), ["", ""])
    self.assertEqual(launch.gpu_shares(four, 3, None), ["0", "1", "2"])
    self.assertEqual(launch.gpu_shares([], 2, None), [None, None])
    self.assertEqual(launch.gpu_shares([], 2, 0), ["", ""])
    with self.assertRaisesRegex(ValueError, r"^2 workers with 3 GPU\(s\) "
                                r"each need 6, and the launcher sees 4 "):
      launch.gpu_shares(four, 2, 3)
    env = launch.worker_environment({"CUDA_VISIBLE_DEVICES": "0,1,2,3"},
                                    "{}", 2, "2,3")
    self.assertEqual(env["CUDA_VISIBLE_DEVICES"], "2,3")  # the launcher's
    self.assertNotIn("CUDA_VISIBLE_DEVICES",
                     launch.worker_environment({}, "{}", 2, None))

  def test_more_gpus_than_the_machine_has_is_one_line(self):
    env = dict(helpers._env(), PATH=self.fake_nvidia_smi("0\\n"))  # pylint: disable=protected-access
    env.pop("CUDA_VISIBLE_DEVICES", None)
    result = subprocess.run(
        [sys.executable, "-m", "train.launch", "--workers=2",
         "--network=host", "--gpus_per_worker=1", "--",
         "--dataset=synthetic"], cwd=helpers.ROOT, env=env,
        capture_output=True, text=True, timeout=300)
    self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
    self.assertEqual(result.stdout, "")
    self.assertRegex(result.stderr, r"^error: 2 workers with 1 GPU\(s\) "
                     r"each need 2, and the launcher sees 1 .*; pass "
                     r"--gpus_per_worker=0 to run the workers on the CPU\.\n$")

  def test_bad_tf_config_and_device_count_are_one_line_each(self):
    cases = [({}, ["--strategy=multi_worker"], "needs TF_CONFIG"),
             ({"TF_CONFIG": "{oops"}, ["--strategy=multi_worker"],
              "TF_CONFIG is not valid JSON"),
             ({}, ["--strategy=multi_worker", "--num_cpu_devices=2"],
              "`num_cpu_devices` must be 1 with --strategy=multi_worker")]
    for env, flags, message in cases:
      with self.subTest(message=message):
        result = subprocess.run(
            [sys.executable, "-m", "train.main", "--model_dir="
             + tempfile.mkdtemp(), *flags], cwd=helpers.ROOT,
            env=dict(helpers._env(), **env),  # pylint: disable=protected-access
            capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(result.stderr.count("\n"), 1, result.stderr)
        self.assertIn(message, result.stderr)




class OneRunPerModelDirTest(unittest.TestCase):
  """As a user met it: a second train.main on a folder still in use."""

  def test_a_second_run_exits_2_naming_the_first(self):
    model_dir = tempfile.mkdtemp()
    first = helpers.popen(helpers.small_run_flags(model_dir,
                                                  "--train_steps=500"))
    try:
      while not first.stdout.readline().startswith("step "):
        self.assertIsNone(first.poll(), "the first run ended early")
      second = helpers.cli(helpers.small_run_flags(model_dir,
                                                   "--train_steps=500"))
      self.assertEqual(second.returncode, 2, second.stderr)
      self.assertRegex(second.stderr, rf"^error: `model_dir` .* is in use by "
                       rf"another run \(pid {first.pid} on host .*\); wait "
                       r"for it to end or stop it, or pass another "
                       r"--model_dir\.\n$")
      self.assertIsNone(first.poll())  # the first run goes on
      first.send_signal(signal.SIGTERM)
      self.assertEqual(first.wait(timeout=300), 75)
    finally:
      if first.poll() is None:
        first.kill()
      shutil.rmtree(model_dir, ignore_errors=True)


if __name__ == "__main__":
  unittest.main()
