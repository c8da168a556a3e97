"""`python -m bench.cluster_soak [--steps=3000] [--every=10]`: a 2-worker
run that lasts, watched from outside.

Starts `python -m train.launch --workers=2` on loopback (synthetic 28x28
images, the two-block network, global batch 64, a checkpoint every 50 steps,
a validation every 500) and samples every worker's thread count and
resident memory from /proc every `--every` seconds, with the step each
worker last reported. At the end it prints the samples as a table, the
threads by name at the first and the last sample (what grew), and the
growth per 1,000 steps; it exits non-zero if a worker's threads grew by more
than 20 or its memory by more than 20 % between the first sample after
step 100 and the last.
"""

import collections
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEP = re.compile(r"^\[worker (\d)\] step (\d+)/")
PID = re.compile(r"^\[launch\] worker (\d): pid (\d+)")


def status(pid: int) -> dict:
  out = {}
  with open(f"/proc/{pid}/status") as f:
    for line in f:
      if line.startswith(("Threads:", "VmRSS:")):
        key, value = line.split(":", 1)
        out[key] = int(value.split()[0])
  return out


def thread_names(pid: int) -> collections.Counter:
  names = collections.Counter()
  for task in os.listdir(f"/proc/{pid}/task"):
    try:
      with open(f"/proc/{pid}/task/{task}/comm") as f:
        names[re.sub(r"\d+$", "#", f.read().strip())] += 1
    except OSError:
      continue
  return names


def flags(model_dir: str, steps: int) -> list:
  return ["--dataset=synthetic", "--image_size=28", "--global_batch_size=64",
          "--validation_size=512", "--train_examples=8000",
          f"--train_steps={steps}", "--steps_per_loop=10",
          "--checkpoint_every=50", "--eval_every=500", "--export=none",
          "--blocks=4a,4d", f"--model_dir={model_dir}"]


def main(argv) -> int:
  steps = next((int(a.split("=", 1)[1]) for a in argv
                if a.startswith("--steps=")), 3000)
  every = next((float(a.split("=", 1)[1]) for a in argv
                if a.startswith("--every=")), 10.0)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1",
             PYTHONPATH=ROOT)
  model_dir = tempfile.mkdtemp(prefix="soak-")
  proc = subprocess.Popen(
      [sys.executable, "-m", "train.launch", "--workers=2", "--",
       *flags(model_dir, steps)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True)
  pids, last_step, tail = {}, {0: 0, 1: 0}, collections.deque(maxlen=20)

  def read():
    for line in proc.stdout:
      tail.append(line.rstrip())
      if PID.match(line):
        worker, pid = PID.match(line).groups()
        pids[int(worker)] = int(pid)
      if STEP.match(line):
        worker, step = STEP.match(line).groups()
        last_step[int(worker)] = int(step)

  reader = threading.Thread(target=read, daemon=True)
  reader.start()
  samples, names, started = [], {}, time.time()
  while proc.poll() is None:
    time.sleep(every)
    for worker, pid in sorted(pids.items()):
      try:
        s = status(pid)
        counts = thread_names(pid)
      except OSError:
        continue
      names.setdefault(worker, [counts, counts])[1] = counts
      samples.append((time.time() - started, worker, last_step[worker],
                      s["Threads"], s["VmRSS"] / 1024))
      print(f"{samples[-1][0]:7.0f}s worker {worker} step "
            f"{samples[-1][2]:5d} threads {samples[-1][3]:5d} rss "
            f"{samples[-1][4]:7.1f} MB", flush=True)
  reader.join(timeout=10)
  code = proc.returncode
  print(f"launcher exit {code}; its last lines:\n  " + "\n  ".join(tail))
  ok = code == 0
  for worker in sorted(names):
    first, last = names[worker]
    grew = {k: last[k] - first.get(k, 0) for k in last
            if last[k] != first.get(k, 0)}
    print(f"worker {worker} threads by name, first -> last sample: "
          f"{dict(first.most_common(8))} -> grew {grew}")
    mine = [s for s in samples if s[1] == worker and s[2] >= 100]
    if len(mine) >= 2:
      (_, _, s0, t0, r0), (_, _, s1, t1, r1) = mine[0], mine[-1]
      per_k = 1000 * (t1 - t0) / max(s1 - s0, 1)
      print(f"worker {worker}: steps {s0} -> {s1}: threads {t0} -> {t1} "
            f"({per_k:+.1f} per 1,000 steps), rss {r0:.0f} -> {r1:.0f} MB")
      ok = ok and t1 - t0 <= 20 and r1 <= 1.2 * r0
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
