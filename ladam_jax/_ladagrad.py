r"""LAdaGrad: AdaGrad whose accumulator is smoothed by a Laplacian.

:func:`scale_by_laplacian_adagrad` and the alias :func:`ladagrad`
(``ladam.LAdaGrad``).

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
from ladam_jax import _numerics
from ladam_jax import _validation
from ladam_jax._types import Impl, LayoutLike, Stencil

__all__ = ["ScaleByLaplacianAdagradState", "scale_by_laplacian_adagrad",
           "ladagrad"]

class ScaleByLaplacianAdagradState(NamedTuple):
  """State of :func:`scale_by_laplacian_adagrad`."""

  count: jax.Array  # shape=(), dtype=jnp.int32
  sum_of_squares: optax.Updates


def scale_by_laplacian_adagrad(
    eps: jax.typing.ArrayLike = 1e-10,
    *,
    initial_accumulator_value: jax.typing.ArrayLike = 0.0,
    c2: Any = 1e-4,
    stencil: Stencil = "9point",
    min_spatial_size: jax.typing.ArrayLike = 16,
    layout: LayoutLike = "auto",
    impl: Impl = None,
    allow_unstable_c2: bool = False,
    partition_specs: Any = None,
) -> optax.GradientTransformation:
  r"""Rescale updates by AdaGrad whose accumulator is Laplacian-smoothed.

  As the reference ``LAdaGrad`` (eps outside the square root):

  .. math::
    s_t = s_{t-1} + g_t^2, \quad
    \tilde s = \max(s_t + c_2 L(s_t), 0)\ \text{where use\_lap, else } s_t,
    \quad u = g_t / (\sqrt{\tilde s} + \epsilon).

  The reference's ``lr_decay`` and weight decay live in
  :func:`ladam_jax.ladagrad`.

  Examples:
    >>> import jax.numpy as jnp, ladam_jax
    >>> tx = ladam_jax.scale_by_laplacian_adagrad(c2=1e-4)
    >>> state = tx.init({'w': jnp.ones((8, 8))})
    >>> updates, state = tx.update({'w': jnp.ones((8, 8))}, state)

  Args:
    eps: added to the square root, >= 0.
    initial_accumulator_value: initial value of the accumulator (0 in the
      reference).
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
  _validation.check_non_negative("eps", eps)
  _validation.check_non_negative("initial_accumulator_value",
                                 initial_accumulator_value)
  _coupling.validate(c2=c2, stencil=stencil, layout=layout,
                     min_spatial_size=min_spatial_size, impl=impl,
                     allow_unstable_c2=allow_unstable_c2,
                     partition_specs=partition_specs)
  bound_stencil = None if allow_unstable_c2 else stencil

  def init_fn(params):
    _coupling.check_params(
        params, c2=c2, layout=layout, min_spatial_size=min_spatial_size,
        bound_stencil=bound_stencil, partition_specs=partition_specs,
        what="scale_by_laplacian_adagrad")
    acc = optax.tree.full_like(params, initial_accumulator_value)
    return ScaleByLaplacianAdagradState(jnp.zeros([], jnp.int32), acc)

  def update_fn(updates, state, params=None):
    del params
    leaves = _coupling.plan(
        updates, state.count, c2=c2, layout=layout,
        min_spatial_size=min_spatial_size, bound_stencil=bound_stencil,
        partition_specs=partition_specs, what="scale_by_laplacian_adagrad")
    acc = jax.tree.map(lambda s, g: s + _numerics.abs_sq(g),
                       state.sum_of_squares, updates)
    new_updates = _coupling.smooth_tree(
        acc, leaves, stencil, impl, floor=0.0,
        finish=lambda s, g: g / (jnp.sqrt(s) + eps), others=(updates,))
    return new_updates, ScaleByLaplacianAdagradState(
        optax.safe_increment(state.count), acc)

  return optax.GradientTransformation(init_fn, update_fn)


def ladagrad(
    learning_rate: optax.ScalarOrSchedule = 1e-2,
    lr_decay: Optional[jax.typing.ArrayLike] = None,
    eps: jax.typing.ArrayLike = 1e-10,
    weight_decay: Optional[jax.typing.ArrayLike] = None,
    *,
    c2: Any = 1e-4,
    stencil: Stencil = "9point",
    min_spatial_size: jax.typing.ArrayLike = 16,
    layout: LayoutLike = "auto",
    initial_accumulator_value: jax.typing.ArrayLike = 0.0,
    impl: Impl = None,
    allow_unstable_c2: bool = False,
    partition_specs: Any = None,
) -> optax.GradientTransformation:
  r"""LAdaGrad: AdaGrad with a Laplacian-smoothed accumulator (``ladam.LAdaGrad``).

  Decoupled weight decay with the base learning rate,
  :math:`p \leftarrow p(1-\eta\lambda)`, then
  :math:`p \leftarrow p - \frac{\eta}{1 + (t-1)\,\text{lr\_decay}}\,
  g/(\sqrt{\tilde s} + \epsilon)`. As in Optax, a stage is left out only
  when its argument is None, so the state's structure never depends on how
  a number is spelled.

  Examples:
    >>> import jax.numpy as jnp, ladam_jax
    >>> opt = ladam_jax.ladagrad(1e-2, lr_decay=1e-3, c2=1e-4)
    >>> state = opt.init({'w': jnp.ones((8, 8))})

  Args:
    learning_rate: a float >= 0 or an Optax schedule.
    lr_decay: the step size is divided by ``1 + (t-1)·lr_decay``; >= 0,
      or None (default) for no decay (the reference's ``lr_decay=0``).
    eps: added to the square root, >= 0.
    weight_decay: decoupled weight decay rate >= 0 (scaled by the base lr),
      or None (default) for none (the reference's ``weight_decay=0``).
    c2: coupling strength >= 0: a number, a schedule, a pytree
      (prefix) of them, or a params function marked with
      :func:`ladam_jax.per_leaf`.
    stencil: ``'9point'`` or ``'5point'``.
    min_spatial_size: leaves with fewer elements are never smoothed.
    layout: field layout(s), as in :func:`ladam`.
    initial_accumulator_value: initial value of the accumulator.
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
  _validation.check_non_negative("lr_decay", lr_decay)
  parts = [scale_by_laplacian_adagrad(
      eps, initial_accumulator_value=initial_accumulator_value, c2=c2,
      stencil=stencil, min_spatial_size=min_spatial_size, layout=layout,
      impl=impl, allow_unstable_c2=allow_unstable_c2,
      partition_specs=partition_specs)]
  if lr_decay is not None:
    # count is 0 at step 1: the factor is 1 / (1 + (t - 1) * lr_decay).
    parts.append(optax.scale_by_schedule(lambda count: 1 / (1 + count * lr_decay)))
  return _chain.decay_and_lr(parts, learning_rate, weight_decay)
