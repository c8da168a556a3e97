"""The run's configuration: one frozen dataclass, validated on creation.

It is also the one option table: each field carries its help text (and its
choices, where it has some) in its metadata, and train/startup/options.py
generates the command-line flags from the fields, so a flag's name, type,
default, choices and help cannot drift from the config.
"""

import dataclasses
from typing import Optional, Sequence, Tuple

from core.optim.choices import AUTO, OPTIMIZERS, PRECISIONS
from core.runtime.choices import STRATEGIES
from layers.choices import BLOCKS, NORMS, STEMS, TEST_CROPS, VARIANTS
from train.startup import rules

# The choice lists. This module must not import TensorFlow (the command line
# parses flags and sets TF's environment before TF loads), so the lists the
# engine also reads come from the TensorFlow-free `choices` modules beside the
# code that builds them; these only this option table names.
SCHEDULES = ("constant", "step", "cosine", "plateau")
EXPORTS = ("last", "best", "none")
DEVICES = ("auto", "cpu")
CLASS_WEIGHTS = ("none", "balanced")
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
      "images, Inception's random-resized crop for files), randaugment or "
      "trivialaugment (torchvision's policies), colour (Inception's "
      "photometric distortions), flip (horizontal) and erase (random "
      "erasing), applied in that order. Off by default; evaluation never "
      "augments.")
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
    rules.check(self)

  @property
  def warnings(self) -> Tuple[str, ...]:
    """Settings that are allowed but likely not meant, one line each."""
    return rules.warnings(self)

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
