"""Does fine-tuning pay? Fashion-MNIST split in two (issue 38, item 4).

  python -m bench.experiments.finetune_fashion --work=/tmp/ft [--pretrain_steps=1000]

1. Writes Fashion-MNIST as an image folder (tools.convert) and two views of
   it by symbolic links: classes 0-4 with all their images (the "ImageNet"
   of this experiment), and classes 5-9 with 50 training images each, 100
   validation images each and the whole test split (5,000 images).
2. Pre-trains on classes 0-4.
3. On the 250 images of classes 5-9, with the same flags and step budget:
   head only (`--trainable=head`), all layers, and from scratch; with
   --recipe, all layers again with each of the modern recipe's options
   (issue 49) added alone.
Prints one line per run with its test accuracy on classes 5-9, and the
commands it ran (BUILD.md cites them).
"""

import os
import re
import subprocess
import sys

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("work", "/tmp/finetune-fashion", "Working folder.")
flags.DEFINE_integer("pretrain_steps", 1000, "Steps on classes 0-4.")
flags.DEFINE_integer("finetune_steps", 200, "Steps on the 250 images.")
flags.DEFINE_integer("per_class", 50, "Training images per class (5-9).")
flags.DEFINE_bool("recipe", False, "Also fine-tune all layers with each of "
                  "RECIPE's options added alone.")

# Issue 49's options, one at a time on top of "all layers". The set is
# balanced (50 a class), so --class_weight would change nothing: not run.
RECIPE = {
    "layer decay 0.7": ["--layer_decay=0.7"],
    "mixup 0.2": ["--mixup_alpha=0.2"],
    "cutmix 1.0": ["--cutmix_alpha=1.0"],
    "randaugment 2,9": ["--augment=flip,randaugment"],
    "trivialaugment": ["--augment=flip,trivialaugment"],
    "colour": ["--augment=flip,colour"],
    # Groups of 8 divide a micro-batch (64 over 2 replicas in 4: 8 rows).
    "4 micro-batches, groups of 8": ["--accumulate_steps=4",
                                     "--norm_group_size=8"],
    "groups of 8": ["--norm_group_size=8"],
    "10 test crops": ["--test_crops=10"],
}

COMMON = ["--image_size=28", "--strategy=mirrored", "--num_cpu_devices=2",
          "--stem=medium", "--norm=batch", "--global_batch_size=64",
          "--steps_per_loop=50", "--augment=flip", "--export=none"]


def _run(args, log):
  command = [sys.executable, "-m", "train.main", *COMMON, *args]
  print("$ python -m train.main " + " ".join(COMMON + list(args)),
        flush=True)
  done = subprocess.run(command, capture_output=True, text=True, check=False)
  with open(log, "w") as f:
    f.write(done.stdout + done.stderr)
  if done.returncode:
    sys.exit(f"failed ({done.returncode}); see {log}")
  return re.findall(r"^test accuracy (\d\.\d+)", done.stdout, re.M)[-1]


def _view(source, target, classes, limits):
  """Links `classes` of each split of `source` into `target`, at most
  limits[split] files per class (None: all)."""
  for split, limit in limits.items():
    for name in classes:
      folder = os.path.join(source, split, name)
      if not os.path.isdir(folder):
        continue
      out = os.path.join(target, split, name)
      os.makedirs(out, exist_ok=True)
      for file in sorted(os.listdir(folder))[:limit]:
        os.symlink(os.path.join(folder, file), os.path.join(out, file))


def main(argv):
  del argv
  work = FLAGS.work
  full = os.path.join(work, "full")
  if not os.path.isdir(full):
    subprocess.run([sys.executable, "-m", "tools.convert",
                    "--source=fashion_mnist", "--to=folder",
                    f"--output={full}"], check=True)
  names = sorted(os.listdir(os.path.join(full, "train")))
  order = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
           "Shirt", "Sneaker", "Bag", "Ankle boot"]
  assert sorted(order) == names, names
  first, second = order[:5], order[5:]
  pre, few = os.path.join(work, "classes0-4"), os.path.join(work,
                                                            "classes5-9")
  if not os.path.isdir(pre):
    _view(full, pre, first, {"train": None, "validation": None,
                             "test": None})
    _view(full, few, second, {"train": FLAGS.per_class, "validation": 100,
                              "test": None})
  source = os.path.join(work, "run-pretrain")
  results = {"pretrain (classes 0-4)": _run(
      [f"--model_dir={source}", "--dataset=folder", f"--data_dir={pre}",
       f"--train_steps={FLAGS.pretrain_steps}", "--eval_every=1000000"],
      os.path.join(work, "pretrain.log"))}
  tune = ["--dataset=folder", f"--data_dir={few}",
          f"--train_steps={FLAGS.finetune_steps}", "--eval_every=1000000"]
  runs = [("head only", [f"--init_from={source}", "--trainable=head"]),
          ("all layers", [f"--init_from={source}"]), ("from scratch", [])]
  if FLAGS.recipe:
    runs += [(f"all layers + {name}", [f"--init_from={source}", *extra])
             for name, extra in RECIPE.items()]
  for name, extra in runs:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower())
    results[name] = _run([f"--model_dir={os.path.join(work, 'run-' + slug)}",
                          *tune, *extra], os.path.join(work, slug + ".log"))
  for name, accuracy in results.items():
    print(f"{name}: test accuracy {accuracy}")


if __name__ == "__main__":
  app.run(main)
