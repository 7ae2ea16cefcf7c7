"""Learning-rate schedules from the reference package, as Optax schedules."""


import math

import jax
import jax.numpy as jnp

from ladam_jax import _validation

__all__ = ["chi_anneal_schedule"]


def chi_anneal_schedule(peak_value: float, total_steps: int,
                        warmup_frac: float = 0.05,
                        settle_frac: float = 0.30):
  r"""Chi-Anneal: linear warmup, constant, cosine-squared decay.

  The reference's ``ChiAnnealScheduler`` as an Optax schedule. With
  :math:`T` = ``total_steps``, :math:`W = \lfloor T\cdot\text{warmup\_frac}
  \rfloor`, :math:`S = \lfloor T (1 - \text{settle\_frac}) \rfloor` and
  :math:`t` = ``count``:

  .. math::
    \eta(t) = \begin{cases}
      \eta_0 & t = 0 \\
      \eta_0\, t / \max(W, 1) & 1 \le t \le W \\
      \eta_0 & t < S \\
      \eta_0 \left(\tfrac12 (1 + \cos(\pi \min(1, \tfrac{t - S}{\max(T-S, 1)})))
      \right)^2 & \text{otherwise.}
    \end{cases}

  The reference's scheduler is stepped after the optimizer, so its first
  optimizer step runs at the base rate and step :math:`n+1` at the rate it set
  after :math:`n` scheduler steps; this schedule, indexed by Optax's ``count``
  (0 at the first step), gives exactly those rates. Beyond ``total_steps`` the
  reference's rate rises again along the cosine; here it stays at 0.

  Args:
    peak_value: the base learning rate, >= 0.
    total_steps: number of optimizer steps, > 0.
    warmup_frac: fraction of steps in the linear warmup, in [0, 1).
    settle_frac: fraction of steps in the cosine-squared decay, in [0, 1);
      ``warmup_frac + settle_frac <= 1``.

  Returns:
    A schedule ``count -> learning rate``.

  Examples:
    >>> import ladam_jax
    >>> sched = ladam_jax.chi_anneal_schedule(1e-3, total_steps=100)
    >>> [round(float(sched(t)), 6) for t in (0, 1, 5, 50, 85, 100)]
    [0.001, 0.0002, 0.001, 0.001, 0.00025, 0.0]
  """
  _validation.check_non_negative("peak_value", peak_value)
  if not isinstance(total_steps, int) or total_steps <= 0:
    raise ValueError(f"`total_steps` must be an int > 0, got {total_steps!r}.")
  _validation.check_unit_interval("warmup_frac", warmup_frac)
  _validation.check_unit_interval("settle_frac", settle_frac)
  if warmup_frac + settle_frac > 1.0:
    raise ValueError(
        "`warmup_frac` + `settle_frac` must be <= 1, got "
        f"{warmup_frac} + {settle_frac}.")
  warmup = int(total_steps * warmup_frac)
  settle_start = int(total_steps * (1.0 - settle_frac))
  settle_len = max(total_steps - settle_start, 1)

  def schedule(count: jax.Array) -> jax.Array:
    t = jnp.asarray(count)
    tf = t.astype(jnp.result_type(float))
    warm = peak_value * tf / max(warmup, 1)
    progress = jnp.minimum((tf - settle_start) / settle_len, 1.0)
    settle = peak_value * (0.5 * (1 + jnp.cos(math.pi * progress))) ** 2
    lr = jnp.where(t <= warmup, warm, jnp.where(t < settle_start,
                                                peak_value, settle))
    return jnp.where(t == 0, peak_value, lr)

  return schedule
