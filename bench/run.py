"""`python -m bench.run [--smoke] [--settings=...] [--contenders=...]`: what
users run, side by side, in one run on one machine.

For each setting (GoogLeNet at 224x224 on one replica, and `make train`'s
flag file at 28x28 on its 2 replicas; synthetic images, so the final test
is short) and precision (float32, mixed_bfloat16), one process each:
  * command: `python -m train.main` as a user runs it, whole runs of N and
    2N steps at each --steps_per_loop; per step the wall time between its
    progress lines, (T(2N) - T(N)) / N beside it (bench/command.py);
  * loop: the same configuration's compiled loop (bench/step_time.py);
  * keras_fit: Keras 3 `fit` with the matching policy (bench/contenders.py);
  * torch_compiled: PyTorch channels-last, `torch.compile`d, autocast to
    bfloat16 for mixed_bfloat16 (eager, and the row says so, where
    compiling fails; skipped where PyTorch is not installed);
then a oneDNN verbose profile of a short bfloat16 step (whether AMX kernels
ran, the time by kind: bench/onednn_profile.py) and TF's float32 and
bfloat16 matmul rates. Prints one JSON line per measurement, then the
markdown table (bench/report.py), also written to bench/results/latest.md.
About 20 minutes on 2 cores (a cold PyTorch compile cache adds a few);
--smoke runs tiny sizes of one setting in about 3.
"""

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, NamedTuple, Sequence, Tuple

from bench import command
from bench import onednn_profile
from bench import report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRECISIONS = ("float32", "mixed_bfloat16")
CONTENDERS = ("command", "loop", "keras_fit", "torch_compiled")
# PyTorch at 224x224 only unless asked: each new shape costs `torch.compile`
# minutes on 2 cores the first time (its cache keeps them after).
DEFAULT_CONTENDERS = {"224": CONTENDERS, "train": CONTENDERS[:3]}
# train.main flags of each setting, before its precision and sizes.
SETTINGS = {
    "224": ("--dataset=synthetic", "--image_size=224",
            "--global_batch_size=64", "--strategy=one_device"),
    "train": ("--flagfile=configs/fashion_mnist_cpu.cfg",
              "--dataset=synthetic"),
}


class Sizes(NamedTuple):
  """How long each measurement runs.

  `command`: per (setting, precision), the (--steps_per_loop, N) pairs
  timed, each by runs of N and 2N steps (N a multiple of it, so the longer
  run pays its extra chunks' cost). `loop`: per setting, (windows, steps
  per window) after bench.step_time's own warm-up; `peers`: (warm-up
  steps, windows, steps per window). `batch_flags` override the settings'
  batch.
  """
  command: Dict[Tuple[str, str], Sequence[Tuple[int, int]]]
  loop: Dict[str, Tuple[int, int]]
  peers: Dict[str, Tuple[int, int, int]]
  batch_flags: Tuple[str, ...] = ()
  profile: Tuple[int, int] = (8, 2)  # batch, steps of the oneDNN profile


FULL = Sizes(
    # N = 2 chunks: the longer run's 4 chunks give 3 intervals between
    # progress lines (one chunk of 20 or 50 steps was a single sample).
    command={("224", "float32"): ((20, 40),),
             ("224", "mixed_bfloat16"): ((2, 8), (20, 40)),
             ("train", "float32"): ((50, 100),),
             ("train", "mixed_bfloat16"): ((50, 100),)},
    loop={"224": (3, 5), "train": (3, 20)},
    peers={"224": (2, 3, 5), "train": (10, 3, 20)})
SMOKE = Sizes(
    command={key: ((2, 2),) for key in FULL.command},
    loop={"224": (1, 2), "train": (1, 2)},
    peers={"224": (1, 1, 2), "train": (1, 1, 2)},
    batch_flags=("--global_batch_size=8", "--norm_group_size=4"),
    profile=(2, 1))


class Case(NamedTuple):
  """One setting at one precision: its train.main flags and facts."""
  setting: str
  precision: str
  flags: Tuple[str, ...]
  fields: dict  # RunConfig's fields as the flags set them

  @property
  def replicas(self) -> int:
    return (self.fields["num_cpu_devices"]
            if self.fields["strategy"] == "mirrored" else 1)


