"""`python -m bench.onednn_profile [--precision=P] [--image_size=S]
[--batch=B] [--steps=N]`: where oneDNN's time goes in the engine's training
step, and whether it ran AMX kernels.

Runs the engine's compiled loop (one replica, the paper's GoogLeNet on
synthetic images; 224x224, batch 8, 2 steps by default, in the precision
`--mixed_precision=auto` would run here: bfloat16 where oneDNN runs it on a
matrix unit, else float32, since elsewhere oneDNN runs no bfloat16
convolution and its profile would hold none) in
a child process with ONEDNN_VERBOSE=1: 2 warm-up steps, a marker line, N
steps, a marker. Sums the times of oneDNN's `exec` lines between the markers
by kind (convolution fwd / bwd_data / bwd_weights, reorder, pooling, matmul,
inner_product, other) and prints them in ms per step. `--log=FILE` summarises a verbose log
captured elsewhere instead (between its markers where it has them, else
whole), per step with `--steps`.
"""

import argparse
import collections
import os
import subprocess
import sys
from typing import Dict, Iterable, List, NamedTuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARK = "onednn_profile_mark"
WARMUP = 2
KINDS = ("convolution fwd", "convolution bwd_data", "convolution bwd_weights",
         "reorder", "pooling", "matmul", "inner_product", "other")
_DIRECTIONS = {"forward_training": "fwd", "forward_inference": "fwd",
               "backward_data": "bwd_data",
               "backward_weights": "bwd_weights"}
# oneDNN's names for matrix products: TF's MatMul runs `matmul`, or the
# `gemm_api` entry point. `inner_product` is a row of its own: TF's fused
# MatMul + BiasAdd + Relu, whose bfloat16 gemm ran without AMX
# (docs/experiments/2026-12-amx-profile.md).
_MATMULS = ("matmul", "gemm_api")


class Profile(NamedTuple):
  """oneDNN's time per step: `ms` and `calls` by kind (KINDS), and the
  implementation names that ran, with their ms per step."""
  ms: Dict[str, float]
  calls: Dict[str, float]
  kernels: Dict[str, float]

  @property
  def amx(self) -> List[str]:
    """The implementations that ran on AMX (names holding `amx`), the
    slowest first."""
    return sorted((k for k in self.kernels if "amx" in k),
                  key=lambda k: -self.kernels[k])


def kind(primitive: str, direction: str) -> str:
  """The row of KINDS a primitive's exec line counts in."""
  if primitive == "convolution":
    return f"convolution {_DIRECTIONS.get(direction, direction)}"
  if primitive in _MATMULS:
    return "matmul"
  return (primitive if primitive in ("reorder", "pooling", "inner_product")
          else "other")


class Execution(NamedTuple):
  """One oneDNN `exec` line: what ran and its ms per step."""
  primitive: str
  implementation: str
  direction: str
  fields: List[str]  # the line's fields after `exec,<engine>`
  ms: float


def executions(lines: Iterable[str], steps: int = 1) -> List[Execution]:
  """The `exec` lines of a verbose log, in ms per step (see `summarise`)."""
  lines = list(lines)
  marks = [i for i, line in enumerate(lines) if line.startswith(MARK)]
  if len(marks) >= 2:
    lines = lines[marks[0] + 1:marks[1]]
  found = []
  for line in lines:
    parts = line.strip().split(",")
    if parts[0] != "onednn_verbose" or "exec" not in parts:
      continue
    # exec, engine, primitive, implementation, direction, ..., time in ms
    fields = parts[parts.index("exec") + 2:]
    found.append(Execution(*fields[:3], fields, float(parts[-1]) / steps))
  return found


