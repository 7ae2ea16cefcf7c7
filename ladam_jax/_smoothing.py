r"""Laplacian smoothing of the updates (Osher et al.): the implicit solve.

LAdam smooths Adam's second moment with one explicit step
:math:`v + c_2 L v`. Laplacian smoothing gradient descent (Osher, Wang, Yin,
Luo, Barekat, Pham and Lin, "Laplacian Smoothing Gradient Descent",
arXiv:1806.06317, 2018) smooths the gradient implicitly instead:

.. math::
  u = (I - \sigma L)^{-1} g .

On the periodic field :math:`L` is diagonal in the Fourier basis, with
symbol :math:`\lambda_k \le 0` (the stencil's eigenvalues), so the solve is
exact and cheap: :math:`\hat u_k = \hat g_k / (1 - \sigma \lambda_k)`. The
multiplier lies in :math:`(0, 1]` for every :math:`\sigma \ge 0`: any
smoothing strength is stable, the mean of each field (:math:`k = 0`) is
kept, and no floor is needed.
"""


import functools
import math
from typing import Any, NamedTuple, Optional

import jax
from jax.experimental.shard_alike import shard_alike
import jax.numpy as jnp
import numpy as np
import optax

from ladam_jax import _c2
from ladam_jax import _halo
from ladam_jax import _laplacian
from ladam_jax import _layout
from ladam_jax import _numerics
from ladam_jax import _sharded_fft
from ladam_jax import _stencil
from ladam_jax import _validation
from ladam_jax._layout import LayoutLike
from ladam_jax._types import SmoothingMethod, SmoothingTarget
from ladam_jax._types import Stencil

__all__ = ["ScaleByLaplacianSmoothingState", "scale_by_laplacian_smoothing",
           "scale_by_implicit_laplacian_adam", "lsadam", "lssgd",
           "solve_laplacian_smoothing"]


class ScaleByLaplacianSmoothingState(NamedTuple):
  """State for :func:`scale_by_laplacian_smoothing`."""
  count: jax.Array  # shape=(), dtype=jnp.int32: the step, for a schedule


def _to_fields(x: jax.Array, spec: _layout.FieldSpec, dtype) -> jax.Array:
  x = jnp.flip(x, spec.flip) if spec.flip else x
  xt = x if spec.perm == tuple(range(x.ndim)) else jnp.transpose(x, spec.perm)
  shape = (spec.batch,) + spec.field
  typed = _laplacian.explicit_field_layout(x, spec)
  if typed is None:
    return xt.reshape(shape).astype(dtype)
  # On an Explicit mesh the reshape's result is typed: each field axis is
  # split as the leading leaf axis of those it merges.
  _, leaf_spec, field_spec = typed
  xt = jax.sharding.reshard(xt, leaf_spec)  # a no-op unless moved
  return jax.lax.reshape(xt, shape, out_sharding=field_spec).astype(dtype)


def _from_fields(u: jax.Array, x: jax.Array,
                 spec: _layout.FieldSpec) -> jax.Array:
  shape = tuple(x.shape[p] for p in spec.perm)
  typed = _laplacian.explicit_field_layout(x, spec)
  u = (u.reshape(shape) if typed is None
       else jax.lax.reshape(u, shape, out_sharding=typed[1]))
  u = u.astype(x.dtype)
  u = (u if spec.perm == tuple(range(x.ndim))
       else jnp.transpose(u, np.argsort(spec.perm)))
  u = jnp.flip(u, spec.flip) if spec.flip else u
  if typed is not None:
    u = jax.sharding.reshard(u, jax.typeof(x).sharding.spec)
  elif jax.device_count() > 1:
    # Auto axes: the result takes the leaf's sharding, whatever the
    # partitioner chose for the reshapes between them.
    _, u = shard_alike(x, u)
  return u


