r"""LRMSProp: RMSProp whose running average is smoothed by a Laplacian.

:func:`scale_by_laplacian_rms` and the alias :func:`lrmsprop`
(``ladam.LRMSProp``).

References:
  Partin, *LAdam: Spatially-Aware Adaptive Optimization via
  Laplacian-Regularized Variance Estimates*, 2026; the PyTorch package
  ``ladam`` 0.4.1, https://pypi.org/project/ladam/0.4.1/ (MIT).
"""

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from ladam_jax import _chain
from ladam_jax import _coupling
from ladam_jax import _validation
from ladam_jax._types import Impl, LayoutLike, Stencil

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
    stencil: Stencil = "9point",
    min_spatial_size: jax.typing.ArrayLike = 16,
    layout: LayoutLike = "auto",
    impl: Impl = None,
    allow_unstable_c2: bool = False,
    partition_specs: Any = None,
) -> optax.GradientTransformation:
  r"""Rescale updates by RMSProp whose running average is Laplacian-smoothed.

  As the reference ``LRMSProp`` (eps outside the square root, no bias
  correction):

  .. math::
    a_t = \rho\, a_{t-1} + (1-\rho) g_t^2, \quad
    \tilde a = \max(a_t + c_2 L(a_t), 0)\ \text{where use\_lap, else } a_t,
    \quad u = g_t / (\sqrt{\tilde a} + \epsilon).

  Momentum and weight decay are separate transforms; see
  :func:`ladam_jax.lrmsprop`.

  Examples:
    >>> import jax.numpy as jnp, optax, ladam_jax
    >>> tx = ladam_jax.scale_by_laplacian_rms(c2=1e-4)
    >>> state = tx.init({'w': jnp.ones((8, 8))})
    >>> updates, state = tx.update({'w': jnp.ones((8, 8))}, state)

  Args:
    decay: decay of the running average of squared gradients, in [0, 1).
    eps: added to the square root, >= 0.
    initial_scale: initial value of the running average (0 in PyTorch).
    c2: coupling strength: a number, a schedule, a pytree
      (prefix) of them, or a params function marked with
      :func:`ladam_jax.per_leaf`.
    stencil: ``'9point'`` or ``'5point'``.
    min_spatial_size: leaves with fewer elements are never smoothed.
    layout: field layout(s), as in :func:`scale_by_laplacian_adam`.
    impl: Laplacian implementation or None.
    allow_unstable_c2: accept c2 above :func:`ladam_jax.stability_bound`
      (see :func:`ladam_jax.scale_by_laplacian_adam`).
    partition_specs: inside ``jax.shard_map``, the params' PartitionSpecs
      as given to ``in_specs`` (see
      :func:`ladam_jax.scale_by_laplacian_adam`; ``docs/shard_map.md``).

  Returns:
    A :class:`optax.GradientTransformation`.
  """
  _validation.check_unit_interval("decay", decay)
  _validation.check_non_negative("eps", eps)
  _validation.check_non_negative("initial_scale", initial_scale)
  _coupling.validate(c2=c2, stencil=stencil, layout=layout,
                     min_spatial_size=min_spatial_size, impl=impl,
                     allow_unstable_c2=allow_unstable_c2,
                     partition_specs=partition_specs)
  bound_stencil = None if allow_unstable_c2 else stencil

  def init_fn(params):
    _coupling.check_params(
        params, c2=c2, layout=layout, min_spatial_size=min_spatial_size,
        bound_stencil=bound_stencil, partition_specs=partition_specs,
        what="scale_by_laplacian_rms")
    nu = optax.tree.full_like(params, initial_scale)
    return ScaleByLaplacianRmsState(jnp.zeros([], jnp.int32), nu)

  def update_fn(updates, state, params=None):
    del params
    leaves = _coupling.plan(
        updates, state.count, c2=c2, layout=layout,
        min_spatial_size=min_spatial_size, bound_stencil=bound_stencil,
        partition_specs=partition_specs, what="scale_by_laplacian_rms")
    nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, decay, 2)
    new_updates = _coupling.smooth_tree(
        nu, leaves, stencil, impl, floor=0.0,
        finish=lambda a, g: g / (jnp.sqrt(a) + eps), others=(updates,))
    return new_updates, ScaleByLaplacianRmsState(
        optax.safe_increment(state.count), nu)

  return optax.GradientTransformation(init_fn, update_fn)


