"""The run's configuration: one frozen dataclass, validated on creation.

It is also the one option table: each field carries its help text (and its
choices, where it has some) in its metadata, and train/startup/options.py
generates the command-line flags from the fields, so a flag's name, type,
default, choices and help cannot drift from the config.
"""

import dataclasses
import math
import os
import re
from typing import Optional, Sequence, Tuple

from core.data import types
from core.data.choices import AUGMENTATIONS
from core.optim.choices import AUTO, OPTIMIZERS, PRECISIONS
from core.runtime.choices import STRATEGIES
from core.runtime.errors import InputError
from layers.choices import BLOCKS, NORMS, STEMS, TEST_CROPS, VARIANTS

# The choice lists. This module must not import TensorFlow (the command line
# parses flags and sets TF's environment before TF loads), so the lists the
# engine also reads come from the TensorFlow-free `choices` modules beside the
# code that builds them; these four only this option table names.
SCHEDULES = ("constant", "step", "cosine", "plateau")
EXPORTS = ("last", "best", "none")
DEVICES = ("auto", "cpu")
TRAINABLE = ("all", "head")
CLASS_WEIGHTS = ("none", "balanced")


def layer_names(blocks: Sequence[str]) -> Tuple[str, ...]:
  """The trunk's layers in the order the forward pass runs them, as their
  variables are named (`googlenet/<layer>/...`); --trainable=from: takes
  one."""
  return ("conv1", "conv2_reduce", "conv2",
          *(f"inception_{b}" for b in blocks))
DEFAULT_LEARNING_RATES = {"adam": 1e-3, "sgd": 0.01}


