"""Benchmarks: the engine side by side with Keras `fit` and PyTorch."""

import os


def cpu() -> str:
  """This machine's CPU as the notes name it beside every figure: its model
  name, its cores and whether it has AVX-512 and AMX (/proc/cpuinfo's
  avx512f and amx_bf16 flags)."""
  with open("/proc/cpuinfo") as f:
    info = f.read()
  name = next((line.split(":", 1)[1].strip() for line in info.splitlines()
               if line.startswith("model name")), "unknown CPU")
  flags = set(next((line.split(":", 1)[1].split() for line in
                    info.splitlines() if line.startswith("flags")), []))
  units = " and ".join(unit for flag, unit in (("avx512f", "AVX-512"),
                                               ("amx_bf16", "AMX"))
                       if flag in flags) or "neither AVX-512 nor AMX"
  return f"{name}, {os.cpu_count()} CPUs, with {units}"
