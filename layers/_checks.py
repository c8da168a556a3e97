"""Argument checks shared by the layers; messages follow the house format."""

from typing import Any


def positive_int(name: str, value: Any) -> int:
  """Returns `value` if it is a positive int, else raises.

  Raises:
    ValueError: If `value` is not an int greater than zero (bools are refused).
  """
  if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
    raise ValueError(
        f"`{name}` must be a positive integer; received {name}={value!r}.")
  return value


def rate(name: str, value: Any) -> float:
  """Returns `value` if it is a number in [0, 1), else raises.

  Raises:
    ValueError: If `value` is not a real number with 0 <= value < 1.
  """
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
      0.0 <= value < 1.0):
    raise ValueError(
        f"`{name}` must be a number in [0, 1); received {name}={value!r}.")
  return float(value)


def padding(value: Any, *, explicit: bool = False):
  """Returns `value` if it is "SAME" or "VALID" (or, with `explicit`, a
  non-negative int: that many zeros on every side), else raises.

  Raises:
    ValueError: If `value` is none of those.
  """
  if explicit and isinstance(value, int) and not isinstance(value, bool) \
      and value >= 0:
    return value
  if value not in ("SAME", "VALID"):
    raise ValueError(
        "`padding` must be 'SAME' or 'VALID'"
        + (" or a non-negative integer" if explicit else "")
        + f"; received padding={value!r}.")
  return value


def channels(layer: str, expected: int, received: Any) -> None:
  """Raises if an input's last dimension is not `expected`.

  Raises:
    ValueError: If `received` (a static size or None) differs from `expected`.
  """
  if received != expected:
    raise ValueError(
        f"{layer} expects inputs with {expected} channels (the last NHWC "
        f"dimension); received an input with {received} channels.")