def lrmsprop(
    learning_rate: optax.ScalarOrSchedule = 1e-2,
    decay: jax.typing.ArrayLike = 0.99,
    eps: jax.typing.ArrayLike = 1e-8,
    momentum: Optional[jax.typing.ArrayLike] = None,
    weight_decay: Optional[jax.typing.ArrayLike] = None,
    *,
    c2: Any = 1e-4,
    stencil: Stencil = "9point",
    min_spatial_size: jax.typing.ArrayLike = 16,
    layout: LayoutLike = "auto",
    initial_scale: jax.typing.ArrayLike = 0.0,
    impl: Impl = None,
    allow_unstable_c2: bool = False,
    partition_specs: Any = None,
) -> optax.GradientTransformation:
  r"""LRMSProp: RMSProp with a Laplacian-smoothed average (``ladam.LRMSProp``).

  Decoupled weight decay :math:`p \leftarrow p(1-\eta\lambda)`, then
  :math:`b \leftarrow \mu b + g/(\sqrt{\tilde a} + \epsilon)`,
  :math:`p \leftarrow p - \eta b`. As in Optax, a stage is left out only
  when its argument is None (``momentum=None``: no momentum buffer;
  ``weight_decay=None``: no decay), so the state's structure never depends
  on how a number is spelled. ``c2=0`` is ``optax.rmsprop(eps_in_sqrt=False,
  momentum=momentum)``.

  Examples:
    >>> import jax.numpy as jnp, ladam_jax
    >>> opt = ladam_jax.lrmsprop(1e-2, momentum=0.9, c2=1e-4)
    >>> state = opt.init({'w': jnp.ones((8, 8))})

  Args:
    learning_rate: a float >= 0 or an Optax schedule.
    decay: decay of the running average (PyTorch's ``alpha``), in [0, 1).
    eps: added to the square root, >= 0.
    momentum: momentum factor >= 0, or None (default) for no momentum
      buffer (the reference's ``momentum=0``).
    weight_decay: decoupled weight decay rate >= 0, or None (default) for
      none (the reference's ``weight_decay=0``).
    c2: coupling strength >= 0: a number, a schedule, a pytree
      (prefix) of them, or a params function marked with
      :func:`ladam_jax.per_leaf`.
    stencil: ``'9point'`` or ``'5point'``.
    min_spatial_size: leaves with fewer elements are never smoothed.
    layout: field layout(s), as in :func:`ladam`.
    initial_scale: initial value of the running average.
    impl: Laplacian implementation or None.
    allow_unstable_c2: accept c2 above :func:`ladam_jax.stability_bound`
      (see :func:`ladam_jax.scale_by_laplacian_adam`).
    partition_specs: inside ``jax.shard_map``, the params' PartitionSpecs
      as given to ``in_specs`` (see
      :func:`ladam_jax.scale_by_laplacian_adam`; ``docs/shard_map.md``).

  Returns:
    The optimizer as an :class:`optax.GradientTransformation`.
  """
  _chain.check_learning_rate(learning_rate)
  _validation.check_non_negative("momentum", momentum)
  parts = [scale_by_laplacian_rms(
      decay, eps, initial_scale=initial_scale, c2=c2, stencil=stencil,
      min_spatial_size=min_spatial_size, layout=layout, impl=impl,
      allow_unstable_c2=allow_unstable_c2,
      partition_specs=partition_specs)]
  if momentum is not None:
    parts.append(optax.trace(decay=momentum))
  return _chain.decay_and_lr(parts, learning_rate, weight_decay)