def _solve_group(xs: list, spec: _layout.FieldSpec, sigmas: list,
                 stencil: str, method: str) -> list:
  """Leaves of one shape, dtype and field, solved as one stacked array (one
  transform for the group instead of one per leaf)."""
  dtype = jnp.float64 if xs[0].dtype == jnp.float64 else jnp.float32
  fields = [_to_fields(x, spec, dtype) for x in xs]
  f = fields[0] if len(fields) == 1 else jnp.concatenate(fields)
  sigma = jnp.repeat(jnp.stack([jnp.asarray(s, dtype) for s in sigmas]),
                     spec.batch)
  # Sharded fields stay sharded through the solve (see _sharded_fft).
  u = _sharded_fft.solve(f, sigma, spec.field, stencil, method)
  return [_from_fields(u[i * spec.batch:(i + 1) * spec.batch], x, spec)
          for i, x in enumerate(xs)]


def _flat_spec(shape: tuple[int, ...]) -> _layout.FieldSpec:
  """The paper's field: the flattened leaf as one periodic line."""
  return _layout.FieldSpec(perm=tuple(range(len(shape))), batch=1,
                           field=(math.prod(shape),))


def _leaf_specs(tree, layout, flatten) -> list:
  shapes = [tuple(jnp.shape(x)) for x in jax.tree.leaves(tree)]
  if flatten:
    return [_flat_spec(s) for s in shapes]
  layouts = _layout.resolve_layouts(layout, tree)
  return [_layout.field_spec(s, l) for s, l in zip(shapes, layouts)]


def _check_params(params, sigma, layout, flatten) -> None:
  """Init-time checks: every leaf's layout fits and ``sigma`` resolves."""
  _leaf_specs(params, layout, flatten)
  _c2.resolve_c2(sigma, params, jnp.zeros([], jnp.int32), name="sigma")


def _make_smoothing(sigma, stencil, layout, flatten, min_spatial_size,
                    method):
  """Checks the smoothing's arguments at construction; returns the
  smoothing of a tree at a step count and the init-time check of the
  params."""
  _validation.check_choice("stencil", stencil, _stencil.STENCILS)
  _c2.check_c2(sigma, name="sigma")
  if not isinstance(flatten, bool):
    raise ValueError(f"`flatten` must be True or False, got {flatten!r}.")
  if not callable(layout) and _layout.is_leaf_layout(layout):
    _layout.check_leaf_layout(layout)
  _validation.check_non_negative("min_spatial_size", min_spatial_size)
  _validation.check_choice("method", method, ("fft", "dft"))
  smooth = functools.partial(
      solve_laplacian_smoothing, sigma=sigma, stencil=stencil, layout=layout,
      flatten=flatten, min_spatial_size=min_spatial_size, method=method)
  check_params = functools.partial(_check_params, sigma=sigma, layout=layout,
                                   flatten=flatten)
  return smooth, check_params


