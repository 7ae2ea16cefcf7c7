"""Construction-time checks of hyperparameters.

Values that arrive as tracers (``optax.inject_hyperparams`` under ``jit``) or
as schedules cannot be checked when the optimizer is built; concrete values
are checked at once, so a bad value fails at construction with a message that
names the argument and what is allowed.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import numpy as np

__all__ = ["concrete_value", "check_non_negative", "check_unit_interval",
           "check_choice", "is_concrete_zero", "is_static_zero",
           "check_adam_like"]


def concrete_value(x: Any) -> float | None:
  """``x`` as a Python float if it is a concrete scalar, else None."""
  if isinstance(x, jax.core.Tracer) or callable(x) or x is None:
    return None
  if isinstance(x, (bool, np.bool_)):
    return None
  try:
    arr = np.asarray(x)
  except Exception:  # pylint: disable=broad-except
    return None
  if arr.shape != () or not np.issubdtype(arr.dtype, np.number):
    return None
  return float(arr)


def is_concrete_zero(x: Any) -> bool:
  """True iff ``x`` is a concrete number equal to 0 (static skip allowed)."""
  value = concrete_value(x)
  return value is not None and value == 0.0


def is_static_zero(x: Any) -> bool:
  """True iff ``x`` is a Python number equal to 0.

  For decisions on the *structure* of a transform (whether a weight-decay or
  momentum stage exists): ``optax.inject_hyperparams`` passes arrays, concrete
  in ``init`` but traced in a jitted ``update``, and both must build the same
  chain, so only Python numbers may remove a stage.
  """
  return (isinstance(x, (int, float)) and not isinstance(x, bool)
          and x == 0)


def check_non_negative(name: str, x: Any) -> None:
  value = concrete_value(x)
  if value is not None and not (value >= 0.0 and math.isfinite(value)):
    raise ValueError(f"`{name}` must be a finite number >= 0, got {x!r}.")


def check_unit_interval(name: str, x: Any) -> None:
  """Checks 0 <= x < 1 (betas, decays)."""
  value = concrete_value(x)
  if value is not None and not 0.0 <= value < 1.0:
    raise ValueError(f"`{name}` must be in [0, 1), got {x!r}.")


def check_choice(name: str, x: Any, choices: Sequence[Any]) -> None:
  if x not in choices:
    raise ValueError(
        f"Invalid `{name}`={x!r}: choose one of {tuple(choices)}.")


def check_adam_like(b1: Any, b2: Any, eps: Any, variance_floor: Any) -> None:
  """The checks shared by the Adam-style transforms (LAdam, LaProp)."""
  check_unit_interval("b1", b1)
  check_unit_interval("b2", b2)
  check_non_negative("eps", eps)
  if variance_floor is not None:
    check_non_negative("variance_floor", variance_floor)
