"""Command-line flags generated from an option table: a frozen dataclass
whose fields carry their help and choices (train/startup/config.option).

Every command has one: `train.main` RunConfig, `train.evaluate`
EvaluateOptions, `train.predict` PredictOptions. Each field becomes a flag of
the same name with the field's default, help and choices; its type
annotation picks the absl flag kind. Tuples are list flags
(`--aux_loss_weights=0.3,0.3`) whose items are parsed to the tuple's type.
"""

import dataclasses
import typing
from typing import Any, Dict, Type

from absl import flags

from core.runtime.errors import InputError
from train.startup.config import RunConfig


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


def define(flag_values: flags.FlagValues = flags.FLAGS,
           table: Type[Any] = RunConfig) -> None:
  """Defines one flag per field of the option table `table`."""
  hints = typing.get_type_hints(table)
  for field in dataclasses.fields(table):
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
      raise TypeError(f"{table.__name__}.{name} has a type no flag kind "
                      f"fits: {kind!r}.")


def values(flag_values: flags.FlagValues = flags.FLAGS,
           table: Type[Any] = RunConfig) -> Dict[str, Any]:
  """The parsed flags as keyword arguments of `table`.

  Raises:
    InputError: If a list flag holds an item of the wrong type.
  """
  hints = typing.get_type_hints(table)
  out = {}
  for field in dataclasses.fields(table):
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


def config(flag_values: flags.FlagValues = flags.FLAGS,
           table: Type[Any] = RunConfig) -> Any:
  """The frozen, validated `table` of the parsed flags.

  Raises:
    InputError: If a value is out of range (the table's __post_init__).
  """
  return table(**values(flag_values, table))