def solve_laplacian_smoothing(tree: Any, count: jax.Array, *, sigma, stencil,
                              layout, flatten, min_spatial_size,
                              method) -> Any:
  r"""Solves :math:`(I - \sigma L) u = x` for every leaf ``x`` of ``tree``.

  Leaves without a field (or with fewer than ``min_spatial_size`` entries,
  or a ``sigma`` of 0) are returned as they are. On one device, leaves of
  one shape, dtype and field are solved as one stacked array.

  Args:
    tree: the pytree to smooth.
    count: the step count, at which a ``sigma`` schedule is read.
    sigma: the smoothing strength (see :func:`scale_by_laplacian_smoothing`).
    stencil: ``'9point'`` or ``'5point'``.
    layout: how a leaf is seen as a field.
    flatten: every leaf as one periodic line.
    min_spatial_size: leaves with fewer entries are returned as they are.
    method: ``'fft'`` or ``'dft'``.

  Returns:
    ``tree`` smoothed, each leaf of its own shape, dtype and sharding.
  """
  _halo.refuse_smoothing_in_shard_map(tree, "Laplacian smoothing")
  leaves, treedef = jax.tree.flatten(tree)
  sigmas = _c2.resolve_c2(sigma, tree, count, name="sigma")
  out = list(leaves)
  # Traced under optax.inject_hyperparams: then chosen per leaf at run time
  # (as LAdam does).
  min_size = _validation.concrete_value(min_spatial_size)
  groups: dict[Any, list[int]] = {}
  for i, (x, spec, s) in enumerate(zip(leaves, _leaf_specs(tree, layout,
                                                           flatten), sigmas)):
    # No field, or one on which L is zero (ladam_jax.laplacian: a 2-D side
    # below 3, a line below 4): the solve would be the identity.
    if (spec is None or spec.too_small or _validation.is_concrete_zero(s)
        or (min_size is not None and math.prod(jnp.shape(x)) < min_size)):
      continue
    # With several devices each leaf is solved alone: stacked leaves would
    # have to share one sharding.
    key = (tuple(jnp.shape(x)), jnp.result_type(x), spec,
           i if jax.device_count() > 1 else None)
    groups.setdefault(key, []).append(i)
  for (shape, _, spec, _), idx in groups.items():
    solved = _solve_group([leaves[i] for i in idx], spec,
                          [sigmas[i] for i in idx], stencil, method)
    for i, u in zip(idx, solved):
      if not isinstance(sigmas[i], (int, float)):
        # A traced or array sigma of 0 gives the gradient bit-for-bit, not
        # the FFT's round-off of it (which Adam would normalise into steps
        # where the gradient is exactly 0).
        u = jnp.where(jnp.asarray(sigmas[i]) == 0, leaves[i], u)
      out[i] = u if min_size is not None else jnp.where(
          math.prod(shape) >= min_spatial_size, u, leaves[i])
  return treedef.unflatten(out)


