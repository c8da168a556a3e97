"""Writes tests/data/torch_state/, the small PyTorch files that
tests/torch_state_test.py reads without PyTorch. Run once with the reference
venv's Python (tools/reference_env.sh); the files are committed.

  python torch_state_fixtures.py tests/data/torch_state

A state dict with what real ones hold: float32 tensors of several ranks, a
transposed view (strides not C order), a slice at a storage offset, an int64
scalar (BatchNorm's num_batches_tracked), float16 and bool tensors; saved in
both torch.save formats, with the expected arrays in NumPy's own format.
"""

import collections
import os
import sys

import numpy as np
import torch


def main(out_dir: str) -> None:
  torch.manual_seed(0)
  base = torch.randn(4, 6)
  state = collections.OrderedDict(
      conv=torch.randn(3, 2, 5, 5), transposed=base.t(), sliced=base[1:3, 2:],
      num_batches_tracked=torch.tensor(7), half=torch.randn(3).half(),
      mask=torch.tensor([True, False, True]))
  torch.save(state, os.path.join(out_dir, "state.pth"))
  torch.save(state, os.path.join(out_dir, "state-legacy.pth"),
             _use_new_zipfile_serialization=False)
  torch.save(torch.nn.Linear(3, 2), os.path.join(out_dir, "module.pth"))
  np.savez(os.path.join(out_dir, "expected.npz"),
           **{k: v.numpy() for k, v in state.items()})
  print(f"torch {torch.__version__}")


if __name__ == "__main__":
  main(*sys.argv[1:])
