r"""Wave-variance Adam: a second moment that follows a damped wave equation.

:func:`scale_by_wave_variance` is the reference's ``mode='wave_variance'``
(``ladam.LAdam(mode='wave_variance')``): instead of an exponential moving
average, the second moment :math:`v` is stepped by a leapfrog scheme of
:math:`\ddot v = c_2 L(v) - \kappa (g^2 - E_0^2)` with damping.

References:
  Partin, `LAdam <https://pypi.org/project/ladam/0.4.1/>`_, 2026 (the PyTorch
  package ``ladam`` 0.4.1, MIT).
"""

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from ladam_jax import _coupling
from ladam_jax import _halo
from ladam_jax import _numerics
from ladam_jax import _validation

__all__ = ["ScaleByWaveVarianceState", "scale_by_wave_variance"]


class ScaleByWaveVarianceState(NamedTuple):
  """State of :func:`scale_by_wave_variance`.

  ``nu`` and ``nu_prev`` are the wave's last two time levels of :math:`v`;
  ``wave_e0_sq`` is the automatic :math:`E_0^2` of each leaf (the mean of
  :math:`g^2` at step 1).
  """

  count: jax.Array  # shape=(), dtype=jnp.int32
  mu: optax.Updates
  nu: optax.Updates
  nu_prev: optax.Updates
  wave_e0_sq: optax.Updates


