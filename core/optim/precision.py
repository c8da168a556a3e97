"""`--mixed_precision=auto`: the fastest precision the machine supports.

bfloat16 keeps float32's exponent range, so a bfloat16 step needs no loss
scaling and skips no step float32 would not; its weights, optimizer slots,
sums and all-reduce stay float32 (train/loop/step.py). Where a matrix unit
multiplies bfloat16 natively it is faster: on a Xeon with AMX (`amx_bf16`)
2.7x float32 at 224x224 and 1.13-1.25x at make train's 28x28 (issue 47's
measurements, docs/experiments/2026-12-amx.md); on GPUs from compute
capability 8.0 (A100, L4, H100) bfloat16 runs on the tensor cores. Elsewhere
(CPUs without AMX, older GPUs) bfloat16 is converted or emulated and float32
is kept. A run keeps the precision it began with: its resumes read it from
the manifest, so a resume on another machine continues exactly.
"""

from typing import FrozenSet, NamedTuple, Optional, Sequence

from core.optim.choices import AUTO
from core.runtime import files

BFLOAT16, FLOAT32 = "mixed_bfloat16", "float32"
# Compute capability of the first GPUs with bfloat16 tensor cores (Ampere).
BF16_TENSOR_CORES = (8, 0)


class Choice(NamedTuple):
  """A run's precision: what was asked, what runs, and why."""
  requested: str
  chosen: str
  why: str


def cpu_flags(path: str = "/proc/cpuinfo") -> FrozenSet[str]:
  """The CPU's feature flags (empty where the system does not say)."""
  try:
    text = files.read_system_text(path)
  except OSError:
    return frozenset()
  for line in text.splitlines():
    name, _, value = line.partition(":")
    if name.strip() == "flags":
      return frozenset(value.split())
  return frozenset()


def fastest(gpus: Sequence[dict], cpu: FrozenSet[str],
            onednn: bool = True) -> Choice:
  """The fastest supported precision on the devices a run uses: its GPUs
  (`tf.config.experimental.get_device_details` of each) when it has any,
  else the CPU whose `cpu` flags are given, whose matrix unit only oneDNN's
  kernels use (`onednn`: off under --deterministic, where TensorFlow's own
  kernels convert bfloat16 to float32 and back)."""
  if gpus:
    capabilities = [tuple(g.get("compute_capability") or (0, 0))
                    for g in gpus]
    lowest = min(capabilities)
    if lowest >= BF16_TENSOR_CORES:
      return Choice(AUTO, BFLOAT16, "GPUs with bfloat16 tensor cores "
                    f"(compute capability {lowest[0]}.{lowest[1]})")
    return Choice(AUTO, FLOAT32, "a GPU without bfloat16 tensor cores "
                  f"(compute capability {lowest[0]}.{lowest[1]})")
  if "amx_bf16" not in cpu:
    return Choice(AUTO, FLOAT32, "a CPU without AMX")
  if not onednn:
    return Choice(AUTO, FLOAT32, "a CPU with AMX, but TensorFlow's own "
                  "kernels, which do not use it")
  return Choice(AUTO, BFLOAT16, "a CPU with AMX (amx_bf16)")


def on_this_cpu(onednn: bool = True) -> Choice:
  """`fastest` for a run on this machine's CPU alone (make train's recipe,
  the oneDNN profile)."""
  return fastest(gpus=(), cpu=cpu_flags(), onednn=onednn)


def resolve(requested: str, recorded: Optional[str], gpus: Sequence[dict],
            cpu: FrozenSet[str], onednn: bool = True) -> Choice:
  """The precision a run computes in: `requested` unless it is AUTO; then
  the one its manifest `recorded` when it resumes, else the fastest on
  these devices (`fastest`)."""
  if requested != AUTO:
    return Choice(requested, requested, "as asked")
  if recorded:
    return Choice(AUTO, recorded, "the run's own, from its manifest")
  return fastest(gpus, cpu, onednn)
