"""What an evaluation found, as text or JSON, and the run's own settings
(TF-free: the command line reads them before TensorFlow loads)."""

import dataclasses
import json
import os
from typing import Dict, List, Optional

import numpy as np

from core.runtime import files
from core.runtime.errors import InputError
from train.startup.config import RunConfig
from train.artefacts import confusion


@dataclasses.dataclass
class Report:
  """What an evaluation found."""
  source: str
  step: Optional[int]
  split: str
  examples: int
  loss: float
  accuracy: float
  top5: float
  class_names: List[str]
  confusion: List[List[int]]   # rows: true class, columns: predicted

  @property
  def per_class(self) -> Dict[str, Optional[float]]:
    out = {}
    for i, (name, row) in enumerate(zip(self.class_names, self.confusion)):
      total = sum(row)
      out[name] = row[i] / total if total else None
    return out

  def as_dict(self) -> dict:
    return dict(dataclasses.asdict(self), per_class=self.per_class)


def run_config(run_dir: str, **overrides) -> RunConfig:
  """The RunConfig a run was trained with, from its manifest.

  Raises:
    InputError: If `model_dir` holds no readable manifest.
  """
  path = os.path.join(run_dir, "manifest.json")
  try:
    flags_used = json.loads(files.read_text(path))["flags"]
  except FileNotFoundError:
    raise InputError(f"`model_dir` {run_dir!r} has no manifest.json: not "
                     "a training run's folder.") from None
  except (OSError, ValueError, KeyError) as e:
    raise InputError(f"{path} cannot be read ({e}).") from None
  known = {f.name for f in dataclasses.fields(RunConfig)}
  values = {k: tuple(v) if isinstance(v, list) else v
            for k, v in flags_used.items() if k in known}
  return RunConfig(**dict(values, **{k: v for k, v in overrides.items()
                                       if v is not None}))


def render(report: Report) -> str:
  """The report as a few lines and two tables, bounded at any class count
  as TensorBoard's are (train/artefacts/confusion.py): every class and count up
  to its limits, else the worst classes and the most confused pairs. The
  JSON report (`as_dict`) always has the whole matrix."""
  names = report.class_names
  counts = np.asarray(report.confusion, np.int64).reshape(
      len(names), len(names))
  width = max(len(n) for n in names + ["true \\ predicted"])
  lines = [f"{report.source} on {report.split} ({report.examples} images): "
           f"loss {report.loss:.4f} accuracy {report.accuracy:.4f} top-5 "
           f"{report.top5:.4f}", ""]
  accuracy = confusion.per_class_accuracy(counts)
  if len(names) <= confusion.FULL_MAP:
    lines.append("per-class accuracy:")
    shown = range(len(names))
  else:
    lines.append(f"per-class accuracy, the {confusion.WORST} worst of "
                 f"{len(names)} classes:")
    shown = sorted(np.flatnonzero(~np.isnan(accuracy)).tolist(),
                   key=lambda i: (accuracy[i], i))[:confusion.WORST]
  for i in shown:
    value = "-" if np.isnan(accuracy[i]) else f"{accuracy[i]:.4f}"
    lines.append(f"  {names[i]:<{width}}  {value}")
  if len(names) > confusion.FULL_TABLE:
    lines += ["", "the most confused pairs (true -> predicted: images):"]
    lines += [f"  {names[t]} -> {names[p]}: {c}"
              for t, p, c in confusion.confused_pairs(counts)]
    return "\n".join(lines)
  lines += ["", "confusion matrix (rows: true class, columns: predicted):",
            " " * (width + 2) + " ".join(f"{i:>6}" for i in range(len(names)))]
  for i, (name, row) in enumerate(zip(names, counts.tolist())):
    lines.append(f"  {name:<{width}}" + " ".join(f"{v:>6}" for v in row)
                 + f"   ({i})")
  return "\n".join(lines)
