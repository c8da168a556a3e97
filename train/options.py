"""Command-line flags generated from TrainConfig's fields (the option table).

Each field becomes a flag of the same name with the field's default, help and
choices; its type annotation picks the absl flag kind. Tuples are list flags
(`--aux_loss_weights=0.3,0.3`) whose items are parsed to the tuple's type.
"""

import dataclasses
import typing
from typing import Any, Dict

from absl import flags

from core.errors import InputError
from train.config import TrainConfig


def _base(annotation) -> Any:
  """The type of a field annotation without Optional: int for
  Optional[int]."""
  args = typing.get_args(annotation)
  if typing.get_origin(annotation) is typing.Union and type(None) in args:
    return next(a for a in args if a is not type(None))
  return annotation


def _item_type(annotation) -> type:
  """The element type of Tuple[float, float] or Tuple[int, ...]."""
  return typing.get_args(annotation)[0]


def define(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines one flag per TrainConfig field in `flag_values`."""
  hints = typing.get_type_hints(TrainConfig)
  for field in dataclasses.fields(TrainConfig):
    kind = _base(hints[field.name])
    name, default = field.name, field.default
    help_text = field.metadata["help"]
    choices = field.metadata.get("choices")
    common = dict(flag_values=flag_values)
    if choices is not None:
      flags.DEFINE_enum(name, default, list(choices), help_text, **common)
    elif kind is bool:
      flags.DEFINE_bool(name, default, help_text, **common)
    elif kind is int:
      flags.DEFINE_integer(name, default, help_text, **common)
    elif kind is float:
      flags.DEFINE_float(name, default, help_text, **common)
    elif kind is str:
      flags.DEFINE_string(name, default, help_text, **common)
    elif typing.get_origin(kind) is tuple:
      flags.DEFINE_list(name, [str(v) for v in default], help_text, **common)
    else:
      raise TypeError(f"TrainConfig.{name} has a type no flag kind fits: "
                      f"{kind!r}.")


def values(flag_values: flags.FlagValues = flags.FLAGS) -> Dict[str, Any]:
  """The parsed flags as TrainConfig keyword arguments.

  Raises:
    InputError: If a list flag holds an item of the wrong type.
  """
  hints = typing.get_type_hints(TrainConfig)
  out = {}
  for field in dataclasses.fields(TrainConfig):
    value = flag_values[field.name].value
    kind = _base(hints[field.name])
    if typing.get_origin(kind) is tuple:
      item = _item_type(kind)
      try:
        value = tuple(item(v) for v in value)
      except ValueError:
        raise InputError(
            f"`{field.name}` must be a comma-separated list of "
            f"{item.__name__} values; received {field.name}="
            f"{','.join(value)!r}.") from None
    out[field.name] = value
  return out


def config(flag_values: flags.FlagValues = flags.FLAGS) -> TrainConfig:
  """The frozen, validated TrainConfig of the parsed flags."""
  return TrainConfig(**values(flag_values))
