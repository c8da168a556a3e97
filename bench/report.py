"""bench.run's markdown report: images/s, the ratios to the engine's command,
the command against its compiled loop, the share of TF's matmul rate, issue
47's targets and the oneDNN profile, from the rows bench.run measured."""

import datetime
from typing import List, Optional

from bench import onednn_profile

_WHAT = {"loop": "engine's compiled loop (bench.step_time)",
         "keras_fit": "Keras 3 `fit`",
         "torch_compiled": "PyTorch, channels-last"}


def share(images_per_second: float, gflops_per_image: float,
          matmul_gflops: float) -> float:
  """The fraction of the matmul rate the training work runs at."""
  return images_per_second * gflops_per_image / matmul_gflops


def images_per_second(row: dict) -> float:
  return row["global_batch_size"] / row["seconds_per_step"]


def find(rows: List[dict], setting: str, precision: str,
         contender: str) -> Optional[dict]:
  """The measured row (none that failed); of the command's, the one at the
  setting's own --steps_per_loop, else the one at the most steps a call."""
  found = [row for row in rows if "error" not in row and (
      row["setting"], row["precision"], row["contender"]) == (
          setting, precision, contender)]
  if contender == "command":
    found.sort(key=lambda row: (
        row["steps_per_loop"] == row["default_steps_per_loop"],
        row["steps_per_loop"]), reverse=True)
  return found[0] if found else None


def _label(row: dict) -> str:
  size, replicas = row["image_size"], row["replicas"]
  name = "make train's flag file, " if row["setting"] == "train" else ""
  return (f"{name}{size}x{size}, {row['stem']} stem, norm {row['norm']}, "
          f"batch {row['global_batch_size']}, {replicas} "
          f"replica{'s' if replicas > 1 else ''}")


def _what(row: dict) -> str:
  if row["contender"] == "command":
    return f"engine's command, --steps_per_loop={row['steps_per_loop']}"
  what = _WHAT[row["contender"]]
  if row["contender"] == "torch_compiled":
    autocast = ", autocast bfloat16" * (row["precision"] == "mixed_bfloat16")
    mode = row.get("mode") or "compiled"
    mode = "`torch.compile`d" if mode == "compiled" else mode
    what = f"{what}{autocast}, {mode}, 1 process"
  return what.replace("|", "/")  # the reason a compile failed may hold one


def _how(row: dict) -> str:
  if row["contender"] != "command":
    return ""
  (short, long), (t_short, t_long) = row["runs"], row["run_seconds"]
  two_lengths = row.get("two_lengths", row["seconds_per_step"])
  return (f"between progress lines; runs of {short} and {long} steps: "
          f"{t_short:.1f} and {t_long:.1f} s, so "
          f"{two_lengths * 1e3:.0f} ms/step by their difference")


def line(row: dict, rows: List[dict], facts: dict, first: bool) -> str:
  """One row of the table; `first` of its setting and precision."""
  cells = [_label(row) if first else "", row["precision"] if first else "",
           _what(row)]
  if "error" in row:
    failed = "failed: " + row["error"].replace("|", "/")
    return "| " + " | ".join(cells + [failed] + [""] * 5) + " |"
  rate = images_per_second(row)
  command = find(rows, row["setting"], row["precision"], "command")
  loop = find(rows, row["setting"], row["precision"], "loop")
  ratio = (f"{images_per_second(command) / rate:.2f}x"
           if command and row is not command else "")
  gap = (f"{row['seconds_per_step'] / loop['seconds_per_step'] - 1:+.1%}"
         if loop and row["contender"] == "command" else "")
  cost = facts["gflops_per_image"][row["setting"]]
  matmul = facts["matmul"][row["precision"]]
  return "| " + " | ".join(cells + [
      f"{rate:.1f}", f"{row['seconds_per_step'] * 1e3:.0f}", ratio, gap,
      f"{share(rate, cost, matmul):.0%}", _how(row)]) + " |"


