r"""What the Laplacian did at the last step: per-leaf statistics to log.

At small c2 the explicit step :math:`v + c_2 L(v)` changes most entries of
:math:`1/\sqrt{v}` very little, and a few (those whose :math:`v` is tiny next
to their neighbours') a lot; these statistics show which regime a run is in.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ladam_jax import _coupling
from ladam_jax import _halo
from ladam_jax import _laplacian
from ladam_jax import _ladam
from ladam_jax import _numerics
from ladam_jax import _validation
from ladam_jax._types import VarianceFloor

__all__ = ["SmoothingStats", "smoothing_stats", "smoothing_step_ratio"]


class SmoothingStats(NamedTuple):
  """Statistics of one leaf's smoothed variance (scalars, float32)."""

  relative_change: jax.Array  # ‖ṽ − v̂‖ / ‖v̂‖
  floor_fraction: jax.Array  # share of entries where ṽ is the floor
  step_ratio_min: jax.Array  # min over entries of LAdam's step / Adam's
  step_ratio_median: jax.Array
  step_ratio_max: jax.Array


def _laplacian_adam_state(state: Any) -> _ladam.ScaleByLaplacianAdamState:
  found = jax.tree.leaves(state, is_leaf=lambda x: isinstance(
      x, _ladam.ScaleByLaplacianAdamState))
  found = [x for x in found
           if isinstance(x, _ladam.ScaleByLaplacianAdamState)]
  if len(found) != 1:
    raise ValueError(
        "`state` must hold exactly one ScaleByLaplacianAdamState (the state "
        "of ladam_jax.ladam / ladamw / scale_by_laplacian_adam), found "
        f"{len(found)}.")
  return found[0]


def _fields(what, state: Any, c2, b2, eps, variance_floor, coupling):
  """(treedef, [(v̂, raw smoothed, smoothed floored, coupled)] per leaf)."""
  adam_state = _laplacian_adam_state(state)
  floor = _validation.variance_floor(variance_floor, eps)
  count = adam_state.count
  # The c2 the last update used: plan() is given the count before it.
  laplacian = _coupling.config(what, c2, **coupling)
  leaves = laplacian.plan(adam_state.nu, jnp.maximum(count - 1, 0))
  divisor = _numerics.bias_correction_divisor(b2, jnp.maximum(count, 1))

  def leaf_fields(i, nu):
    leaf = leaves[i]
    v_hat = _numerics.divide(nu, divisor).astype(jnp.float32)
    # The stencil once: the floor is applied here, where the leaf is coupled,
    # as _coupling.smooth applies it.
    raw = _coupling.smooth(nu, leaf, laplacian.stencil, laplacian.impl,
                           divisor=divisor)
    floored = jnp.maximum(raw, jnp.asarray(floor, raw.dtype))
    smoothed = (raw if leaf.use_lap is False else floored
                if leaf.use_lap is True else
                jnp.where(leaf.use_lap, floored, raw)).astype(jnp.float32)
    # Inside shard_map, the mesh axes that split the leaf (statistics over
    # the whole leaf reduce over them) and its global size.
    split = () if leaf.halo is None else leaf.halo.split
    size = nu.size if leaf.halo is None else leaf.halo.size
    return v_hat, raw.astype(jnp.float32), smoothed, jnp.asarray(
        leaf.use_lap), split, size

  treedef, outs = _coupling.map_leaves(leaf_fields, adam_state.nu)
  return treedef, outs, floor


def _ratio(v_hat, smoothed, eps):
  return (jnp.sqrt(v_hat) + eps) / (jnp.sqrt(smoothed) + eps)


