"""What an evaluation found, as text or JSON, and the run's own settings
(TF-free: the command line reads them before TensorFlow loads)."""

import dataclasses
import json
import os
from typing import Dict, List, Optional

from core.runtime.errors import InputError
from train.assembly.config import TrainConfig


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
    for name, row in zip(self.class_names, self.confusion):
      total = sum(row)
      out[name] = row[self.class_names.index(name)] / total if total else None
    return out

  def as_dict(self) -> dict:
    return dict(dataclasses.asdict(self), per_class=self.per_class)


def run_config(run_dir: str, **overrides) -> TrainConfig:
  """The TrainConfig a run was trained with, from its manifest.

  Raises:
    InputError: If `model_dir` holds no readable manifest.
  """
  path = os.path.join(run_dir, "manifest.json")
  try:
    with open(path) as f:
      flags_used = json.load(f)["flags"]
  except FileNotFoundError:
    raise InputError(f"`model_dir` {run_dir!r} has no manifest.json: not "
                     "a training run's folder.") from None
  except (OSError, ValueError, KeyError) as e:
    raise InputError(f"{path} cannot be read ({e}).") from None
  known = {f.name for f in dataclasses.fields(TrainConfig)}
  values = {k: tuple(v) if isinstance(v, list) else v
            for k, v in flags_used.items() if k in known}
  return TrainConfig(**dict(values, **{k: v for k, v in overrides.items()
                                       if v is not None}))


def render(report: Report) -> str:
  """The report as a few lines and two tables."""
  names = report.class_names
  width = max(len(n) for n in names + ["true \\ predicted"])
  lines = [f"{report.source} on {report.split} ({report.examples} images): "
           f"loss {report.loss:.4f} accuracy {report.accuracy:.4f} top-5 "
           f"{report.top5:.4f}", "", "per-class accuracy:"]
  for name, accuracy in report.per_class.items():
    shown = "-" if accuracy is None else f"{accuracy:.4f}"
    lines.append(f"  {name:<{width}}  {shown}")
  lines += ["", "confusion matrix (rows: true class, columns: predicted):",
            " " * (width + 2) + " ".join(f"{i:>6}" for i in range(len(names)))]
  for i, (name, row) in enumerate(zip(names, report.confusion)):
    lines.append(f"  {name:<{width}}" + " ".join(f"{v:>6}" for v in row)
                 + f"   ({i})")
  return "\n".join(lines)
