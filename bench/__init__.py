"""Benchmarks: the engine side by side with Keras `fit` and PyTorch."""

import os


def cpu() -> str:
  """This machine's CPU as the notes name it beside every figure: its model
  name, its cores and whether it has AVX-512 and AMX (/proc/cpuinfo's
  avx512f and amx_bf16 flags)."""
  from core.optim import precision  # pylint: disable=g-import-not-at-top
  with open("/proc/cpuinfo") as f:
    name = next((line.split(":", 1)[1].strip() for line in f
                 if line.startswith("model name")), "unknown CPU")
  flags = precision.cpu_flags()
  units = " and ".join(unit for flag, unit in (("avx512f", "AVX-512"),
                                               ("amx_bf16", "AMX"))
                       if flag in flags) or "neither AVX-512 nor AMX"
  return f"{name}, {os.cpu_count()} CPUs, with {units}"
