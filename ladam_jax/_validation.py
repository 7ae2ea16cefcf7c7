"""Construction-time checks of hyperparameters.

Values that arrive as tracers (``optax.inject_hyperparams`` under ``jit``) or
as schedules cannot be checked when the optimizer is built; concrete values
are checked at once, so a bad value fails at construction with a message that
names the argument and what is allowed.
"""


import math
from typing import Any, Sequence

import jax
import numpy as np

__all__ = ["concrete_value", "check_non_negative", "check_unit_interval",
           "check_choice", "is_concrete_zero", "check_adam_like",
           "variance_floor"]


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


def canonical_dtype(dtype: Any) -> Any:
  """``jax.dtypes.canonicalize_dtype(dtype)``, None for None (the params')."""
  return jax.dtypes.canonicalize_dtype(dtype) if dtype else None


def check_adam_like(b1: Any, b2: Any, eps: Any, floor: Any = 0.0) -> Any:
  """The checks shared by the Adam-style transforms (LAdam, LaProp).

  Returns the smoothed variance's floor (:func:`variance_floor`).
  """
  check_unit_interval("b1", b1)
  check_unit_interval("b2", b2)
  check_non_negative("eps", eps)
  return variance_floor(floor, eps)


def variance_floor(floor: Any, eps: Any) -> Any:
  """The value a smoothed variance is kept at or above, checked.

  ``floor`` is a number >= 0 (a Python number, an array, a tracer from
  ``optax.inject_hyperparams``) or the string ``'eps'``: the package's clamp
  (ladam 0.4.1 keeps the smoothed variance at or above its ``eps``).
  """
  if isinstance(floor, str):
    if floor != "eps":
      raise ValueError(
          f"Invalid `variance_floor`={floor!r}: give a number >= 0 (0.0, the "
          "default, is the reference's documented maths) or 'eps' (the "
          "package's clamp at eps).")
    return eps
  if floor is None:
    raise ValueError(
        "`variance_floor`=None is no longer accepted (it used to mean eps): "
        "give variance_floor='eps' for the package's clamp at eps, or a "
        "number >= 0 (0.0, the default, is the reference's documented "
        "maths: c2 = 0 is Adam).")
  check_non_negative("variance_floor", floor)
  return floor
