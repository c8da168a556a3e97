"""`python -m bench.rehearsal_memory [--steps=4]`: the ImageNet-shaped
rehearsal's peak memory at 10 and at 1,000 classes, side by side.

Writes the same 1,000 training, 32 validation and 32 test JPEGs (the same
sizes, four of them 3,000 to 4,000 pixels wide) twice in ImageNet's shard
layout (tools/imagenet_like.py), labelled into 10 and into 1,000 classes,
then runs the paper's GoogLeNet at 224x224 on 2 replicas (global batch 16,
--augment=crop,flip) on each: training, a validation every 2 steps, the
test and the export. Reports each run's peak resident memory (the child's
ru_maxrss) and the difference, which must stay under 300 MB: what grows with
the class count is the three heads and their optimizer state (about 3 M
parameters more), not the summaries or the pipeline.
"""

import json
import os
import subprocess
import sys
import tempfile

from bench import cpu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT_MB = 300


def run(data_dir: str, model_dir: str, steps: int) -> float:
  """Runs train.main on the shards; its peak resident memory in MB."""
  args = [f"--model_dir={model_dir}", "--dataset=tfrecord",
          f"--data_dir={data_dir}", "--label_offset=1", "--image_size=224",
          "--strategy=mirrored", "--num_cpu_devices=2",
          "--global_batch_size=16", f"--train_steps={steps}",
          "--steps_per_loop=2", "--eval_every=2", "--augment=crop,flip"]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
  proc = subprocess.Popen([sys.executable, "-m", "train.main", *args],
                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
  err = proc.stderr.read()
  _, status, usage = os.wait4(proc.pid, 0)
  proc.returncode = os.waitstatus_to_exitcode(status)
  if proc.returncode:
    raise SystemExit(f"error: train.main failed: "
                     f"{err.decode(errors='replace').strip()[-500:]}")
  return usage.ru_maxrss / 1024  # kB -> MB


def main(argv) -> int:
  steps = next((int(a.split("=", 1)[1]) for a in argv
                if a.startswith("--steps=")), 4)
  from tools import imagenet_like  # pylint: disable=g-import-not-at-top
  print(f"# {cpu()}; GoogLeNet 224x224, 2 replicas, batch 16, {steps} steps",
        flush=True)
  peaks = {}
  with tempfile.TemporaryDirectory() as tmp:
    for classes in (10, 1000):
      data = os.path.join(tmp, f"data{classes}")
      imagenet_like.write(data, classes=classes,
                          train_per_class=1000 // classes,
                          validation_images=32, test_images=32,
                          layout=("shards",))
      peaks[classes] = run(os.path.join(data, "shards"),
                           os.path.join(tmp, f"run{classes}"), steps)
      print(json.dumps({"classes": classes, "peak_rss_mb": peaks[classes]}),
            flush=True)
  difference = peaks[1000] - peaks[10]
  print("| classes | peak RSS (MB) |\n|---|---|")
  for classes, peak in peaks.items():
    print(f"| {classes} | {peak:.0f} |")
  print(f"| difference | {difference:.0f} (limit {LIMIT_MB}) |")
  return 0 if difference < LIMIT_MB else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
