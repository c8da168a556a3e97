"""Benchmarks: the engine side by side with Keras `fit` and PyTorch eager."""


def cpu() -> str:
  """This machine's CPU as the notes name it beside every figure: its model
  name and whether it has AVX-512 (/proc/cpuinfo)."""
  with open("/proc/cpuinfo") as f:
    info = f.read()
  name = next((line.split(":", 1)[1].strip() for line in info.splitlines()
               if line.startswith("model name")), "unknown CPU")
  return f"{name}, {'with' if 'avx512f' in info else 'without'} AVX-512"
