r"""LRMSProp: RMSProp whose running average is smoothed by a Laplacian.

:func:`scale_by_laplacian_rms` and the alias :func:`lrmsprop`
(``ladam.LRMSProp``).

References:
  Partin, `LAdam <https://pypi.org/project/ladam/0.4.1/>`_, 2026 (the PyTorch
  package ``ladam`` 0.4.1, MIT).
"""

from typing import Any, NamedTuple, Optional

import jax
import optax

from ladam_jax import _accumulators
from ladam_jax import _alias
from ladam_jax import _coupling
from ladam_jax import _validation

__all__ = ["ScaleByLaplacianRmsState", "scale_by_laplacian_rms", "lrmsprop"]


class ScaleByLaplacianRmsState(NamedTuple):
  """State of :func:`scale_by_laplacian_rms`."""

  count: jax.Array  # shape=(), dtype=jnp.int32; for c2 schedules
  nu: optax.Updates


def scale_by_laplacian_rms(
    decay: jax.typing.ArrayLike = 0.99,
    eps: jax.typing.ArrayLike = 1e-8,
    *,
    initial_scale: jax.typing.ArrayLike = 0.0,
    c2: Any = 1e-4,
    **coupling: _coupling.Coupling,
) -> optax.GradientTransformation:
  r"""Rescale updates by RMSProp whose running average is Laplacian-smoothed.

  As the reference ``LRMSProp`` (eps outside the square root, no bias
  correction):

  .. math::
    a_t = \rho\, a_{t-1} + (1-\rho) g_t^2, \quad
    \tilde a = \max(a_t + c_2 L(a_t), 0)\ \text{where use\_lap, else } a_t,
    \quad u = g_t / (\sqrt{\tilde a} + \epsilon).

  ``c2=0`` is ``optax.scale_by_rms(decay, eps, eps_in_sqrt=False)``.
  Momentum and weight decay are separate transforms; see
  :func:`ladam_jax.lrmsprop`.

  Args:
    decay: decay of the running average of squared gradients, in [0, 1).
    eps: added to the square root, >= 0.
    initial_scale: initial value of the running average (0 in PyTorch).
    c2: coupling strength >= 0: a number, a schedule, a pytree (prefix) of
      them, or a params function marked with :func:`ladam_jax.per_leaf`
      (:doc:`c2-and-layouts`).
    **coupling: how c2 couples the leaves, :class:`ladam_jax.LaplacianKwargs`
      (``stencil``, ``layout``, ``partition_specs``, ...).

  Returns:
    A :class:`optax.GradientTransformation` whose state is
    :class:`ScaleByLaplacianRmsState`.

  Examples:
    >>> import jax.numpy as jnp, optax, ladam_jax
    >>> tx = ladam_jax.scale_by_laplacian_rms(c2=1e-4)
    >>> state = tx.init({'w': jnp.ones((8, 8))})
    >>> updates, state = tx.update({'w': jnp.ones((8, 8))}, state)

  References:
    Partin, `LAdam <https://pypi.org/project/ladam/0.4.1/>`_, 2026;
    Tieleman, Hinton, `Lecture 6.5 - RMSProp
    <https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf>`_,
    2012.
  """
  _validation.check_unit_interval("decay", decay)
  _validation.check_non_negative("eps", eps)
  _validation.check_non_negative("initial_scale", initial_scale)
  return _accumulators.scale_by_smoothed_root(
      _coupling.config("scale_by_laplacian_rms", c2, **coupling), eps,
      initial_scale, ScaleByLaplacianRmsState,
      lambda g, nu: optax.tree.update_moment_per_elem_norm(g, nu, decay, 2))


def lrmsprop(
    learning_rate: optax.ScalarOrSchedule = 1e-2,
    decay: jax.typing.ArrayLike = 0.99,
    eps: jax.typing.ArrayLike = 1e-8,
    momentum: Optional[jax.typing.ArrayLike] = None,
    weight_decay: Optional[jax.typing.ArrayLike] = None,
    *,
    c2: Any = 1e-4,
    initial_scale: jax.typing.ArrayLike = 0.0,
    **coupling: _coupling.Coupling,
) -> optax.GradientTransformation:
  r"""LRMSProp: RMSProp with a Laplacian-smoothed average (``ladam.LRMSProp``).

  Decoupled weight decay :math:`p \leftarrow p(1-\eta\lambda)`, then
  :math:`b \leftarrow \mu b + g/(\sqrt{\tilde a} + \epsilon)`,
  :math:`p \leftarrow p - \eta b`. As in Optax, a stage is left out only
  when its argument is None (``momentum=None``: no momentum buffer;
  ``weight_decay=None``: no decay), so the state's structure never depends
  on how a number is spelled. ``c2=0`` is ``optax.rmsprop(eps_in_sqrt=False,
  momentum=momentum)``.

  Args:
    learning_rate: a float >= 0 or an Optax schedule.
    decay: decay of the running average (PyTorch's ``alpha``), in [0, 1).
    eps: added to the square root, >= 0.
    momentum: momentum factor >= 0, or None (default) for no momentum
      buffer (the reference's ``momentum=0``).
    weight_decay: decoupled weight decay rate >= 0, or None (default) for
      none (the reference's ``weight_decay=0``).
    c2: coupling strength >= 0, as in :func:`scale_by_laplacian_rms`; 0 is
      RMSProp.
    initial_scale: initial value of the running average.
    **coupling: how c2 couples the leaves, :class:`ladam_jax.LaplacianKwargs`
      (``stencil``, ``layout``, ``partition_specs``, ...).

  Returns:
    ``optax.chain(scale_by_laplacian_rms(...), [optax.trace(momentum)],
    [add_decayed_weights], scale_by_learning_rate(learning_rate))``.

  Examples:
    >>> import jax.numpy as jnp, ladam_jax
    >>> opt = ladam_jax.lrmsprop(1e-2, momentum=0.9, c2=1e-4)
    >>> state = opt.init({'w': jnp.ones((8, 8))})

  References:
    Partin, `LAdam <https://pypi.org/project/ladam/0.4.1/>`_, 2026.
  """
  coupling = _coupling.check_names("lrmsprop", coupling)
  _alias.check_learning_rate(learning_rate)
  _validation.check_non_negative("momentum", momentum)
  parts = [scale_by_laplacian_rms(
      decay, eps, initial_scale=initial_scale, c2=c2, **coupling)]
  if momentum is not None:
    parts.append(optax.trace(decay=momentum))
  return _alias.with_decay_and_lr(parts, learning_rate, weight_decay)
