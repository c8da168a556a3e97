#!/usr/bin/env bash
# Which TensorFlow extra `make` installs: `gpu` (TensorFlow with CUDA) where
# nvidia-smi lists a GPU, else `cpu` (tensorflow-cpu). Prints the extra on
# stdout and the reason on stderr; TF_EXTRA=cpu|gpu chooses by hand.
set -u
if [ -n "${TF_EXTRA:-}" ]; then
  echo "make: TensorFlow's ${TF_EXTRA} extra (TF_EXTRA set)" >&2
  echo "${TF_EXTRA}"
  exit 0
fi
gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
fi
if [ "${gpus:-0}" -gt 0 ]; then
  echo "make: nvidia-smi lists ${gpus} GPU(s): TensorFlow's gpu extra" \
       "(TF_EXTRA=cpu for the CPU build)" >&2
  echo gpu
else
  echo "make: no GPU listed by nvidia-smi: TensorFlow's cpu extra" >&2
  echo cpu
fi