def scale_by_wave_variance(
    b1: jax.typing.ArrayLike = 0.9,
    eps: jax.typing.ArrayLike = 1e-8,
    *,
    c2: Any = 1e-4,
    wave_dt: jax.typing.ArrayLike = 0.1,
    wave_kappa: jax.typing.ArrayLike = 0.1,
    wave_E0: jax.typing.ArrayLike = 0.0,  # pylint: disable=invalid-name
    wave_damping: jax.typing.ArrayLike = 0.5,
    mu_dtype: Optional[jax.typing.DTypeLike] = None,
    nu_dtype: Optional[jax.typing.DTypeLike] = None,
    **coupling: _coupling.Coupling,
) -> optax.GradientTransformation:
  r"""Rescale updates by Adam whose second moment follows a damped wave.

  Per leaf, with :math:`\text{use\_lap}` as in
  :func:`ladam_jax.scale_by_laplacian_adam` and :math:`d` the damping:

  .. math::
    m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
    \hat m_t = m_t / (1-\beta_1^t), \\
    v_1 &= v_0 = \max(g_1^2, \epsilon), \quad
    E_0^2 = \text{mean}(g_1^2) \text{ when } E_0 = 0, \\
    a_t &= c_2 L(v_t)\,[\text{use\_lap}] - \kappa (g_t^2 - E_0^2), \quad
    v_{t+1} = \max((2-d) v_t - (1-d) v_{t-1} + \Delta t^2 a_t,
      \epsilon), \\
    u &= \hat m_t / (\sqrt{v} + \epsilon).

  There is no :math:`\beta_2`: the wave replaces the moving average.
  Where the leapfrog overflows from finite values, :math:`v` saturates at
  the dtype's largest value; where :math:`g^2` or :math:`v` is not finite,
  :math:`v` follows Adam's second moment (:doc:`numerical-safety`).

  Args:
    b1: decay of the first moment, in [0, 1).
    eps: added to the denominator's square root and the floor of
      :math:`v`, >= 0.
    c2: Laplacian coupling strength >= 0: a number, a schedule, a pytree
      (prefix) of them, or a params function marked with
      :func:`ladam_jax.per_leaf` (:doc:`c2-and-layouts`).
    wave_dt: the time step :math:`\Delta t`, >= 0.
    wave_kappa: the source strength :math:`\kappa`, >= 0.
    wave_E0: the background gradient level :math:`E_0` >= 0; 0 (default)
      takes each leaf's own from its first gradient.
    wave_damping: the damping :math:`d`, in [0, 1].
    mu_dtype: optional dtype of the first moment.
    nu_dtype: optional dtype of the wave's state.
    **coupling: how c2 couples the leaves, :class:`ladam_jax.LaplacianKwargs`
      (``stencil``, ``layout``, ``partition_specs``, ...).

  Returns:
    A :class:`optax.GradientTransformation` whose state is
    :class:`ScaleByWaveVarianceState`.

  Examples:
    >>> import jax.numpy as jnp, optax, ladam_jax
    >>> tx = optax.chain(ladam_jax.scale_by_wave_variance(c2=1e-3),
    ...                  optax.scale_by_learning_rate(1e-3))
    >>> params = {'w': jnp.ones((8, 8))}
    >>> state = tx.init(params)
    >>> updates, state = tx.update(params, state)
    >>> round(float(updates['w'][0, 0]), 6)  # step 1: m̂ / sqrt(g²)
    -0.001

  References:
    Partin, `LAdam <https://pypi.org/project/ladam/0.4.1/>`_, 2026.
  """
  _validation.check_unit_interval("b1", b1)
  _validation.check_non_negative("eps", eps)
  for name, value in (("wave_dt", wave_dt), ("wave_kappa", wave_kappa),
                      ("wave_E0", wave_E0), ("wave_damping", wave_damping)):
    _validation.check_non_negative(name, value)
  damping = _validation.concrete_value(wave_damping)
  if damping is not None and damping > 1:
    raise ValueError(f"`wave_damping` must be in [0, 1], got {wave_damping}.")
  laplacian = _coupling.config("scale_by_wave_variance", c2, **coupling)
  mu_dtype = _validation.canonical_dtype(mu_dtype)
  nu_dtype = _validation.canonical_dtype(nu_dtype)

  def init_fn(params):
    laplacian.check(params)
    return ScaleByWaveVarianceState(
        jnp.zeros([], jnp.int32), optax.tree.zeros_like(params, mu_dtype),
        optax.tree.zeros_like(params, nu_dtype),
        optax.tree.zeros_like(params, nu_dtype),
        jax.tree.map(lambda p: jnp.zeros([], nu_dtype or jnp.result_type(p)),
                     params))

  def leaf_step(g, m_hat, v, v_prev, e0_state, leaf, term, first):
    """One leaf's update and new ``(v, v_prev, E0²)``."""
    g2 = _numerics.abs_sq(g)
    state_dtype = v.dtype  # complex for complex leaves; v is real-valued
    v, v_prev = jnp.real(v), jnp.real(v_prev)
    e0_auto = jnp.where(first, _halo.finite_mean(g2, leaf.halo),
                        e0_state).astype(e0_state.dtype)
    e0_sq = jnp.where(jnp.asarray(wave_E0) != 0,
                      jnp.asarray(wave_E0 * wave_E0, g2.dtype),
                      jnp.real(e0_auto))
    acc = -(wave_kappa * (g2 - e0_sq))
    if term is not None:  # c2 L(v), all leaves' computed together
      acc = term + acc
    d = wave_damping
    wave = (2 - d) * v - (1 - d) * v_prev + (wave_dt * wave_dt) * acc
    # Where the leapfrog overflows from finite values, v saturates at the
    # dtype's largest value instead of turning inf or NaN for good.
    big = jnp.finfo(state_dtype).max
    v_next = jnp.where(jnp.isnan(wave), big, jnp.clip(wave, eps, big))
    # Where g² or v is not finite, v follows Adam's second moment: v + g²
    # (inf stays inf, so the update there is 0; NaN stays NaN). The coupled
    # term is 0 wherever a neighbour is not finite (those entries are
    # unsmoothed) and the automatic E0 is the mean over the finite entries,
    # so the rest of the leaf is unaffected.
    v_next = jnp.where(jnp.isfinite(v) & jnp.isfinite(g2), v_next, v + g2)
    v_first = jnp.maximum(g2, eps)
    new_v = jnp.where(first, v_first, v_next).astype(v.dtype)
    update = m_hat / (jnp.sqrt(new_v) + eps)
    new_prev = jnp.where(first, v_first, v).astype(state_dtype)
    return update, new_v.astype(state_dtype), new_prev, e0_auto

  def update_fn(updates, state, params=None):
    del params
    leaves = laplacian.plan(updates, state.count)
    count_inc = optax.safe_increment(state.count)
    mu = optax.tree.update_moment(updates, state.mu, b1, 1)
    terms = laplacian.terms(jax.tree.map(jnp.real, state.nu), leaves)
    treedef, outs = _coupling.map_leaves(
        lambda i, g, m, v, vp, e0: leaf_step(g, m, v, vp, e0, leaves[i],
                                             terms[i], count_inc == 1),
        updates, _numerics.bias_correction(mu, b1, count_inc), state.nu,
        state.nu_prev, state.wave_e0_sq)
    new_updates, nu, nu_prev, e0 = (
        treedef.unflatten(list(x)) for x in zip(*outs))
    return optax.tree.cast_like(new_updates, updates), (
        ScaleByWaveVarianceState(count_inc, optax.tree.cast(mu, mu_dtype),
                                 nu, nu_prev, e0))

  return optax.GradientTransformation(init_fn, update_fn)