def case(setting: str, precision: str, sizes: Sizes, folder: str) -> Case:
  """The case's flags, also written as a flag file in `folder` (what
  bench.step_time reads), and the RunConfig fields they set."""
  from bench import step_time
  flags = (*SETTINGS[setting], f"--mixed_precision={precision}",
           *sizes.batch_flags)
  flagfile = os.path.join(folder, f"{setting}-{precision}.cfg")
  with open(flagfile, "w") as f:
    f.write("\n".join(flags) + "\n")
  return Case(setting, precision, (f"--flagfile={flagfile}",),
              step_time.config_fields(flagfile))


def _env() -> dict:
  from train.startup import kernels  # imports nothing heavy
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  # Every TensorFlow contender on the kernels `train.main` picks (oneDNN,
  # train/startup/kernels.py), so the ratio compares loops, not kernel
  # libraries.
  env.setdefault(kernels.VARIABLE, "1")
  return env


def _python(*args: str) -> str:
  """Runs `python ARGS`; its stdout, or RuntimeError with its last line."""
  done = subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(),
                        capture_output=True, text=True)
  if done.returncode:
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise RuntimeError(tail[:200])
  return done.stdout


def time_command(c: Case, sizes: Sizes) -> List[dict]:
  """The command's rows: one per --steps_per_loop timed."""
  rows = []
  pairs = sizes.command[(c.setting, c.precision)]
  for steps_per_loop, n in pairs:
    short = command.run(c.flags, n, steps_per_loop)
    long = command.run(c.flags, 2 * n, steps_per_loop)
    # The step as the user's clock sees it: the wall time between progress
    # lines (each chunk's own cost included). The two whole runs' difference
    # is shown beside it: on a shared host their start-up and tracing
    # differed by up to 10 s, more than the extra steps cost at these sizes
    # (2026-12-06: 20 more steps of 0.66 s "took" 7.4 s).
    between = command.between_progress_lines(long.marks)
    two_lengths = command.per_step(short, long)
    rows.append({"contender": "command", "steps_per_loop": steps_per_loop,
                 "seconds_per_step": between or two_lengths,
                 "two_lengths": two_lengths,
                 "runs": [short.steps, long.steps],
                 "run_seconds": [short.seconds, long.seconds],
                 "between_lines": between})
  return rows


def time_loop(c: Case, sizes: Sizes) -> List[dict]:
  windows, steps = sizes.loop[c.setting]
  out = _python("-m", "bench.step_time", c.flags[0].split("=", 1)[1],
                str(c.replicas), str(windows), str(steps))
  ms = float(re.search(r"([\d.]+) ms per step", out).group(1))
  return [{"contender": "loop", "seconds_per_step": ms / 1e3}]


def time_peer(name: str, c: Case, sizes: Sizes) -> List[dict]:
  warmup, windows, steps = sizes.peers[c.setting]
  out = json.loads(_python(
      "-m", "bench.contenders", name, str(c.fields["image_size"]),
      str(c.replicas), str(warmup), str(windows), str(steps),
      f"--precision={c.precision}", f"--stem={c.fields['stem']}",
      f"--norm={c.fields['norm']}",
      f"--batch={c.fields['global_batch_size']}").strip().splitlines()[-1])
  return [{"contender": name, "seconds_per_step":
           c.fields["global_batch_size"] / out["images_per_second"],
           "params": out["params"], "mode": out.get("mode")}]


def measure(c: Case, contender: str, sizes: Sizes) -> List[dict]:
  """The case's rows for one contender (one row saying why, if it failed)."""
  start = time.perf_counter()
  base = {"setting": c.setting, "precision": c.precision,
          "replicas": c.replicas,
          "default_steps_per_loop": c.fields["steps_per_loop"],
          **{k: c.fields[k] for k in ("image_size", "stem", "norm",
                                      "global_batch_size")}}
  try:
    if contender == "command":
      rows = time_command(c, sizes)
    elif contender == "loop":
      rows = time_loop(c, sizes)
    else:
      rows = time_peer(contender, c, sizes)
  except (RuntimeError, ValueError, AttributeError) as e:
    # A failed child (or output that does not parse) costs its row only.
    rows = [{"contender": contender, "error": str(e)}]
  for row in rows:
    row.update(base, elapsed=time.perf_counter() - start)
    print(json.dumps(row), flush=True)
  return rows