def targets(rows: List[dict], facts: dict) -> List[str]:
  """Issue 47's targets, each where this run measured what it needs."""
  out = []
  for precision, goal in (("mixed_bfloat16", 1.5), ("float32", 1.3)):
    command = find(rows, "224", precision, "command")
    keras = find(rows, "224", precision, "keras_fit")
    if command and keras:
      rate = images_per_second(command)
      text = (f"- 224x224 {precision}: the command at "
              f"{rate / images_per_second(keras):.2f}x Keras `fit` (target "
              f">= {goal}x)")
      if precision == "mixed_bfloat16":
        used = share(rate, facts["gflops_per_image"]["224"],
                     facts["matmul"][precision])
        text += (f", at {used:.0%} of the bfloat16 matmul rate (target >= "
                 "60 %)")
      out.append(text + ".")
  for row in rows:
    loop = find(rows, row["setting"], row["precision"], "loop")
    if row["setting"] == "224" and row["contender"] == "command" and loop \
        and "error" not in row:
      out.append(
          f"- 224x224 {row['precision']}, --steps_per_loop="
          f"{row['steps_per_loop']}: the command's step "
          f"{row['seconds_per_step'] / loop['seconds_per_step'] - 1:+.1%} "
          "against its compiled loop's (target: within 5 %).")
  fp32 = find(rows, "train", "float32", "command")
  bf16 = find(rows, "train", "mixed_bfloat16", "command")
  if fp32 and bf16:
    out.append(f"- make train's shape: mixed_bfloat16 at "
               f"{images_per_second(bf16) / images_per_second(fp32):.2f}x "
               "float32, the command's (target: the fastest exact "
               "configuration at >= 1.5x today's float32).")
  return out


def header(facts: dict) -> List[str]:
  """What was measured where: the machine, AMX, the matmul rates, costs."""
  versions = ", ".join(f"{k} {v}" for k, v in facts["versions"].items())
  profile, (load_start, load_end) = facts["profile"], facts["load"]
  if isinstance(profile, onednn_profile.Profile):
    amx = f"yes ({', '.join(profile.amx[:4])})" if profile.amx else "no"
  else:
    amx = f"unknown ({profile})"
  matmul = facts["matmul"]
  costs = ", ".join(f"{setting}: {gflops:.3f} GFLOP/image" for setting, gflops
                    in facts["gflops_per_image"].items())
  return [
      f"Measured {datetime.date.today()} by `python -m bench.run` in "
      f"{facts['elapsed'] / 60:.0f} min on: {facts['cpu']}; {versions}; "
      f"1-minute load average {load_start:.1f} at the start, {load_end:.1f} "
      "at the end (a quiet machine starts near 0). Synthetic 28x28x1 uint8 "
      "images resized on the device; ms/step of the command: the wall time "
      "between its progress lines in the longer of two whole runs (N and 2N "
      "steps; their difference shown beside it); of the others the median "
      "of timed windows after warm-up.",
      f"oneDNN ran AMX kernels: {amx}.",
      f"TF's 2048^3 matmul in this run: float32 {matmul['float32']:,.0f} "
      f"GFLOP/s, bfloat16 {matmul['mixed_bfloat16']:,.0f} GFLOP/s. "
      f"Training cost (analytic, 3x forward): {costs}."]


def render(rows: List[dict], facts: dict) -> str:
  """The whole report: the facts, the table, the targets, the profile."""
  lines = header(facts) + [
      "", "| setting | precision | what | img/s | ms/step | command ÷ it | "
      "vs the loop | share of matmul rate | how |",
      "|---|---|---|---|---|---|---|---|---|"]
  groups = [(row["setting"], row["precision"]) for row in rows]
  lines += [line(row, rows, facts, i == 0 or groups[i - 1] != groups[i])
            for i, row in enumerate(rows)]
  lines += ["", "Issue 47's targets, from this run:",
            *(targets(rows, facts) or ["(none measured in this run)"])]
  profile = facts["profile"]
  if isinstance(profile, onednn_profile.Profile):
    batch, steps = facts["profile_size"]
    lines += ["", f"oneDNN's time in a mixed_bfloat16 step at 224x224 "
              f"(batch {batch}, {steps} step(s), `python -m "
              "bench.onednn_profile`):", "", onednn_profile.table(profile)]
  return "\n".join(lines)