def scale_by_laplacian_smoothing(
    sigma: Any = 1.0,
    *,
    stencil: Stencil = "9point",
    layout: LayoutLike = "auto",
    flatten: bool = False,
    min_spatial_size: int = 16,
    method: SmoothingMethod = "fft",
) -> optax.GradientTransformation:
  r"""Replaces each leaf's updates by :math:`(I - \sigma L)^{-1} g`.

  Laplacian smoothing: the exact solution of :math:`(I - \sigma L) u = g` on
  each leaf's periodic field, the same field and stencil LAdam smooths its
  variance on (2-D fields with the 9- or 5-point stencil, 1-D leaves with
  ``[1, -2, 1]``; see :func:`ladam_jax.laplacian`), solved with ``jnp.fft``:
  in the Fourier basis

  .. math::
    \hat u_k = \frac{\hat g_k}{1 - \sigma \lambda_k}, \qquad
    \lambda_k \le 0 \text{ the eigenvalues of } L,

  so every mode is damped by a factor in :math:`(0, 1]`, the highest most,
  the field's mean not at all; no :math:`\sigma \ge 0` is unstable. Leaves
  with fewer than ``min_spatial_size`` entries, or no field (scalars, 2-D
  fields with a side below 3, lines shorter than 4), pass unchanged. The
  solve runs in float64 for float64 leaves, else in float32 (cast back).

  Sharded leaves (``NamedSharding`` on an Explicit or an Auto mesh, 1-D or
  2-D) stay sharded through the solve: each axis of the field is
  transformed while it is local, and the data moves between the two with
  all-to-alls, never a gather of the leaf (:mod:`ladam_jax._sharded_fft`;
  ``docs/sharding.md``). The result has the leaf's sharding, for both
  ``method`` values.

  Put it before any optimizer: ``optax.chain(scale_by_laplacian_smoothing(
  sigma), optax.adam(lr))`` is LS-Adam (:func:`lsadam`), with
  ``optax.sgd`` LS-SGD (:func:`lssgd`).

  Args:
    sigma: the smoothing strength :math:`\sigma \ge 0` (0: identity): a
      number, a schedule (step count → sigma), a pytree of those matching
      the params (or a prefix of them), or a params function marked with
      :func:`ladam_jax.per_leaf`, exactly as LAdam's ``c2`` (e.g.
      :func:`ladam_jax.c2_by_path`). 0, as a number or an array, returns
      the gradient bit-for-bit.
    stencil: ``'9point'`` (default) or ``'5point'`` for 2-D fields.
    layout: how a leaf is seen as a field, as for :func:`ladam_jax.ladam`
      (``'flax'``, ``'torch'``, a :class:`ladam_jax.LaplacianLayout`, a
      pytree or callable of those).
    flatten: the paper's variant: every leaf is one periodic line, its
      entries in memory order, with the 1-D kernel ``[1, -2, 1]``
      (``stencil`` and ``layout`` are then unused).
    min_spatial_size: leaves with fewer entries pass unchanged.
    method: ``'fft'`` (default: ``jnp.fft``, O(n log n) per field) or
      ``'dft'`` (the same transform as dense matrix products, O(n·(h + w))
      per field of n = h·w entries).

  Returns:
    The corresponding :class:`optax.GradientTransformation`, with a
    :class:`ScaleByLaplacianSmoothingState`.

  Examples:
    >>> import jax.numpy as jnp, optax, ladam_jax
    >>> smooth = ladam_jax.scale_by_laplacian_smoothing(1.0)
    >>> g = {'w': jnp.zeros((8, 8)).at[3, 3].set(1.0)}
    >>> u, _ = smooth.update(g, smooth.init(g))
    >>> round(float(u['w'].sum()), 6)  # the mean is kept
    1.0
    >>> bool(u['w'].max() < 0.5)  # the spike is spread to its neighbours
    True
    >>> ls_adam = optax.chain(ladam_jax.scale_by_laplacian_smoothing(1.0),
    ...                       optax.adam(1e-3))

  References:
    Osher et al., `Laplacian Smoothing Gradient Descent
    <https://arxiv.org/abs/1806.06317>`_, 2018
  """
  smooth, check_params = _make_smoothing(sigma, stencil, layout, flatten,
                                         min_spatial_size, method)

  def init_fn(params):
    check_params(params)
    return ScaleByLaplacianSmoothingState(count=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    del params
    updates = smooth(updates, state.count)
    return updates, ScaleByLaplacianSmoothingState(
        count=optax.safe_increment(state.count))

  return optax.GradientTransformation(init_fn, update_fn)


def scale_by_implicit_laplacian_adam(
    sigma: Any = 1.0, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
    *, stencil: Stencil = "9point", layout: LayoutLike = "auto",
    flatten: bool = False, min_spatial_size: int = 16,
    method: SmoothingMethod = "fft") -> optax.GradientTransformation:
  r"""Rescales updates by Adam's second moment, smoothed implicitly.

  LAdam's idea (smooth the variance) with Laplacian smoothing's solve:

  .. math::
    \tilde v = \max\big((I - \sigma L)^{-1} \hat v,\ 0\big), \qquad
    u = \hat m / (\sqrt{\tilde v} + \epsilon),

  with :math:`\hat m, \hat v` Adam's bias-corrected moments. LAdam takes
  one explicit step :math:`\hat v + c_2 L \hat v` instead, stable only for
  :math:`c_2` below the stencil's bound and floored; the inverse of the
  M-matrix :math:`I - \sigma L` has non-negative entries, so
  :math:`\tilde v \ge 0` for every :math:`\sigma \ge 0` (the ``max``
  only removes FFT rounding) and the mean of :math:`\hat v` over each field
  is kept. With :func:`scale_by_laplacian_smoothing` (smooth the gradient)
  and :func:`ladam_jax.scale_by_laplacian_adam` (smooth the variance
  explicitly) the three can be compared on the same fields.

  Args:
    sigma: the smoothing strength of :math:`\hat v` (see
      :func:`scale_by_laplacian_smoothing`).
    b1: the decay rate of the first moment.
    b2: the decay rate of the second moment.
    eps: a term added to the denominator, outside the square root.
    stencil: the stencil of 2-D fields.
    layout: how each leaf is seen as a field.
    flatten: every leaf as one periodic line.
    min_spatial_size: leaves with fewer entries get Adam's step.
    method: ``'fft'`` or ``'dft'``, the transform of the solve.

  Returns:
    The corresponding :class:`optax.GradientTransformation`, with
    ``optax.ScaleByAdamState``.

  Examples:
    >>> import jax.numpy as jnp, optax, ladam_jax
    >>> tx = ladam_jax.scale_by_implicit_laplacian_adam(sigma=1.0)
    >>> adam = optax.scale_by_adam()
    >>> g = {'w': jnp.ones((8, 8))}
    >>> u, _ = tx.update(g, tx.init(g))
    >>> u_adam, _ = adam.update(g, adam.init(g))
    >>> bool(jnp.allclose(u['w'], u_adam['w']))  # a constant v is kept
    True

  References:
    Osher et al., `Laplacian Smoothing Gradient Descent
    <https://arxiv.org/abs/1806.06317>`_, 2018

    Partin, `LAdam <https://pypi.org/project/ladam/0.4.1/>`_, 2026

    Kingma et al., `Adam: A Method for Stochastic Optimization
    <https://arxiv.org/abs/1412.6980>`_, 2014
  """
  smooth, check_params = _make_smoothing(sigma, stencil, layout, flatten,
                                         min_spatial_size, method)
  _validation.check_adam_like(b1, b2, eps)
  adam = optax.scale_by_adam(b1, b2, eps)

  def init_fn(params):
    check_params(params)
    return adam.init(params)

  def update_fn(updates, state, params=None):
    del params
    mu = optax.tree.update_moment(updates, state.mu, b1, 1)
    nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
    count = optax.safe_increment(state.count)
    m_hat = _numerics.bias_correction(mu, b1, count)
    v_hat = _numerics.bias_correction(nu, b2, count)
    v_smooth = smooth(v_hat, state.count)
    updates = jax.tree.map(
        lambda m, v: m / (jnp.sqrt(jnp.maximum(v, 0)) + eps), m_hat, v_smooth)
    return updates, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

  return optax.GradientTransformation(init_fn, update_fn)


def lsadam(learning_rate: optax.ScalarOrSchedule = 1e-3, b1: float = 0.9,
           b2: float = 0.999, eps: float = 1e-8, *, sigma: Any = 1.0,
           stencil: Stencil = "9point", layout: LayoutLike = "auto",
           flatten: bool = False, min_spatial_size: int = 16,
           method: SmoothingMethod = "fft", target: SmoothingTarget = "grad",
           ) -> optax.GradientTransformation:
  r"""LS-Adam: Adam on Laplacian-smoothed gradients.

  ``target='grad'`` (default): ``optax.chain(scale_by_laplacian_smoothing(
  sigma, ...), optax.adam(learning_rate, b1, b2, eps))``: Adam's moments see
  :math:`(I - \sigma L)^{-1} g` instead of :math:`g`. ``target='nu'``:
  :func:`scale_by_implicit_laplacian_adam` times ``-learning_rate``: the
  gradient is left alone and Adam's second moment smoothed implicitly.

  Args:
    learning_rate: Adam's learning rate (a number or a schedule).
    b1: Adam's first-moment decay.
    b2: Adam's second-moment decay.
    eps: Adam's eps.
    sigma: the smoothing strength (see :func:`scale_by_laplacian_smoothing`,
      which also describes ``stencil``, ``layout``, ``flatten``,
      ``min_spatial_size`` and ``method``).
    stencil: the 2-D stencil.
    layout: the fields.
    flatten: the paper's flattened 1-D variant.
    min_spatial_size: smaller leaves are not smoothed.
    method: ``'fft'`` or ``'dft'``.
    target: ``'grad'`` (smooth the gradient) or ``'nu'`` (smooth Adam's
      second moment).

  Returns:
    The corresponding :class:`optax.GradientTransformation`.

  Examples:
    >>> import jax, jax.numpy as jnp, optax, ladam_jax
    >>> opt = ladam_jax.lsadam(learning_rate=0.1, sigma=1.0)
    >>> params = {'w': jnp.ones((8, 8))}
    >>> state = opt.init(params)
    >>> loss = lambda p: jnp.sum(p['w'] ** 2)
    >>> for _ in range(3):
    ...   grads = jax.grad(loss)(params)
    ...   updates, state = opt.update(grads, state, params)
    ...   params = optax.apply_updates(params, updates)
    >>> round(float(loss(params)), 2)  # from 64
    31.5

  References:
    Osher et al., `Laplacian Smoothing Gradient Descent
    <https://arxiv.org/abs/1806.06317>`_, 2018

    Kingma et al., `Adam: A Method for Stochastic Optimization
    <https://arxiv.org/abs/1412.6980>`_, 2014
  """
  _validation.check_choice("target", target, ("grad", "nu"))
  kw = dict(stencil=stencil, layout=layout, flatten=flatten,
            min_spatial_size=min_spatial_size, method=method)
  if target == "nu":
    return optax.chain(
        scale_by_implicit_laplacian_adam(sigma, b1, b2, eps, **kw),
        optax.scale_by_learning_rate(learning_rate))
  return optax.chain(scale_by_laplacian_smoothing(sigma, **kw),
                     optax.adam(learning_rate, b1, b2, eps))


def lssgd(learning_rate: optax.ScalarOrSchedule = 1e-2,
          momentum: Optional[float] = None, nesterov: bool = False, *,
          sigma: Any = 1.0, stencil: Stencil = "9point",
          layout: LayoutLike = "auto", flatten: bool = False,
          min_spatial_size: int = 16,
          method: SmoothingMethod = "fft") -> optax.GradientTransformation:
  r"""LS-SGD: SGD on Laplacian-smoothed gradients.

  ``optax.chain(scale_by_laplacian_smoothing(sigma, ...),
  optax.sgd(learning_rate, momentum, nesterov))``: the step is
  :math:`-\eta (I - \sigma L)^{-1} g` (with momentum, of the smoothed
  gradients). With ``flatten=True`` this is the paper's algorithm.

  Args:
    learning_rate: the learning rate (a number or a schedule).
    momentum: the heavy-ball momentum (None: plain SGD).
    nesterov: whether to use Nesterov momentum.
    sigma: how strongly the gradient is smoothed, :math:`\sigma \ge 0`.
    stencil: ``'9point'`` or ``'5point'``, for 2-D fields.
    layout: which 2-D field each leaf is.
    flatten: whether each leaf is one periodic line (the paper's variant).
    min_spatial_size: the smallest leaf that is smoothed, in entries.
    method: whether the solve uses ``jnp.fft`` or dense DFT matrices.

  Returns:
    The corresponding :class:`optax.GradientTransformation`.

  Examples:
    >>> import jax.numpy as jnp, ladam_jax
    >>> opt = ladam_jax.lssgd(0.1, momentum=0.9, sigma=1.0, flatten=True)
    >>> grads = {'w': jnp.ones(32)}
    >>> updates, _ = opt.update(grads, opt.init(grads))
    >>> [round(float(x), 6) for x in updates['w'][:3]]  # the mean is kept
    [-0.1, -0.1, -0.1]

  References:
    Osher et al., `Laplacian Smoothing Gradient Descent
    <https://arxiv.org/abs/1806.06317>`_, 2018
  """
  smoothing = scale_by_laplacian_smoothing(
      sigma, stencil=stencil, layout=layout, flatten=flatten,
      min_spatial_size=min_spatial_size, method=method)
  return optax.chain(smoothing, optax.sgd(learning_rate, momentum, nesterov))