def option(default, help: str, *,  # pylint: disable=redefined-builtin
           choices: Optional[Sequence[str]] = None):
  """A config field with its flag's help text and choices."""
  metadata = {"help": help}
  if choices is not None:
    metadata["choices"] = tuple(choices)
  return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """Everything a run depends on; each field is the flag of the same name.

  Raises (on creation):
    InputError: If a field is out of range or fields contradict each other.
  """
  model_dir: str = option(
      "runs/default", "Checkpoints, TensorBoard logs (train/, eval/, test/) "
      "and manifest.json.")
  start_over: bool = option(
      False, "When --model_dir holds a run this one cannot resume (another "
      "model or data, or no checkpoint restores), move that run aside into "
      "<model_dir>/replaced-<time>/ and start at step 0 instead of "
      "refusing. A run that can resume still resumes.")
  export_dir: Optional[str] = option(
      None, "SavedModel versions for TF Serving (default: "
      "<model_dir>/export).")
  strategy: str = option(
      "mirrored", "tf.distribute strategy: mirrored replicates over all "
      "GPUs, or over --num_cpu_devices logical CPUs without a GPU; "
      "multi_worker runs TF's MultiWorkerMirroredStrategy over the cluster "
      "in TF_CONFIG (python -m train.launch starts one on this machine).",
      choices=STRATEGIES)
  cluster_join_timeout: int = option(
      300, "Seconds a multi_worker run waits for every worker to join "
      "before it stops with the names of the missing ones.")
  num_cpu_devices: int = option(
      1, "Split the CPU into this many logical devices (replicas for "
      "--strategy=mirrored on a machine without GPUs; ignored, with a "
      "warning, where there are GPUs).")
  device: str = option(
      "auto", "auto: the GPUs where TensorFlow sees any, else the CPU; cpu: "
      "the CPU even where there are GPUs (with --num_cpu_devices).",
      choices=DEVICES)
  gpu_memory_growth: bool = option(
      True, "Let TensorFlow take GPU memory as it needs it instead of all "
      "of it at start, so workers that share a GPU machine fit "
      "(--nogpu_memory_growth: all at once).")
  dataset: str = option(
      "fashion_mnist", "Data set: MNIST or Fashion-MNIST from IDX files, a "
      "small synthetic set made in memory, an image folder "
      "(DIR/train/<class>/*.jpg, DIR/validation/, DIR/test/) or TFRecord "
      "shards (DIR/train-*, validation-*, test-*); tfds:NAME: a TensorFlow "
      "Datasets set prepared under --data_dir (the tfds extra).")
  data_dir: Optional[str] = option(
      None, "The data set's folder. IDX sets: the four IDX files (raw or "
      ".gz); default: Debian's Fashion-MNIST folder, or the MNIST cache "
      "(downloaded and checksum-verified). Required for folder and "
      "tfrecord.")
  validation_size: int = option(
      2000, "Training images held out for validation where the data set "
      "has no validation split (IDX: the last ones, as the seed does; "
      "folders: a fixed random choice).")
  label_offset: int = option(
      0, "Subtracted from every label of TFRecord shards (1 for "
      "ImageNet's 1-based shards).")
  augment: Tuple[str, ...] = option(
      (), "Training augmentation, a list of crop (pad-and-crop for IDX "
      "images, Inception's random-resized crop for files), flip "
      "(horizontal) and erase (random erasing). Off by default; evaluation "
      "never augments.")
  randaugment_ops: int = option(
      2, "With --augment=randaugment: operations applied to each image "
      "(RandAugment's N).")
  randaugment_magnitude: int = option(
      9, "With --augment=randaugment: their strength, 0 to 30 "
      "(RandAugment's M on torchvision's 31-step scale).")
  mixup_alpha: float = option(
      0.0, "Mixup: blend each training image with a partner's, the weight "
      "drawn from Beta(alpha, alpha), and the targets alike (0: off; 0.2 "
      "is common).")
  cutmix_alpha: float = option(
      0.0, "CutMix: paste a box of a partner's image, its area drawn from "
      "Beta(alpha, alpha), the targets mixed by area (0: off; 1.0 is "
      "common).")
  mix_switch_prob: float = option(
      0.5, "With both mixup and CutMix on: the chance that an example is "
      "mixed by CutMix rather than mixup.")
  crop_padding: int = option(
      0, "Pixels of zeros --augment=crop pads IDX images by before cropping "
      "them back at a random offset (0: an eighth of the side, 4 at 28x28). "
      "Files take Inception's random-resized crop instead.")
  skip_bad_images: bool = option(
      False, "Skip (and count) images that cannot be read or decoded "
      "instead of stopping with an error naming the file.")
  max_image_pixels: int = option(
      50_000_000, "Images (files, records, serving uploads) whose header "
      "declares more pixels are bad ones, never decoded: the bound on an "
      "image's memory in flight (50 MP is 150 MB of RGB, above a 48-MP "
      "phone photo).")
  train_examples: int = option(
      0, "Use only the first N training images (0: all).")
  epochs: int = option(40, "Epochs to train (the seed's 40).")
  train_steps: Optional[int] = option(
      None, "Global steps to train; overrides --epochs when set.")
  global_batch_size: int = option(
      64, "Examples per step over all replicas (the seed's 64).")
  optimizer: str = option(
      "adam", "Adam (the seed's defaults) or SGD with momentum (the "
      "paper's).", choices=OPTIMIZERS)
  learning_rate: Optional[float] = option(
      None, "Peak learning rate (default: 1e-3 for adam, 0.01 for sgd).")
  lr_schedule: str = option(
      "constant", "constant; step: x0.96 every 8 epochs (the paper); "
      "cosine decay to 0 at the last step.", choices=SCHEDULES)
  warmup_steps: int = option(
      0, "Linear warm-up from 0 over the first N steps, for every "
      "schedule.")
  plateau_patience: int = option(
      2, "--lr_schedule=plateau: validations without a higher validation "
      "accuracy before the learning rate drops.")
  plateau_factor: float = option(
      0.1, "--lr_schedule=plateau: what the learning rate is multiplied by "
      "at each drop.")
  early_stopping: int = option(
      0, "Stop training after this many validations without a higher "
      "validation accuracy, then test and export as at the end (0: off).")
  accumulate_steps: int = option(
      1, "Split each step's batch into this many micro-batches run one after "
      "another and add their gradients: the update of --global_batch_size "
      "in 1/N of the memory (it must divide the batch).")
  layer_decay: float = option(
      1.0, "Layer-wise learning-rate decay: the classifier trains at the "
      "learning rate, each layer below at this factor of the one above "
      "(conv1 lowest); 1: off.")
  class_weight: str = option(
      "none", "balanced: weight each training example's loss by "
      "examples / (classes x its class's examples), for imbalanced "
      "folders; none: every example alike.", choices=CLASS_WEIGHTS)
  momentum: float = option(0.9, "SGD momentum.")
  nesterov: bool = option(False, "Nesterov momentum for SGD.")
  aux_loss_weights: Tuple[float, float] = option(
      (0.3, 0.3), "Weights of the aux1 and aux2 losses.")
  label_smoothing: float = option(
      0.0, "Label smoothing of every head's training loss: the target puts "
      "1 - e on the true class and e / classes on each class (0: off). "
      "Evaluation losses are plain cross-entropy.")
  weight_decay: float = option(
      0.0, "Decoupled weight decay (AdamW for adam; the same form for sgd): "
      "each step, every kernel (never a bias) shrinks by learning rate x "
      "this, apart from the gradient (0: off).")
  clip_norm: float = option(
      0.0, "Clip the all-reduced gradients to this global norm (0: off).")
  ema_decay: float = option(
      0.0, "Keep an exponential moving average of the weights (Polyak "
      "averaging, as the paper did) with this decay, such as 0.999; it is "
      "in the checkpoint and is what validation, test and the export use "
      "(0: off).")
  export: str = option(
      "last", "Which weights the final test and the export use: last (the "
      "end of training) or best (the highest validation accuracy; needs a "
      "validation split); none: test the last weights and write no "
      "SavedModel (sweeps, ablations). The test split never chooses "
      "anything.",
      choices=EXPORTS)
  test_mirror: bool = option(
      False, "Validation, the final test, evaluation, prediction and the "
      "export average each image's class probabilities with its mirror "
      "image's (the paper's test-time mirroring; twice the inference "
      "cost). For classes a mirror does not change, as --augment=flip "
      "assumes.")
  test_crops: str = option(
      "1", "Crops each image is scored by at the final test and in "
      "train.evaluate, averaged in probability: 1; 10 (corners and centre, "
      "mirrored); 144 (the paper's: 4 scales, 3 squares, 6 crops, "
      "mirrored).", choices=TEST_CROPS)
  stem: str = option(
      "paper", "paper: 7x7 stride-2 convolution and a max-pool before "
      "conv2 (Table 1); for small images such as 28x28 (a deviation, "
      "BUILD.md): medium: a 3x3 stride-1 convolution and that max-pool "
      "(twice the map side in every later layer); small: a 3x3 stride-1 "
      "convolution and no first pool (four times the side).", choices=STEMS)
  norm: str = option(
      "none", "none: the paper's GoogLeNet; batch: batch normalisation "
      "after every convolution, before its ReLU (Inception v2's; a "
      "deviation, BUILD.md), over groups of --norm_group_size examples.",
      choices=NORMS)
  blocks: Tuple[str, ...] = option(
      BLOCKS, "The inception blocks built, in Table 1's order (default: all "
      "nine, the paper's network). Fewer, keeping 4a and 4d where the "
      "auxiliary heads sit (such as 4a,4d), build a smaller network with "
      "the same kinds of layer, for quick trials and tests of the machinery "
      "(not the paper's; BUILD.md).")
  variant: str = option(
      "paper", "paper: the paper's GoogLeNet; torchvision or slim: the "
      "architecture of that published ImageNet GoogLeNet (a deviation, "
      "BUILD.md), which --init_from an imported checkpoint "
      "(tools/import_weights.py) needs; they imply --norm=batch.",
      choices=VARIANTS)
  norm_group_size: int = option(
      32, "With --norm=batch: examples per normalisation group; with "
      "--mixup_alpha or --cutmix_alpha: per mixing group (partners pair up "
      "inside one; even). It must divide the per-replica (micro-)batch, and "
      "the result then does not depend on the number of replicas or "
      "workers.")
  image_size: int = option(
      224, "Side the images are resized to on the device (the seed's 224).")
  seed: int = option(0, "Seed of weights, data order and dropout.")
  init_from: Optional[str] = option(
      None, "Start a new run from trained weights (fine-tuning): a run's "
      "model_dir (its newest checkpoint) or one of its SavedModel exports. "
      "Variables of the same name and shape are loaded; the heads start "
      "afresh where the class count differs; the optimizer, step and data "
      "position start fresh. A run that resumes restores its own "
      "checkpoint instead.")
  init_exclude: Optional[str] = option(
      None, "A regular expression: variables whose names it matches (such "
      "as inception_5) are not loaded by --init_from.")
  trainable: str = option(
      "all", "What trains: all; head (the classifier and both auxiliary "
      "heads); from:<layer>, that layer and every later one with the heads "
      "(such as from:inception_4a). Frozen layers get no gradients and "
      "keep their batch-normalisation statistics.")
  pretrained_lr_multiplier: float = option(
      1.0, "Multiplies the learning rate of the trainable layers outside "
      "the heads (the pre-trained part, with --init_from).")
  deterministic: bool = option(
      False, "Enable TF op determinism: same seed and hardware give "
      "bitwise-equal results.")
  steps_per_loop: int = option(
      20, "Steps per compiled call; also bounds the delay before a SIGTERM "
      "is honoured.")
  checkpoint_every: int = option(
      500, "Checkpoint every N steps (also at the end and on SIGTERM).")
  keep_checkpoints: int = option(3, "Checkpoints kept (>= 2).")
  eval_every: int = option(0, "Validate every N steps (0: each epoch), "
                           "and after the last step.")
  max_bad_steps: int = option(
      10, "Stop after this many consecutive steps with a non-finite loss "
      "or gradient.")
  jit_compile: bool = option(
      False, "XLA-compile the per-replica forward and backward pass.")
  mixed_precision: str = option(
      "float32", "Compute dtype; float16 adds dynamic loss scaling. auto: "
      "mixed_bfloat16 where a matrix unit runs it (a CPU with AMX, GPUs "
      "with bfloat16 tensor cores), else float32; a resume keeps the run's "
      "own (the manifest records the choice).",
      choices=PRECISIONS + (AUTO,))
  histogram_every: int = option(
      0, "Write histograms of the weights and of the per-variable gradient "
      "norms every N steps (0: never; the step then computes no norms).")
  profile_steps: Tuple[int, ...] = option(
      (), "Two steps START,STOP: write a profiler trace of those steps to "
      "<model_dir>/train.")

  def __post_init__(self):
    def need(ok, field, rule):
      if not ok:
        raise InputError(f"`{field}` must be {rule}; received "
                         f"{field}={getattr(self, field)!r}.")

    def is_int(value):
      return isinstance(value, int) and not isinstance(value, bool)

    need(bool(self.model_dir), "model_dir", "a directory path")
    for field in dataclasses.fields(self):
      choices = field.metadata.get("choices")
      if choices is not None:
        need(getattr(self, field.name) in choices, field.name,
             "one of " + ", ".join(choices))
    for field in ("num_cpu_devices", "cluster_join_timeout", "epochs",
                  "global_batch_size", "image_size", "steps_per_loop",
                  "checkpoint_every", "norm_group_size", "max_bad_steps",
                  "max_image_pixels", "accumulate_steps", "plateau_patience",
                  "randaugment_ops"):
      value = getattr(self, field)
      need(is_int(value) and value > 0, field, "a positive integer")
    for field in ("validation_size", "train_examples", "warmup_steps",
                  "eval_every", "seed", "label_offset", "histogram_every",
                  "early_stopping"):
      value = getattr(self, field)
      need(is_int(value) and value >= 0, field, "a non-negative integer")
    need(self.train_steps is None or (is_int(self.train_steps)
                                      and self.train_steps > 0),
         "train_steps", "a positive integer when set")
    need(is_int(self.keep_checkpoints) and self.keep_checkpoints >= 2,
         "keep_checkpoints",
         "at least 2 (so a corrupt newest checkpoint has a fallback)")
    need(self.strategy != "multi_worker" or self.num_cpu_devices == 1,
         "num_cpu_devices", "1 with --strategy=multi_worker (TF's "
         "multi-worker strategy uses one CPU device per worker; run more "
         "workers instead)")
    need(not (self.start_over and self.strategy == "multi_worker"),
         "start_over", "off with --strategy=multi_worker (every worker "
         "would decide alone what to move; move the old run aside by hand)")
    for check in (self._check_rates, self._check_lists, self._check_variant,
                  self._check_fine_tuning, self._check_data,
                  self._check_recipe):
      check(need)

  def _check_recipe(self, need) -> None:
    """The modern recipe's options: ranges, and combinations that cannot
    work (each refused before anything loads)."""
    for field in ("mixup_alpha", "cutmix_alpha"):
      value = getattr(self, field)
      need(value >= 0 and math.isfinite(value), field,
           "a non-negative finite number (0: off)")
    need(0 <= self.mix_switch_prob <= 1, "mix_switch_prob", "in [0, 1]")
    need(0 < self.plateau_factor < 1, "plateau_factor", "in (0, 1)")
    need(0 < self.layer_decay <= 1, "layer_decay", "in (0, 1] (1: off)")
    need(0 <= self.randaugment_magnitude <= 30, "randaugment_magnitude",
         "an integer from 0 to 30")
    need(not {"randaugment", "trivialaugment"} <= set(self.augment),
         "augment", "at most one of randaugment and trivialaugment (each is "
         "a whole policy)")
    need(self.global_batch_size % self.accumulate_steps == 0,
         "accumulate_steps", f"a divisor of --global_batch_size="
         f"{self.global_batch_size} (each micro-batch is an equal part)")
    # IDX sets without held-out images have no validation split; files
    # may (their own), which the assembler checks once they are listed.
    validates = (self.validation_size > 0
                 or self.dataset not in ("mnist", "fashion_mnist",
                                         "synthetic"))
    need(validates or self.lr_schedule != "plateau", "lr_schedule",
         "constant, step or cosine with --validation_size=0 (plateau lowers "
         "the rate when validation stalls, and there is no validation)")
    need(validates or not self.early_stopping, "early_stopping",
         "0 with --validation_size=0 (there is no validation to stop on)")
    need(not (self.mixup_alpha or self.cutmix_alpha)
         or self.norm_group_size % 2 == 0, "norm_group_size",
         "even with --mixup_alpha or --cutmix_alpha (partners pair up inside "
         "each group of that many rows)")
    need(self.class_weight == "none" or not types.is_records(self.dataset),
         "class_weight", "none with streamed records (balanced weights need "
         "every label before the first step; a folder or IDX set has them)")

  def _check_data(self, need) -> None:
    need(types.is_known(self.dataset), "dataset",
         "one of " + ", ".join(types.NAMES) + ", or tfds:NAME")
    need(not (self.train_examples and types.is_records(self.dataset)),
         "train_examples",
         f"0 with --dataset={self.dataset} (records are streamed, not "
         "indexed, so cannot be cut; write fewer shards instead)")

  def _check_variant(self, need) -> None:
    """A published network's variant implies its batch normalisation and
    needs the paper's stem (layers/googlenet.check_variant)."""
    if self.variant != "paper" and self.norm == "none":
      object.__setattr__(self, "norm", "batch")  # the variants' own
    need(self.variant == "paper" or self.stem == "paper", "stem",
         f"paper with --variant={self.variant} (its network's stem)")

  def _check_fine_tuning(self, need) -> None:
    need(self.trainable in TRAINABLE or (
        self.trainable.startswith("from:")
        and self.trainable[len("from:"):] in layer_names(self.blocks)),
         "trainable", "all, head or from:<layer> with a layer of "
         + ", ".join(layer_names(self.blocks)))
    try:
      re.compile(self.init_exclude or "")
    except re.error as e:
      need(False, "init_exclude", f"a regular expression ({e})")
    need(self.pretrained_lr_multiplier > 0
         and math.isfinite(self.pretrained_lr_multiplier),
         "pretrained_lr_multiplier", "a positive finite number")

  def _check_rates(self, need) -> None:
    need(self.learning_rate is None or (
        self.learning_rate > 0 and math.isfinite(self.learning_rate)),
         "learning_rate", "a positive finite number")
    need(0 <= self.momentum < 1, "momentum", "in [0, 1)")
    for field in ("label_smoothing", "ema_decay"):
      need(0 <= getattr(self, field) < 1, field, "in [0, 1)")
    for field in ("weight_decay", "clip_norm"):
      value = getattr(self, field)
      need(value >= 0 and math.isfinite(value), field,
           "a non-negative finite number")

  def _check_lists(self, need) -> None:
    need(len(self.aux_loss_weights) == 2 and all(
        w >= 0 and math.isfinite(w) for w in self.aux_loss_weights),
         "aux_loss_weights", "two non-negative numbers such as 0.3,0.3")
    need(self.crop_padding >= 0, "crop_padding", "a non-negative number")
    need(all(op in AUGMENTATIONS for op in self.augment)
         and len(set(self.augment)) == len(self.augment), "augment",
         "distinct entries of " + ", ".join(AUGMENTATIONS))
    order = [BLOCKS.index(b) if b in BLOCKS else -1 for b in self.blocks]
    need(-1 not in order and order == sorted(set(order))
         and {"4a", "4d"} <= set(self.blocks), "blocks",
         "inception blocks of " + ",".join(BLOCKS) + " in that order, "
         "keeping 4a and 4d (the auxiliary heads' places), such as 4a,4d")
    need(len(self.profile_steps) in (0, 2) and (
        not self.profile_steps or 0 < self.profile_steps[0]
        < self.profile_steps[1]), "profile_steps",
         "empty or two increasing positive steps such as 20,25")

  @property
  def warnings(self) -> Tuple[str, ...]:
    """Settings that are allowed but likely not meant, one line each."""
    lines = []
    if not self.init_from and self.trainable != "all":
      lines.append(f"--trainable={self.trainable} without --init_from "
                   "freezes randomly initialised layers.")
    if not self.init_from and self.pretrained_lr_multiplier != 1:
      lines.append("--pretrained_lr_multiplier applies to pre-trained "
                   "layers, and without --init_from there are none.")
    exports = self.export_dir or os.path.join(self.model_dir, "export")
    if self.export != "none" and re.search(r"\[.*\]", exports):
      lines.append(f"the export folder {exports!r} has a [...] in its path, "
                   "which tf.saved_model.load and TF Serving read as a "
                   "pattern: load the exports through a path without one "
                   "(a symbolic link), or set --export_dir.")
    if self.test_mirror and "flip" not in self.augment:
      lines.append("--test_mirror scores each image with its mirror image "
                   "too, but --augment has no flip: training never shows "
                   "the network a mirrored image (add flip to --augment, "
                   "or drop --test_mirror).")
    if self.crop_padding and "crop" not in self.augment:
      lines.append("--crop_padding sets the padding of --augment=crop, but "
                   "--augment has no crop: it changes nothing (add crop to "
                   "--augment, or drop --crop_padding).")
    elif self.crop_padding and types.is_streamed(self.dataset):
      lines.append(f"--crop_padding pads images of one fixed size (the IDX "
                   f"sets), but --dataset={self.dataset} reads files, which "
                   "--augment=crop crops with Inception's random-resized "
                   "crop: it changes nothing (drop --crop_padding).")
    return tuple(lines)

  @property
  def rate(self) -> float:
    """The learning rate, defaulting per optimizer."""
    return self.learning_rate or DEFAULT_LEARNING_RATES[self.optimizer]

  @property
  def fingerprint(self) -> dict:
    """Fields that a checkpoint in `model_dir` must agree with to resume."""
    fields = {k: getattr(self, k) for k in (
        "dataset", "validation_size", "train_examples", "image_size",
        "global_batch_size", "optimizer", "mixed_precision", "seed")}
    # What the checkpoint holds besides: listed when not the default, so
    # runs written before these options existed still match.
    for k in ("stem", "ema_decay", "export", "norm", "blocks", "trainable",
              "variant"):
      if getattr(self, k) != RunConfig.__dataclass_fields__[k].default:
        fields[k] = getattr(self, k)
    return fields