def machine(settings: Sequence[Case], sizes: Sizes) -> dict:
  """The CPU, oneDNN's profile of a short bfloat16 step, the matmul rates
  and each setting's training GFLOP per image (TensorFlow imported here,
  after every contender has run)."""
  import bench  # pylint: disable=g-import-not-at-top
  batch, steps = sizes.profile
  try:
    profile = onednn_profile.measure("mixed_bfloat16", 224, batch, steps)
  except RuntimeError as e:
    profile = e
  from train.startup import kernels  # pylint: disable=g-import-not-at-top
  kernels.choose(deterministic=False)
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  rates = {p: matmul_gflops(p) for p in PRECISIONS}
  cost = {c.setting: training_gflops_per_image(c.fields) for c in settings}
  return {"cpu": bench.cpu(), "profile": profile, "matmul": rates,
          "gflops_per_image": cost, "versions": versions(),
          "profile_size": sizes.profile}


def matmul_gflops(precision: str, n: int = 2048, repeats: int = 20) -> float:
  """The best 2048^3 matrix-product rate of TensorFlow in this process."""
  import tensorflow as tf
  dtype = tf.bfloat16 if precision == "mixed_bfloat16" else tf.float32
  a = tf.cast(tf.random.normal([n, n]), dtype)
  b = tf.cast(tf.random.normal([n, n]), dtype)
  # The product alone, synchronised on one element: a cast and a sum of
  # the result took 2 ms of the bfloat16 product's 8-9 (its rate read 11 %
  # low, and the engine's share of it 11 % high).
  run = tf.function(lambda: tf.matmul(a, b)[0, 0])
  run().numpy()
  best = 0.0
  for _ in range(repeats):
    start = time.perf_counter()
    run().numpy()
    best = max(best, 2 * n ** 3 / (time.perf_counter() - start) / 1e9)
  return best


def training_gflops_per_image(fields: dict) -> float:
  import tensorflow as tf
  from bench import flops
  from layers.googlenet import GoogLeNet
  size = fields["image_size"]
  model = GoogLeNet(10, 1, size, stem=fields["stem"], norm=fields["norm"])
  forward = flops.forward_macs(
      lambda x: model(x, training=True, reference=True),
      tf.TensorSpec([1, size, size, 1]))
  return flops.training_flops_per_image(forward) / 1e9


def versions() -> Dict[str, str]:
  from importlib import metadata
  out = {}
  for name in ("tensorflow-cpu", "tensorflow", "keras", "torch"):
    try:
      out[name.split("-")[0]] = metadata.version(name)
    except metadata.PackageNotFoundError:
      pass
  return out


def main(argv: Sequence[str]) -> None:
  parser = argparse.ArgumentParser(prog="python -m bench.run",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--smoke", action="store_true",
                      default=bool(os.environ.get("BENCH_SMOKE")),
                      help="tiny sizes, one setting (also BENCH_SMOKE=1)")
  parser.add_argument("--settings", help="comma-separated SETTING-PRECISION "
                      "(224-float32, 224-mixed_bfloat16, train-float32, "
                      "train-mixed_bfloat16); default all, or "
                      "224-mixed_bfloat16 with --smoke")
  parser.add_argument("--contenders", help="comma-separated, of " +
                      ", ".join(CONTENDERS) + " (default: all at 224, "
                      "all but torch_compiled at train)")
  parser.add_argument("--output",
                      default=os.path.join(ROOT, "bench", "results",
                                           "latest.md"))
  args = parser.parse_args(argv)
  sizes = SMOKE if args.smoke else FULL
  chosen = (args.settings or ("224-mixed_bfloat16" if args.smoke else ",".join(
      f"{s}-{p}" for s in SETTINGS for p in PRECISIONS))).split(",")
  have_torch = importlib.util.find_spec("torch") is not None
  if not have_torch:
    print("PyTorch is not installed: no PyTorch rows (`pip install "
          "torch==2.13.0`).", flush=True)
  start, load = time.perf_counter(), os.getloadavg()[0]
  with tempfile.TemporaryDirectory() as folder:
    cases = [case(*name.split("-", 1), sizes, folder) for name in chosen]
    rows = [row for c in cases
            for name in (args.contenders.split(",") if args.contenders
                         else DEFAULT_CONTENDERS[c.setting])
            if have_torch or name != "torch_compiled"
            for row in measure(c, name, sizes)]
  facts = machine(cases, sizes)
  facts.update(elapsed=time.perf_counter() - start,
               load=(load, os.getloadavg()[0]))
  table = report.render(rows, facts)
  print(table)
  os.makedirs(os.path.dirname(args.output), exist_ok=True)
  with open(args.output, "w") as f:
    f.write(table + "\n")


if __name__ == "__main__":
  main(sys.argv[1:])
