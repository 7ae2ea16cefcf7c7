"""Small numerical helpers shared by the transforms."""


import math
from typing import Any

import jax
import jax.numpy as jnp

from ladam_jax import _validation

__all__ = ["bias_correction", "bias_correction_divisor", "divide", "abs_sq"]


def abs_sq(x: Any) -> jax.Array:
  """|x|², as Optax squares gradients: x² for real x, x·conj(x) for complex."""
  x = jnp.asarray(x)
  return jnp.real(x * jnp.conj(x)) if jnp.iscomplexobj(x) else jnp.square(x)


def _log_decay(decay: Any):
  """log(decay), taken in double precision when ``decay`` is concrete."""
  value = _validation.concrete_value(decay)
  if value is not None:
    return math.log(value) if value > 0 else -math.inf
  return jnp.log(decay)


def bias_correction(moment: Any, decay: Any, count: jax.Array) -> Any:
  r"""``moment / (1 - decay**count)``, with the divisor accurate to rounding.

  PyTorch (and the reference) computes :math:`1 - \beta^t` in Python double
  precision. ``optax.tree.bias_correction`` computes it in float32, where
  ``0.999`` is stored as ``0.99900001``, so :math:`1 - \beta_2^t` carries a
  1.3e-5 relative error at small :math:`t`. Here it is
  :math:`-\mathrm{expm1}(t \log\beta)` with :math:`\log\beta` taken in double
  precision for concrete betas: about 1e-7 relative in float32.
  """
  correction = bias_correction_divisor(decay, count)
  return jax.tree.map(lambda m: divide(m, correction), moment)


def divide(x: jax.Array, divisor: Any) -> jax.Array:
  """``x / divisor`` in ``x``'s dtype (a bias correction's division)."""
  return x / jnp.asarray(divisor).astype(x.dtype)


def bias_correction_divisor(decay: Any, count: jax.Array) -> jax.Array:
  """``1 - decay**count`` as :func:`bias_correction` divides by it."""
  dtype = jnp.result_type(float)
  t = jnp.asarray(count).astype(dtype)
  return -jnp.expm1(t * jnp.asarray(_log_decay(decay), dtype))