def smoothing_stats(state: Any, *, c2: Any = 1e-4, b2: float = 0.999,
                    eps: float = 1e-8, variance_floor: VarianceFloor = 0.0,
                    **coupling: _coupling.Coupling) -> Any:
  r"""Per-leaf statistics of LAdam's smoothing at the last update.

  From the optimizer state alone (its raw second moment :math:`v` and step
  count :math:`t`), with :math:`\hat v = v / (1-\beta_2^t)` and
  :math:`\tilde v` the smoothed, floored variance that the update used
  (``mode='variance_lap'``; pass the hyperparameters the optimizer was built
  with): the relative change :math:`\|\tilde v - \hat v\| / \|\hat v\|`,
  the share of entries at the floor, and the min / median / max over
  entries of the step ratio LAdam / Adam,
  :math:`(\sqrt{\hat v} + \epsilon) / (\sqrt{\tilde v} + \epsilon)` (the
  first moment cancels; :func:`smoothing_step_ratio` gives it entry by
  entry). Leaves that are not smoothed give 0, 0, 1, 1, 1.
  Pure JAX: call it inside ``jit`` and log the result.

  Args:
    state: the state of :func:`ladam_jax.ladam`, :func:`ladam_jax.ladamw` or
      :func:`ladam_jax.scale_by_laplacian_adam` (or any state holding
      exactly one :class:`ladam_jax.ScaleByLaplacianAdamState`).
    c2: the optimizer's c2 (a number, a schedule, a pytree, or a params
      function marked with :func:`ladam_jax.per_leaf`).
    b2: its second-moment decay.
    eps: its eps.
    variance_floor: its floor (a number, default 0.0, or ``'eps'``).
    **coupling: its :class:`ladam_jax.LaplacianKwargs` (``stencil``,
      ``layout`` ...). Inside ``jax.shard_map`` with ``partition_specs``
      the statistics are those of the whole leaves (sums and extrema
      reduced over the blocks; the median gathers the leaf's step ratios).

  Returns:
    A pytree with the structure of the parameters whose leaves are
    :class:`SmoothingStats`.

  Examples:
    >>> import jax, jax.numpy as jnp, optax, ladam_jax
    >>> params = {'w': jnp.zeros((8, 8))}
    >>> opt = ladam_jax.ladam(1e-3, c2=0.1)
    >>> state = opt.init(params)
    >>> grads = {'w': jnp.ones((8, 8)).at[3, 3].set(10.0)}
    >>> _, state = opt.update(grads, state, params)
    >>> stats = ladam_jax.smoothing_stats(state, c2=0.1)
    >>> # The spike's face neighbours: v̂ 1 -> 1 + 0.1 · 4/6 · 99 = 7.6.
    >>> round(float(stats['w'].step_ratio_min), 4)
    0.3627
    >>> round(float(stats['w'].step_ratio_max), 4)  # the spike itself
    1.2217
    >>> float(stats['w'].step_ratio_median)  # elsewhere v is constant
    1.0
  """
  treedef, fields, floor = _fields("smoothing_stats", state, c2, b2, eps,
                                   variance_floor, coupling)

  def leaf_stats(v_hat, raw, smoothed, coupled, split, size):
    ratio = _ratio(v_hat, smoothed, eps)
    norm = jnp.sqrt(_halo.psum(jnp.sum(jnp.square(v_hat)), split))
    change = jnp.sqrt(_halo.psum(jnp.sum(jnp.square(smoothed - v_hat)),
                                 split))
    if split:
      at_floor = _halo.psum(jnp.sum((raw <= floor).astype(jnp.float32)),
                            split) / size
    else:
      at_floor = jnp.mean((raw <= floor).astype(jnp.float32))
    one = jnp.float32(1)
    ratio = _laplacian.unsharded(ratio).reshape(-1)  # whole for the median
    if ratio.size == 0:
      return SmoothingStats(jnp.float32(0), jnp.float32(0), one, one, one)
    return SmoothingStats(
        jnp.where(norm > 0, change / jnp.where(norm > 0, norm, 1),
                  jnp.float32(0)),
        # The floor applies wherever the leaf is coupled (as in the
        # reference).
        jnp.where(coupled, at_floor, jnp.float32(0)),
        _halo.pmin(jnp.min(ratio), split),
        # The same median on every device, typed as such by the pmax.
        _halo.pmax(jnp.median(_halo.gather(ratio, split)), split),
        _halo.pmax(jnp.max(ratio), split))

  return treedef.unflatten([leaf_stats(*f) for f in fields])


def smoothing_step_ratio(state: Any, *, c2: Any = 1e-4, b2: float = 0.999,
                         eps: float = 1e-8,
                         variance_floor: VarianceFloor = 0.0,
                         **coupling: _coupling.Coupling) -> Any:
  r"""Entry by entry, LAdam's step over Adam's at the last update.

  :math:`(\sqrt{\hat v} + \epsilon) / (\sqrt{\tilde v} + \epsilon)` for
  every entry of every leaf (1 where a leaf is not smoothed), with
  :math:`\hat v` and :math:`\tilde v` as in :func:`smoothing_stats`, whose
  arguments it takes: the field to draw as a heatmap. Above 1 LAdam steps
  further than Adam would from the same moments, below 1 less far.

  Args:
    state: as for :func:`smoothing_stats`.
    c2: the optimizer's c2.
    b2: its second-moment decay.
    eps: its eps.
    variance_floor: its floor (a number, default 0.0, or ``'eps'``).
    **coupling: its :class:`ladam_jax.LaplacianKwargs`; inside
      ``jax.shard_map`` with ``partition_specs`` each device gets its block
      of the global ratio.

  Returns:
    A pytree with the structure of the parameters: float32 arrays of the
    leaves' shapes.

  Examples:
    >>> import jax.numpy as jnp, ladam_jax
    >>> params = {'w': jnp.zeros((8, 8))}
    >>> opt = ladam_jax.ladam(1e-3, c2=0.1)
    >>> state = opt.init(params)
    >>> grads = {'w': jnp.ones((8, 8)).at[3, 3].set(10.0)}
    >>> _, state = opt.update(grads, state, params)
    >>> ratio = ladam_jax.smoothing_step_ratio(state, c2=0.1)['w']
    >>> ratio.shape
    (8, 8)
    >>> round(float(ratio[3, 3]), 4), round(float(ratio[3, 4]), 4)
    (1.2217, 0.3627)
  """
  treedef, fields, _ = _fields("smoothing_step_ratio", state, c2, b2, eps,
                               variance_floor, coupling)
  return treedef.unflatten([_ratio(f[0], f[2], eps) for f in fields])
