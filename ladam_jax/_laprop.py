r"""LaProp (momentum and adaptivity decoupled), with optional Laplacian coupling.

References:
  Ziyin, Wang, Ueda, *LaProp: Separating Momentum and Adaptivity in Adam*,
  arXiv:2002.04839.
"""

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from ladam_jax import _coupling
from ladam_jax import _accumulators
from ladam_jax import _alias
from ladam_jax import _numerics
from ladam_jax import _validation
from ladam_jax._types import VarianceFloor

__all__ = ["ScaleByLaplacianLapropState", "scale_by_laplacian_laprop",
           "laprop"]


class ScaleByLaplacianLapropState(NamedTuple):
  """State of :func:`scale_by_laplacian_laprop` (Adam-sized)."""

  count: jax.Array  # shape=(), dtype=jnp.int32
  mu: optax.Updates
  nu: optax.Updates


def scale_by_laplacian_laprop(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-15,
    *,
    c2: Any = 0.0,
    variance_floor: VarianceFloor = 0.0,
    mu_dtype: Optional[jax.typing.DTypeLike] = None,
    nu_dtype: Optional[jax.typing.DTypeLike] = None,
    **coupling: _coupling.Coupling,
) -> optax.GradientTransformation:
  r"""Rescale updates by LaProp, the second moment optionally Laplacian-smoothed.

  .. math::
    n_t &= \beta_2 n_{t-1} + (1-\beta_2) g_t^2, \quad
    \hat n_t = n_t / (1-\beta_2^t), \\
    \tilde n &= \max(\hat n_t + c_2 L(\hat n_t), \text{floor})
      \text{ where use\_lap, else } \hat n_t, \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t / (\sqrt{\tilde n} + \epsilon),
    \quad u = m_t / (1-\beta_1^t).

  ``c2=0`` (the default) is plain LaProp; the coupling is LAdam's
  ``variance_lap`` applied to :math:`\hat n` (floor 0 by default, so that
  ``c2 -> 0`` tends to LaProp; ``variance_floor='eps'`` is the package's
  clamp at ``eps``).

  Args:
    b1: momentum decay, in [0, 1).
    b2: second-moment decay, in [0, 1).
    eps: added to the square root, >= 0 (reference default 1e-15).
    c2: coupling strength >= 0: a number, a schedule, a pytree (prefix) of
      them, or a params function marked with :func:`ladam_jax.per_leaf`
      (:doc:`c2-and-layouts`).
    variance_floor: floor of the smoothed second moment: a number >= 0
      (default 0.0) or ``'eps'`` (the package's clamp at ``eps``).
    mu_dtype: optional dtype of the momentum.
    nu_dtype: optional dtype of the second moment (e.g. float32 for
      bfloat16 parameters); the update keeps the gradient's dtype.
    **coupling: how c2 couples the leaves, :class:`ladam_jax.LaplacianKwargs`
      (``stencil``, ``layout``, ``partition_specs``, ...).

  Returns:
    A :class:`optax.GradientTransformation`.

  Examples:
    >>> import jax.numpy as jnp, optax, ladam_jax
    >>> tx = optax.chain(ladam_jax.scale_by_laplacian_laprop(c2=1e-4),
    ...                  optax.scale_by_learning_rate(4e-4))
    >>> state = tx.init({'w': jnp.ones((8, 8))})
  """
  floor = _validation.check_adam_like(b1, b2, eps, variance_floor)
  laplacian = _coupling.config("scale_by_laplacian_laprop", c2, **coupling)
  init_fn = _accumulators.adam_moments_init(
      laplacian, ScaleByLaplacianLapropState, mu_dtype, nu_dtype)

  def update_fn(updates, state, params=None):
    del params
    leaves = laplacian.plan(updates, state.count)
    count_inc = optax.safe_increment(state.count)
    nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
    nu_hat = _numerics.bias_correction(nu, b2, count_inc)
    scaled = laplacian.smooth(
        nu_hat, leaves, floor=floor, others=(updates,),
        finish=lambda n, g: g / (jnp.sqrt(n) + eps))
    mu = optax.tree.update_moment(scaled, state.mu, b1, 1)
    new_updates = _numerics.bias_correction(mu, b1, count_inc)
    return optax.tree.cast_like(new_updates, updates), (
        ScaleByLaplacianLapropState(count_inc,
                                    optax.tree.cast_like(mu, state.mu),
                                    optax.tree.cast_like(nu, state.nu)))

  return optax.GradientTransformation(init_fn, update_fn)


def laprop(
    learning_rate: optax.ScalarOrSchedule = 4e-4,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-15,
    weight_decay: Optional[jax.typing.ArrayLike] = None,
    mask: Any = None,
    *,
    c2: Any = 0.0,
    variance_floor: VarianceFloor = 0.0,
    mu_dtype: Optional[jax.typing.DTypeLike] = None,
    nu_dtype: Optional[jax.typing.DTypeLike] = None,
    **coupling: _coupling.Coupling,
) -> optax.GradientTransformation:
  r"""LaProp with decoupled weight decay; ``c2 > 0`` gives Laplacian LaProp.

  ``optax.chain(scale_by_laplacian_laprop(...), add_decayed_weights(...),
  scale_by_learning_rate(learning_rate))``; the weight decay is left out
  when it is None (the default), as in Optax: any number, also 0, keeps the
  stage, so the state's structure does not depend on how it is spelled.

  Args:
    learning_rate: a float >= 0 or an Optax schedule (reference 4e-4).
    b1: momentum decay, in [0, 1).
    b2: second-moment decay, in [0, 1).
    eps: added to the square root (reference 1e-15).
    weight_decay: decoupled weight decay rate >= 0, or None (default) for
      none.
    mask: which leaves are decayed, as in ``optax.adamw``.
    c2: coupling strength; 0 (default) is plain LaProp.
    variance_floor: as in :func:`scale_by_laplacian_laprop`.
    mu_dtype: as in :func:`scale_by_laplacian_laprop`.
    nu_dtype: as in :func:`scale_by_laplacian_laprop`.
    **coupling: the :class:`ladam_jax.LaplacianKwargs`, as in
      :func:`scale_by_laplacian_laprop`.

  Returns:
    ``optax.chain(scale_by_laplacian_laprop(...), [add_decayed_weights],
    scale_by_learning_rate(learning_rate))``.

  Examples:
    >>> import jax.numpy as jnp, ladam_jax
    >>> opt = ladam_jax.laprop(4e-4, c2=1e-4)  # Laplacian LaProp
    >>> state = opt.init({'w': jnp.ones((8, 8))})
  """
  coupling = _coupling.check_names("laprop", coupling)
  _alias.check_learning_rate(learning_rate)
  parts = [scale_by_laplacian_laprop(
      b1, b2, eps, c2=c2, variance_floor=variance_floor, mu_dtype=mu_dtype,
      nu_dtype=nu_dtype, **coupling)]
  return _alias.with_decay_and_lr(parts, learning_rate, weight_decay, mask)