def summarise(lines: Iterable[str], steps: int = 1) -> Profile:
  """Sums oneDNN verbose `exec` lines by kind, per step.

  Args:
    lines: Output of a process run with ONEDNN_VERBOSE=1, such as
      `onednn_verbose,v1,primitive,exec,cpu,convolution,
      brg_conv_fwd:avx10_1_512_amx,forward_training,<memory>,<attributes>,
      <algorithm>,<problem>,0.316` (older oneDNN leaves out `v1,primitive`);
      other lines are skipped. Where a MARK line is present, only the lines
      between the first two MARK lines count.
    steps: Training steps the counted lines cover.

  Returns:
    The Profile, in ms per step.
  """
  ms, calls, kernels = (collections.Counter(), collections.Counter(),
                        collections.Counter())
  for run in executions(lines, steps):
    row = kind(run.primitive, run.direction)
    ms[row] += run.ms
    calls[row] += 1 / steps
    kernels[f"{run.primitive} {run.implementation}"] += run.ms
  return Profile(dict(ms), dict(calls), dict(kernels))


def table(profile: Profile) -> str:
  """A markdown table of the profile: ms per step, share, calls per step."""
  total = sum(profile.ms.values()) or 1.0
  rows = ["| oneDNN primitive | ms per step | share | calls per step |",
          "|---|---|---|---|"]
  for row in KINDS:
    ms = profile.ms.get(row, 0.0)
    rows.append(f"| {row} | {ms:.1f} | {ms / total:.0%} | "
                f"{profile.calls.get(row, 0):.0f} |")
  rows.append(f"| all | {sum(profile.ms.values()):.1f} | 100% | "
              f"{sum(profile.calls.values()):.0f} |")
  return "\n".join(rows)


def measure(precision: str = "mixed_bfloat16", image_size: int = 224,
            batch: int = 8, steps: int = 2) -> Profile:
  """Profiles `steps` training steps of the engine in a child process.

  Raises:
    RuntimeError: If the child fails (its last line of output says why).
  """
  env = dict(os.environ, ONEDNN_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="2",
             TF_ENABLE_ONEDNN_OPTS="1",
             PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  done = subprocess.run(
      [sys.executable, "-m", "bench.onednn_profile", "--child",
       f"--precision={precision}", f"--image_size={image_size}",
       f"--batch={batch}", f"--steps={steps}"],
      cwd=ROOT, env=env, capture_output=True, text=True)
  if done.returncode:
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise RuntimeError(f"the oneDNN profile failed: {tail}")
  return summarise(done.stdout.splitlines(), steps)


def _child(precision: str, image_size: int, batch: int, steps: int) -> None:
  """Runs the steps, MARK lines around the profiled ones."""
  from bench.engines import engine_on  # pylint: disable=g-import-not-at-top
  from core.data import datasets  # pylint: disable=g-import-not-at-top
  trainer, iterator, _ = engine_on(datasets.synthetic(256),
                                   image_size=image_size, replicas=1,
                                   batch=batch, mixed_precision=precision)
  trainer.loop.run(iterator, WARMUP)
  print(MARK, flush=True)
  trainer.loop.run(iterator, steps)
  print(MARK, flush=True)


def main(argv: List[str]) -> None:
  parser = argparse.ArgumentParser(prog="python -m bench.onednn_profile",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--precision", default="auto")
  parser.add_argument("--image_size", type=int, default=224)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--steps", type=int, default=2)
  parser.add_argument("--log", help="summarise this verbose log instead")
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.precision == "auto":
    from core.optim import precision  # pylint: disable=g-import-not-at-top
    args.precision = precision.on_this_cpu().chosen
  if args.child:
    _child(args.precision, args.image_size, args.batch, args.steps)
    return
  if args.log:
    with open(args.log, errors="replace") as f:
      profile = summarise(f, args.steps)
  else:
    profile = measure(args.precision, args.image_size, args.batch, args.steps)
    print(f"precision: {args.precision}")
  print(table(profile))
  print("AMX kernels: " + (", ".join(profile.amx) or "none"))


if __name__ == "__main__":
  main(sys.argv[1:])
