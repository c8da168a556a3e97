"""Prints the flag file `make train` runs on this machine: the bfloat16 one
where --mixed_precision=auto would choose bfloat16 (a matrix unit runs it:
AMX under oneDNN, or a GPU with bfloat16 tensor cores), else the float32
one, sized for 30 minutes on a 2-core CPU without AMX. It reads the CPU
only: make train runs on the CPU (2 logical devices)."""

import os
import sys

from core.optim import precision

CONFIGS = {"mixed_bfloat16": "configs/fashion_mnist_amx.cfg",
           "float32": "configs/fashion_mnist_cpu.cfg"}


def main() -> int:
  choice = precision.on_this_cpu(
      onednn=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0")
  print(CONFIGS[choice.chosen])
  return 0


if __name__ == "__main__":
  sys.exit(main())
