"""Command line: `python -m train.main --strategy=mirrored ...`.

Defines the flags, builds one frozen TrainConfig and calls train.loop.run.
Mistakes in what the user supplied end in one line on stderr and exit 2;
preemption exits 75 (rerun to resume); divergence exits 3.
"""

import dataclasses
import os
import sys
from typing import List, Sequence

# TensorFlow's C++ start-up chatter (CPU features, oneDNN) buries progress.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app
from absl import flags

from core.errors import InputError, Preempted, TrainingError

FLAGS = flags.FLAGS
EXIT_USAGE, EXIT_DIVERGED, EXIT_PREEMPTED = 2, 3, 75

flags.DEFINE_enum("strategy", "mirrored", ["mirrored", "one_device", "default"],
                  "tf.distribute strategy: mirrored replicates over all GPUs, "
                  "or over --num_cpu_devices logical CPUs without a GPU.")
flags.DEFINE_integer("num_cpu_devices", 1, "Split the CPU into this many "
                     "logical devices (replicas for --strategy=mirrored on a "
                     "machine without GPUs).")
flags.DEFINE_enum("dataset", "fashion_mnist",
                  ["mnist", "fashion_mnist", "synthetic"], "Data set.")
flags.DEFINE_string("data_dir", None, "Folder with the four IDX files (raw "
                    "or .gz). Default: Debian's Fashion-MNIST folder, or the "
                    "MNIST cache (downloaded and checksum-verified).")
flags.DEFINE_string("model_dir", "runs/default", "Checkpoints, TensorBoard "
                    "logs (train/, eval/, test/) and manifest.json.")
flags.DEFINE_string("export_dir", None, "SavedModel versions for TF Serving "
                    "(default: <model_dir>/export).")
flags.DEFINE_integer("epochs", 40, "Epochs to train (the seed's 40).")
flags.DEFINE_integer("train_steps", None, "Global steps to train; overrides "
                     "--epochs when set.")
flags.DEFINE_integer("global_batch_size", 64, "Examples per step over all "
                     "replicas (the seed's 64).")
flags.DEFINE_enum("optimizer", "adam", ["adam", "sgd"], "Adam (the seed's "
                  "defaults) or SGD with momentum (the paper's).")
flags.DEFINE_float("learning_rate", None, "Peak learning rate (default: "
                   "1e-3 for adam, 0.01 for sgd).")
flags.DEFINE_enum("lr_schedule", "constant", ["constant", "step", "cosine"],
                  "constant; step: x0.96 every 8 epochs (the paper); cosine "
                  "with linear warm-up.")
flags.DEFINE_integer("warmup_steps", 0, "Linear warm-up steps (cosine).")
flags.DEFINE_float("momentum", 0.9, "SGD momentum.")
flags.DEFINE_bool("nesterov", False, "Nesterov momentum for SGD.")
flags.DEFINE_list("aux_loss_weights", ["0.3", "0.3"], "Weights of the aux1 "
                  "and aux2 losses.")
flags.DEFINE_integer("image_size", 224, "Side the 28x28 images are resized "
                     "to on the device (the seed's 224).")
flags.DEFINE_integer("seed", 0, "Seed of weights, data order and dropout.")
flags.DEFINE_bool("deterministic", False, "Enable TF op determinism: same "
                  "seed and hardware give bitwise-equal results.")
flags.DEFINE_integer("validation_size", 2000, "Training images held out for "
                     "validation (the last ones, as the seed does).")
flags.DEFINE_integer("train_examples", 0, "Use only the first N training "
                     "images (0: all).")
flags.DEFINE_integer("steps_per_loop", 20, "Steps per compiled call; also "
                     "bounds the delay before a SIGTERM is honoured.")
flags.DEFINE_integer("checkpoint_every", 500, "Checkpoint every N steps "
                     "(also at the end and on SIGTERM).")
flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept (>= 2).")
flags.DEFINE_integer("eval_every", 0, "Validate every N steps (0: each "
                     "epoch).")
flags.DEFINE_integer("max_bad_steps", 10, "Stop after this many consecutive "
                     "steps with a non-finite loss or gradient.")
flags.DEFINE_bool("jit_compile", False, "XLA-compile the per-replica "
                  "forward and backward pass.")
flags.DEFINE_enum("mixed_precision", "float32",
                  ["float32", "mixed_float16", "mixed_bfloat16"],
                  "Compute dtype; float16 adds dynamic loss scaling.")
flags.DEFINE_list("profile_steps", [], "Two steps START,STOP: write a "
                  "profiler trace of those steps to <model_dir>/train.")


def _import_tensorflow_quietly() -> None:
  """Imports TensorFlow with fd 2 silenced: its C++ start-up lines (CPU
  features, oneDNN) are written before TF_CPP_MIN_LOG_LEVEL applies and would
  bury a one-line error. Errors raised by the import itself still show."""
  saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  try:
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


def _config():
  if FLAGS.deterministic:
    # TF's op determinism covers its own kernels; oneDNN's custom kernels
    # run on their own thread-pool integration. A bitwise-exact resume once
    # differed (Adam slots, 1e-4 relative) with them on, so this mode uses
    # TF's kernels. It must be set before TensorFlow is imported.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
  _import_tensorflow_quietly()
  from train.config import TrainConfig  # pylint: disable=g-import-not-at-top
  try:
    weights = tuple(float(w) for w in FLAGS.aux_loss_weights)
    profile = tuple(int(s) for s in FLAGS.profile_steps)
  except ValueError as e:
    raise InputError(f"a list flag holds a non-number ({e}).") from None
  # Every TrainConfig field is a flag of the same name (the config's
  # docstring says so); the two list flags need their numbers parsed.
  values = {f.name: getattr(FLAGS, f.name)
            for f in dataclasses.fields(TrainConfig)}
  return TrainConfig(**dict(values, aux_loss_weights=weights,
                            profile_steps=profile))


def main(argv: Sequence[str]) -> int:
  if len(argv) > 1:
    return _fail(f"unexpected arguments {' '.join(argv[1:])}; every option "
                 "is a --flag (see --helpfull).", EXIT_USAGE)
  try:
    config = _config()
    from train import loop  # imports TensorFlow; devices are set up in run()
    loop.run(config)
  except InputError as e:
    return _fail(str(e), EXIT_USAGE)
  except TrainingError as e:
    return _fail(str(e), EXIT_DIVERGED)
  except Preempted as e:
    return _fail(str(e), EXIT_PREEMPTED)
  return 0


def _fail(message: str, code: int) -> int:
  print(f"error: {message}", file=sys.stderr, flush=True)
  return code


def _parse(argv: List[str]) -> List[str]:
  """absl's parser, but a bad flag is one line on stderr and exit 2."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    sys.exit(_fail(f"{e}; see --helpfull.", EXIT_USAGE))


def run() -> None:
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)
  app.run(lambda argv: sys.exit(main(argv)), flags_parser=_parse)


if __name__ == "__main__":
  run()
