r"""LAdam: Adam whose second moment is smoothed by a periodic Laplacian.

:func:`scale_by_laplacian_adam` (the modes ``variance_lap``, ``update_lap``
and ``wave_variance``), :func:`add_weight_laplacian` (``weight_lap``) and the
aliases :func:`ladam` and :func:`ladamw` (``ladam.LAdam`` / ``ladam.LAdamW``).

References:
  Partin, *LAdam: Spatially-Aware Adaptive Optimization via
  Laplacian-Regularized Variance Estimates*, 2026; the PyTorch package
  ``ladam`` 0.4.1, https://pypi.org/project/ladam/0.4.1/ (MIT).
"""

from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import optax

from ladam_jax import _tree_specs
from ladam_jax import _c2
from ladam_jax import _chain
from ladam_jax import _coupling
from ladam_jax import _halo
from ladam_jax import _numerics
from ladam_jax import _pallas
from ladam_jax import _validation
from ladam_jax._types import Impl, LayoutLike, Mode, ScaleMode, Stencil
from ladam_jax._types import VarianceFloor

__all__ = [
    "ADAM_MODES", "ScaleByLaplacianAdamState", "scale_by_laplacian_adam",
    "AddWeightLaplacianState", "add_weight_laplacian", "ladam", "ladamw",
]

ADAM_MODES = ("variance_lap", "update_lap", "weight_lap", "wave_variance")


class ScaleByLaplacianAdamState(NamedTuple):
  """State of :func:`scale_by_laplacian_adam`.

  ``nu`` holds the raw (un-smoothed) second moment, as in the reference.
  ``nu_prev`` and ``wave_e0_sq`` are used by ``mode='wave_variance'`` only and
  are None otherwise, so the state of the other modes is exactly Adam's.
  """

  count: jax.Array  # shape=(), dtype=jnp.int32
  mu: optax.Updates
  nu: optax.Updates
  nu_prev: Optional[optax.Updates] = None
  wave_e0_sq: Optional[optax.Updates] = None


def scale_by_laplacian_adam(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    *,
    c2: Any = 1e-4,
    mode: ScaleMode = "variance_lap",
    stencil: Stencil = "9point",
    min_spatial_size: jax.typing.ArrayLike = 16,
    layout: LayoutLike = "auto",
    variance_floor: VarianceFloor = 0.0,
    mu_dtype: Optional[jax.typing.DTypeLike] = None,
    nu_dtype: Optional[jax.typing.DTypeLike] = None,
    wave_dt: jax.typing.ArrayLike = 0.1,
    wave_kappa: jax.typing.ArrayLike = 0.1,
    wave_E0: jax.typing.ArrayLike = 0.0,  # pylint: disable=invalid-name
    wave_damping: jax.typing.ArrayLike = 0.5,
    impl: Impl = None,
    allow_unstable_c2: bool = False,
    partition_specs: Any = None,
) -> optax.GradientTransformation:
  r"""Rescale updates by Adam whose second moment is Laplacian-smoothed (LAdam).

  Per leaf, at step :math:`t = 1, 2, \dots`, with
  :math:`\text{use\_lap} = (c_2 > 0) \wedge (\text{size} \ge
  \text{min\_spatial\_size})`:

  .. math::
    m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \\
    \hat m_t &= m_t / (1-\beta_1^t), \quad \hat v_t = v_t / (1-\beta_2^t).

  ``mode='variance_lap'`` (default): :math:`\tilde v = \max(\hat v_t + c_2
  L(\hat v_t), \text{floor})` where use_lap, else :math:`\hat v_t`; the update
  is :math:`\hat m_t / (\sqrt{\tilde v} + \epsilon)`. The floor is 0 by
  default: the reference's documented maths (and its experiment scripts),
  under which :math:`c_2 \to 0` tends to Adam (below the stability bound
  :math:`\hat v + c_2 L(\hat v) \ge 0`; the floor only guards rounding and
  ``allow_unstable_c2``). ``variance_floor='eps'`` is the clamp of the
  package's code (ladam 0.4.1), :math:`\max(\cdot, \epsilon)`: it shrinks
  the step wherever :math:`\hat v < \epsilon`, so it is not continuous at
  :math:`c_2 = 0`. The state keeps the raw :math:`v_t`.

  ``mode='update_lap'``: :math:`u = \hat m_t / (\sqrt{\hat v_t} + \epsilon)`,
  then :math:`u + c_2 L(u)` where use_lap.

  ``mode='wave_variance'``: :math:`v` follows a damped leapfrog wave equation
  instead of an EMA. Step 1: :math:`v = v_{prev} = \max(g^2, \epsilon)` and,
  when ``wave_E0 == 0``, :math:`E_0^2 = \text{mean}(g^2)` of the leaf. Later:
  :math:`a = c_2 L(v)\,[\text{use\_lap}] - \kappa (g^2 - E_0^2)`,
  :math:`v \leftarrow \max((2-d) v - (1-d) v_{prev} + \Delta t^2 a,
  \epsilon)`. Update :math:`\hat m_t / (\sqrt{v} + \epsilon)`.

  Numerical safety: half-precision leaves are smoothed in float32; an entry
  where :math:`v + c_2 L(v)` is not finite (its own or a neighbour's
  :math:`v` is inf or NaN, or the sums overflow) is left unsmoothed, so
  where Adam's update is finite this one is too (README, "Numerical
  safety").

  ``mode='weight_lap'`` smooths the already-stepped weights, which a scale-by
  transform cannot see: use :func:`ladam_jax.ladam` with that mode, or chain
  :func:`ladam_jax.add_weight_laplacian` after the learning rate.

  Examples:
    >>> import jax, jax.numpy as jnp, optax, ladam_jax
    >>> params = {'w': jnp.ones((32, 32)), 'b': jnp.zeros(32)}
    >>> tx = optax.chain(ladam_jax.scale_by_laplacian_adam(c2=1e-3),
    ...                  optax.scale_by_learning_rate(1e-3))
    >>> state = tx.init(params)
    >>> grads = jax.tree.map(jnp.ones_like, params)
    >>> updates, state = tx.update(grads, state)
    >>> round(float(updates['w'][0, 0]), 6)  # a constant field: L(v) = 0
    -0.001

  Args:
    b1: decay of the first moment, in [0, 1).
    b2: decay of the second moment, in [0, 1).
    eps: added to the denominator's square root, >= 0.
    c2: Laplacian coupling strength >= 0: a number, an Optax schedule, a pytree
      (prefix) of numbers/schedules, or a params function params -> such a
      pytree marked with :func:`ladam_jax.per_leaf` (as
      :func:`ladam_jax.auto_c2` and :func:`ladam_jax.c2_by_path` return
      it). A plain callable is a schedule, as in Optax. 0 gives Adam, and
      so does the limit ``c2 -> 0``.
    mode: ``'variance_lap'``, ``'update_lap'`` or ``'wave_variance'``.
    stencil: ``'9point'`` or ``'5point'``.
    min_spatial_size: leaves with fewer elements are never smoothed.
    layout: how a leaf is seen as a field: ``'auto'`` (default; see
      :func:`ladam_jax.auto_layout`), ``'flax'``, ``'torch'``, a
      :class:`ladam_jax.LaplacianLayout`, None, a pytree (prefix) of these or a
      callable params -> such a pytree.
    variance_floor: floor of the smoothed variance: a number >= 0 (default
      0.0, the reference's documented maths) or ``'eps'`` (the package's
      clamp at ``eps``, ladam 0.4.1's code).
    mu_dtype: optional dtype of the first moment.
    nu_dtype: optional dtype of the second moment (and of the wave mode's
      state), e.g. ``jnp.float32`` for bfloat16 parameters; the update keeps
      the gradient's dtype.
    wave_dt: time step of ``'wave_variance'``.
    wave_kappa: source strength of ``'wave_variance'``.
    wave_E0: background gradient level of ``'wave_variance'``; 0 = automatic.
    wave_damping: damping of ``'wave_variance'``, in [0, 1].
    impl: Laplacian implementation, ``'conv'``, ``'shift'``, ``'flat'``,
      ``'pallas'``, ``'pallas_interpret'`` (the Pallas kernels in Pallas'
      interpreter, on any backend: for tests) or None
      (:func:`ladam_jax.default_laplacian_impl`). With
      ``'pallas'`` on a GPU, ``mode='variance_lap'`` computes float32 leaves
      of more than 1024 elements whose field rows are contiguous in memory
      (Flax dense and conv kernels) in one fused Triton kernel.
    allow_unstable_c2: accept concrete c2 values above the stencil's
      stability bound (:func:`ladam_jax.stability_bound`: 3/16 for the 9-point
      stencil, 1/8 for the 5-point one on 2-D fields, 1/4 on 1-D leaves),
      which are otherwise refused here, and leave traced c2 values (schedules,
      ``inject_hyperparams``) unclipped; the reference allows any c2 >= 0.
    partition_specs: inside ``jax.shard_map``, how the params are split: the
      ``jax.sharding.PartitionSpec`` of each leaf as given to ``in_specs`` (a
      PartitionSpec, a pytree (prefix) of them with None for a whole leaf,
      or a callable params -> such a pytree). Each block then exchanges its
      edge rows and columns with its mesh neighbours and the update equals
      the global one (see ``docs/shard_map.md``). None (default): leaves
      whose type varies over a manual mesh axis are refused with an error
      naming this argument. Ignored outside ``shard_map``.

  Returns:
    A :class:`optax.GradientTransformation`.
  """
  _validation.check_choice("mode", mode, ADAM_MODES)
  if mode == "weight_lap":
    raise ValueError(
        "mode='weight_lap' smooths the stepped weights, which "
        "scale_by_laplacian_adam cannot see: use ladam_jax.ladam(..., "
        "mode='weight_lap') or chain ladam_jax.add_weight_laplacian after "
        "optax.scale_by_learning_rate. Allowed here: 'variance_lap', "
        "'update_lap', 'wave_variance'.")
  floor = _validation.check_adam_like(b1, b2, eps, variance_floor)
  _validation.check_non_negative("wave_dt", wave_dt)
  _validation.check_non_negative("wave_kappa", wave_kappa)
  _validation.check_non_negative("wave_E0", wave_E0)
  _validation.check_non_negative("wave_damping", wave_damping)
  value = _validation.concrete_value(wave_damping)
  if value is not None and value > 1:
    raise ValueError(f"`wave_damping` must be in [0, 1], got {wave_damping}.")
  _coupling.validate(c2=c2, stencil=stencil, layout=layout,
                     min_spatial_size=min_spatial_size, impl=impl,
                     allow_unstable_c2=allow_unstable_c2,
                     partition_specs=partition_specs)
  mu_dtype = jax.dtypes.canonicalize_dtype(mu_dtype) if mu_dtype else None
  nu_dtype = jax.dtypes.canonicalize_dtype(nu_dtype) if nu_dtype else None
  wave = mode == "wave_variance"
  bound_stencil = None if allow_unstable_c2 else stencil

  def init_fn(params):
    _coupling.check_params(
        params, c2=c2, layout=layout, min_spatial_size=min_spatial_size,
        bound_stencil=bound_stencil, partition_specs=partition_specs,
        what="scale_by_laplacian_adam")
    mu = optax.tree.zeros_like(params, dtype=mu_dtype)
    nu = optax.tree.zeros_like(params, dtype=nu_dtype)
    if not wave:
      return ScaleByLaplacianAdamState(jnp.zeros([], jnp.int32), mu, nu)
    e0 = jax.tree.map(
        lambda p: jnp.zeros([], nu_dtype or jnp.result_type(p)), params)
    return ScaleByLaplacianAdamState(
        jnp.zeros([], jnp.int32), mu, nu,
        optax.tree.zeros_like(params, dtype=nu_dtype), e0)

  def variance_lap(updates, state, leaves, count_inc):
    r""":math:`\hat m / (\sqrt{\max((v + c_2 L(v)) / (1-\beta_2^t),
    \text{floor})} + \epsilon)`, L reading the new state :math:`v`."""
    mu = optax.tree.update_moment(updates, state.mu, b1, 1)
    nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
    bc1 = _numerics.bias_correction_divisor(b1, count_inc)
    bc2 = _numerics.bias_correction_divisor(b2, count_inc)
    # Leaves that impl='pallas' computes whole in one fused kernel on a GPU;
    # the XLA maths below leaves them unsmoothed (and, under jit, dead).
    fused = (_fused_indices(updates, state.mu, state.nu, leaves)
             if impl == "pallas_interpret" or (impl == "pallas" and
                                               _pallas.on_gpu()) else [])
    xla_leaves = [leaf._replace(use_lap=False) if i in fused else leaf
                  for i, leaf in enumerate(leaves)]
    # m̂ = m / (1 - b1^t) is taken in `finish`, on the stacked m where small
    # leaves are stacked (one XLA kernel per leaf fewer on CPU).
    new_updates = _coupling.smooth_tree(
        nu, xla_leaves, stencil, impl, floor=floor, divisor=bc2,
        finish=lambda v, m: _numerics.divide(m, bc1) / (jnp.sqrt(v) + eps),
        others=(mu,))
    results = (new_updates, optax.tree.cast(mu, mu_dtype),
               optax.tree.cast_like(nu, state.nu))
    if fused:
      results = _fused_tree(
          fused, updates, state.mu, state.nu, leaves, results, b1=b1, b2=b2,
          eps=eps, floor=floor, stencil=stencil, bc2=bc2, bc1=bc1,
          interpret=impl == "pallas_interpret")
    new_updates, mu, nu = results
    return new_updates, ScaleByLaplacianAdamState(count_inc, mu, nu)

  def update_lap(updates, state, leaves, count_inc):
    """:math:`u + c_2 L(u)` of Adam's update :math:`u`."""
    mu = optax.tree.update_moment(updates, state.mu, b1, 1)
    nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
    mu_hat = _numerics.bias_correction(mu, b1, count_inc)
    nu_hat = _numerics.bias_correction(nu, b2, count_inc)
    new_updates = _coupling.smooth_tree(
        jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu_hat, nu_hat),
        leaves, stencil, impl)
    return new_updates, ScaleByLaplacianAdamState(
        count_inc, optax.tree.cast(mu, mu_dtype),
        optax.tree.cast_like(nu, state.nu))

  def wave_variance(updates, state, leaves, count_inc):
    """The damped leapfrog wave equation for :math:`v` (see above)."""
    mu = optax.tree.update_moment(updates, state.mu, b1, 1)
    treedef, outs = _coupling.map_leaves(
        lambda i, g, m, v, vp, e0: _wave_leaf(
            g, m, v, vp, e0, leaves[i], count_inc),
        updates, _numerics.bias_correction(mu, b1, count_inc), state.nu,
        state.nu_prev, state.wave_e0_sq)
    new_updates, nu, nu_prev, e0 = (
        treedef.unflatten(list(x)) for x in zip(*outs))
    return new_updates, ScaleByLaplacianAdamState(
        count_inc, optax.tree.cast(mu, mu_dtype), nu, nu_prev, e0)

  mode_update = {"variance_lap": variance_lap, "update_lap": update_lap,
                 "wave_variance": wave_variance}[mode]

  def update_fn(updates, state, params=None):
    del params
    leaves = _coupling.plan(
        updates, state.count, c2=c2, layout=layout,
        min_spatial_size=min_spatial_size, bound_stencil=bound_stencil,
        partition_specs=partition_specs, what="scale_by_laplacian_adam")
    new_updates, new_state = mode_update(
        updates, state, leaves, optax.safe_increment(state.count))
    # The gradient's dtype, also where nu_dtype is wider.
    return optax.tree.cast_like(new_updates, updates), new_state

  def _wave_leaf(g, m_hat, v, v_prev, e0_state, leaf, count_inc):
    g2 = _numerics.abs_sq(g)
    state_dtype = v.dtype  # complex for complex leaves; v is real-valued
    v, v_prev = jnp.real(v), jnp.real(v_prev)
    first = count_inc == 1
    e0_auto = jnp.where(first, _halo.finite_mean(g2, leaf.halo),
                        e0_state).astype(e0_state.dtype)
    e0_sq = jnp.where(jnp.asarray(wave_E0) != 0,
                      jnp.asarray(wave_E0 * wave_E0, g2.dtype),
                      jnp.real(e0_auto))
    acc = -(wave_kappa * (g2 - e0_sq))
    term = _coupling.coupled_term(v, leaf, stencil, impl)
    if term is not None:
      acc = term + acc
    d = wave_damping
    wave = (2 - d) * v - (1 - d) * v_prev + (wave_dt * wave_dt) * acc
    # Where the leapfrog overflows from finite values, v saturates at the
    # dtype's largest value instead of turning inf or NaN for good.
    big = jnp.finfo(state_dtype).max
    v_next = jnp.where(jnp.isnan(wave), big, jnp.clip(wave, eps, big))
    # Where g² or v is not finite, v follows Adam's second moment: v + g²
    # (inf stays inf, so the update there is 0; NaN stays NaN). coupled_term
    # is 0 wherever a neighbour is not finite (those entries are unsmoothed)
    # and the automatic E0 is the mean over the finite entries, so the rest
    # of the leaf is unaffected.
    v_next = jnp.where(jnp.isfinite(v) & jnp.isfinite(g2), v_next, v + g2)
    v_first = jnp.maximum(g2, eps)
    new_v = jnp.where(first, v_first, v_next).astype(v.dtype)
    update = m_hat / (jnp.sqrt(new_v) + eps)
    new_prev = jnp.where(first, v_first, v).astype(state_dtype)
    new_v = new_v.astype(state_dtype)
    return update, new_v, new_prev, e0_auto

  return optax.GradientTransformation(init_fn, update_fn)


def _fused_indices(updates: Any, mu: Any, nu: Any, leaves) -> list[int]:
  """Leaves that ``impl='pallas'`` computes whole in the fused kernel.

  Coupled leaves that the kernel takes (:func:`ladam_jax._pallas.qualifies`:
  float32 gradient and moments, field rows contiguous in memory) and larger
  than ``_coupling.BATCH_MAX_SIZE``: smaller ones are cheaper stacked, as
  ``'flat'`` smooths them.
  """
  return [i for i, (g, m, v, leaf) in enumerate(zip(
      jax.tree.leaves(updates), jax.tree.leaves(mu), jax.tree.leaves(nu),
      leaves))
          if _coupling.needs_laplacian(leaf) and leaf.halo is None
          and g.size > _coupling.BATCH_MAX_SIZE
          and _pallas.qualifies(tuple(g.shape), leaf.spec, g.dtype, m.dtype,
                                v.dtype)]


def _fused_tree(indices, updates: Any, mu: Any, nu: Any, leaves,
                results: tuple[Any, Any, Any], **kwargs):
  """``results = (u, m_t, v_t)`` trees with the leaves ``indices`` computed
  by :func:`ladam_jax._pallas.fused_adam_leaf` (``kwargs`` are its own)."""
  g_l, m_l, v_l = (jax.tree.leaves(t) for t in (updates, mu, nu))
  flat = [jax.tree.flatten(t) for t in results]
  outs = [list(leaves_) for leaves_, _ in flat]
  for i in indices:
    leaf = leaves[i]
    fused = _pallas.fused_adam_leaf(
        g_l[i], m_l[i], v_l[i], leaf.spec,
        c2=_c2.c2_as(leaf.c2, g_l[i].dtype), use_lap=leaf.use_lap, **kwargs)
    for out, x in zip(outs, fused):
      out[i] = x
  return tuple(treedef.unflatten(out) for out, (_, treedef) in zip(outs, flat))


class AddWeightLaplacianState(NamedTuple):
  """State of :func:`add_weight_laplacian` (the step count, for schedules)."""

  count: jax.Array  # shape=(), dtype=jnp.int32


def add_weight_laplacian(
    c2: Any = 1e-4,
    *,
    stencil: Stencil = "9point",
    min_spatial_size: jax.typing.ArrayLike = 16,
    layout: LayoutLike = "auto",
    impl: Impl = None,
    allow_unstable_c2: bool = False,
    partition_specs: Any = None,
) -> optax.GradientTransformation:
  r"""Adds the Laplacian of the stepped weights: LAdam's ``weight_lap`` mode.

  Placed *after* the learning rate, it turns the incoming update :math:`u`
  into :math:`u + c_2 L(p + u)` on coupled leaves, so that applying it gives
  :math:`p' + c_2 L(p')` with :math:`p' = p + u`: a diffusion step on the
  weights after the optimizer step, as the reference's ``weight_lap`` does.

  Examples:
    >>> import jax.numpy as jnp, optax, ladam_jax
    >>> tx = optax.chain(optax.scale_by_adam(), optax.scale_by_learning_rate(1e-3),
    ...                  ladam_jax.add_weight_laplacian(c2=1e-4))
    >>> params = {'w': jnp.ones((8, 8))}
    >>> state = tx.init(params)
    >>> updates, state = tx.update(params, state, params)

  Args:
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
      (see :func:`ladam_jax.scale_by_laplacian_adam`).

  Returns:
    A :class:`optax.GradientTransformation` that needs ``params``.
  """
  _coupling.validate(c2=c2, stencil=stencil, layout=layout,
                     min_spatial_size=min_spatial_size, impl=impl,
                     allow_unstable_c2=allow_unstable_c2,
                     partition_specs=partition_specs)
  bound_stencil = None if allow_unstable_c2 else stencil

  def init_fn(params):
    _coupling.check_params(
        params, c2=c2, layout=layout, min_spatial_size=min_spatial_size,
        bound_stencil=bound_stencil, partition_specs=partition_specs,
        what="add_weight_laplacian")
    return AddWeightLaplacianState(jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError(
          "add_weight_laplacian smooths the stepped weights and needs them: "
          "call update(updates, state, params).")
    leaves = _coupling.plan(
        updates, state.count, c2=c2, layout=layout,
        min_spatial_size=min_spatial_size, bound_stencil=bound_stencil,
        partition_specs=partition_specs, what="add_weight_laplacian")

    def leaf_fn(i, u, p):
      term = _coupling.coupled_term(p + u, leaves[i], stencil, impl)
      return u if term is None else (u + term).astype(u.dtype)

    treedef, outs = _coupling.map_leaves(leaf_fn, updates, params)
    return treedef.unflatten(outs), AddWeightLaplacianState(
        optax.safe_increment(state.count))

  return optax.GradientTransformation(init_fn, update_fn)


def _adam_chain(learning_rate, weight_decay, mask, *, b1, b2, eps, c2, mode,
                stencil, min_spatial_size, layout, variance_floor, mu_dtype,
                impl, wave, allow_unstable_c2=False, nu_dtype=None,
                partition_specs=None):
  _chain.check_learning_rate(learning_rate)
  _validation.check_choice("mode", mode, ADAM_MODES)
  scale_mode = "variance_lap" if mode == "weight_lap" else mode
  parts = [
      scale_by_laplacian_adam(
          b1, b2, eps,
          # In weight_lap mode the scale-by part is plain Adam.
          c2=0.0 if mode == "weight_lap" else c2,
          mode=scale_mode, stencil=stencil, min_spatial_size=min_spatial_size,
          layout=layout, variance_floor=variance_floor, mu_dtype=mu_dtype,
          nu_dtype=nu_dtype, impl=impl, allow_unstable_c2=allow_unstable_c2,
          partition_specs=partition_specs, **wave),
  ]
  if weight_decay is not None:
    parts.append(optax.add_decayed_weights(
        weight_decay, _tree_specs.as_mask(mask)))
  parts.append(optax.scale_by_learning_rate(learning_rate))
  if mode == "weight_lap":
    parts.append(add_weight_laplacian(
        c2, stencil=stencil, min_spatial_size=min_spatial_size, layout=layout,
        impl=impl, allow_unstable_c2=allow_unstable_c2,
        partition_specs=partition_specs))
  return optax.chain(*parts)


def ladam(
    learning_rate: optax.ScalarOrSchedule = 1e-3,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    *,
    c2: Any = 1e-4,
    mode: Mode = "variance_lap",
    stencil: Stencil = "9point",
    min_spatial_size: jax.typing.ArrayLike = 16,
    layout: LayoutLike = "auto",
    variance_floor: VarianceFloor = 0.0,
    mu_dtype: Optional[jax.typing.DTypeLike] = None,
    nu_dtype: Optional[jax.typing.DTypeLike] = None,
    wave_dt: jax.typing.ArrayLike = 0.1,
    wave_kappa: jax.typing.ArrayLike = 0.1,
    wave_E0: jax.typing.ArrayLike = 0.0,  # pylint: disable=invalid-name
    wave_damping: jax.typing.ArrayLike = 0.5,
    impl: Impl = None,
    allow_unstable_c2: bool = False,
    partition_specs: Any = None,
) -> optax.GradientTransformation:
  r"""LAdam: Adam with a Laplacian-smoothed second moment (``ladam.LAdam``).

  The update of :func:`ladam_jax.scale_by_laplacian_adam` times
  ``-learning_rate``; with ``mode='weight_lap'``, a plain Adam step followed by
  the diffusion :math:`p \leftarrow p + c_2 L(p)` of the stepped weights
  (:func:`ladam_jax.add_weight_laplacian`). ``c2=0`` is ``optax.adam``.

  Examples:
    >>> import jax, jax.numpy as jnp, optax, ladam_jax
    >>> def loss(p):
    ...   return jnp.sum((p['w'] - 1.0) ** 2)
    >>> params = {'w': jnp.zeros((16, 16))}
    >>> opt = ladam_jax.ladam(learning_rate=1e-1, c2=1e-4)
    >>> state = opt.init(params)
    >>> for _ in range(100):
    ...   grads = jax.grad(loss)(params)
    ...   updates, state = opt.update(grads, state, params)
    ...   params = optax.apply_updates(params, updates)
    >>> bool(loss(params) < 1e-2)
    True

  Args:
    learning_rate: a float >= 0 or an Optax schedule.
    b1: decay of the first moment, in [0, 1).
    b2: decay of the second moment, in [0, 1).
    eps: added to the denominator's square root, >= 0.
    c2: coupling strength >= 0: a number, a schedule, a pytree
      (prefix) of them, or a params function marked with
      :func:`ladam_jax.per_leaf`.
    mode: ``'variance_lap'`` (default), ``'update_lap'``, ``'weight_lap'`` or
      ``'wave_variance'``.
    stencil: ``'9point'`` (default) or ``'5point'``.
    min_spatial_size: leaves with fewer elements are never smoothed.
    layout: field layout(s): ``'auto'`` (default: the reference's field for each
      Equinox layer, ``'flax'`` elsewhere), ``'flax'``, ``'torch'``, a
      :class:`ladam_jax.LaplacianLayout`, None, a pytree or a params callable.
    variance_floor: floor of the smoothed variance: a number >= 0 (default
      0.0: the reference's documented maths and experiment scripts, and
      ``c2 -> 0`` tends to ``optax.adam``) or ``'eps'`` (the package's clamp
      at ``eps``, as ladam 0.4.1's code).
    mu_dtype: optional dtype of the first moment.
    nu_dtype: optional dtype of the second moment (e.g. float32 for
      bfloat16 parameters).
    wave_dt: time step of ``'wave_variance'``.
    wave_kappa: source strength of ``'wave_variance'``.
    wave_E0: background gradient level of ``'wave_variance'`` (0 = auto).
    wave_damping: damping of ``'wave_variance'``.
    impl: Laplacian implementation, ``'conv'``, ``'shift'``, ``'flat'``,
      ``'pallas'`` (a fused Triton kernel on GPU) or None.
    allow_unstable_c2: accept c2 above :func:`ladam_jax.stability_bound`
      (see :func:`ladam_jax.scale_by_laplacian_adam`).
    partition_specs: inside ``jax.shard_map``, the params' PartitionSpecs
      as given to ``in_specs`` (see
      :func:`ladam_jax.scale_by_laplacian_adam`; ``docs/shard_map.md``).

  Returns:
    The optimizer as an :class:`optax.GradientTransformation`.

  References:
    Partin, LAdam, 2026 (PyPI ``ladam`` 0.4.1).
  """
  return _adam_chain(
      learning_rate, None, None, b1=b1, b2=b2, eps=eps, c2=c2, mode=mode,
      stencil=stencil, min_spatial_size=min_spatial_size, layout=layout,
      variance_floor=variance_floor, mu_dtype=mu_dtype, nu_dtype=nu_dtype,
      impl=impl,
      allow_unstable_c2=allow_unstable_c2, partition_specs=partition_specs,
      wave=_wave_kwargs(wave_dt, wave_kappa, wave_E0, wave_damping))


def _wave_kwargs(wave_dt, wave_kappa, wave_E0, wave_damping):  # pylint: disable=invalid-name
  return dict(wave_dt=wave_dt, wave_kappa=wave_kappa, wave_E0=wave_E0,
              wave_damping=wave_damping)


def ladamw(
    learning_rate: optax.ScalarOrSchedule = 1e-3,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    weight_decay: jax.typing.ArrayLike = 1e-4,
    mask: Optional[Union[Any, Callable[[optax.Params], Any]]] = None,
    *,
    c2: Any = 1e-4,
    mode: Mode = "variance_lap",
    stencil: Stencil = "9point",
    min_spatial_size: jax.typing.ArrayLike = 16,
    layout: LayoutLike = "auto",
    variance_floor: VarianceFloor = 0.0,
    mu_dtype: Optional[jax.typing.DTypeLike] = None,
    nu_dtype: Optional[jax.typing.DTypeLike] = None,
    wave_dt: jax.typing.ArrayLike = 0.1,
    wave_kappa: jax.typing.ArrayLike = 0.1,
    wave_E0: jax.typing.ArrayLike = 0.0,  # pylint: disable=invalid-name
    wave_damping: jax.typing.ArrayLike = 0.5,
    impl: Impl = None,
    allow_unstable_c2: bool = False,
    partition_specs: Any = None,
) -> optax.GradientTransformation:
  r"""LAdamW: :func:`ladam` with decoupled weight decay (``ladam.LAdamW``).

  The reference first decays the weights, :math:`p \leftarrow p(1 -
  \eta\lambda)`, then takes the LAdam step; here that is
  ``optax.add_decayed_weights(weight_decay, mask)`` before the learning rate,
  as in ``optax.adamw``.

  Examples:
    >>> import jax.numpy as jnp, optax, ladam_jax
    >>> schedule = optax.warmup_cosine_decay_schedule(0.0, 1e-3, 10, 100)
    >>> opt = optax.chain(optax.clip_by_global_norm(1.0),
    ...                   ladam_jax.ladamw(schedule, weight_decay=1e-2))
    >>> state = opt.init({'w': jnp.ones((8, 8))})

  Args:
    learning_rate: a float >= 0 or an Optax schedule.
    b1: decay of the first moment, in [0, 1).
    b2: decay of the second moment, in [0, 1).
    eps: added to the denominator's square root, >= 0.
    weight_decay: decoupled weight decay rate.
    mask: which leaves are decayed (a pytree of bools or a params callable), as
      in ``optax.adamw``.
    c2: coupling strength >= 0: a number, a schedule, a pytree
      (prefix) of them, or a params function marked with
      :func:`ladam_jax.per_leaf`.
    mode: as in :func:`ladam`.
    stencil: ``'9point'`` or ``'5point'``.
    min_spatial_size: leaves with fewer elements are never smoothed.
    layout: field layout(s), as in :func:`ladam`.
    variance_floor: floor of the smoothed variance: a number >= 0 (default
      0.0) or ``'eps'`` (the package's clamp), as in :func:`ladam`.
    mu_dtype: optional dtype of the first moment.
    nu_dtype: optional dtype of the second moment (e.g. float32 for
      bfloat16 parameters).
    wave_dt: time step of ``'wave_variance'``.
    wave_kappa: source strength of ``'wave_variance'``.
    wave_E0: background gradient level of ``'wave_variance'`` (0 = auto).
    wave_damping: damping of ``'wave_variance'``.
    impl: Laplacian implementation, ``'conv'``, ``'shift'``, ``'flat'``,
      ``'pallas'`` (a fused Triton kernel on GPU) or None.
    allow_unstable_c2: accept c2 above :func:`ladam_jax.stability_bound`
      (see :func:`ladam_jax.scale_by_laplacian_adam`).
    partition_specs: inside ``jax.shard_map``, the params' PartitionSpecs
      as given to ``in_specs`` (see
      :func:`ladam_jax.scale_by_laplacian_adam`; ``docs/shard_map.md``).

  Returns:
    The optimizer as an :class:`optax.GradientTransformation`.
  """
  _validation.check_non_negative("weight_decay", weight_decay)
  return _adam_chain(
      learning_rate, weight_decay, mask, b1=b1, b2=b2, eps=eps, c2=c2,
      mode=mode, stencil=stencil, min_spatial_size=min_spatial_size,
      layout=layout, variance_floor=variance_floor, mu_dtype=mu_dtype,
      nu_dtype=nu_dtype, impl=impl, allow_unstable_c2=allow_unstable_c2,
      partition_specs=partition_specs,
      wave=_wave_kwargs(wave_dt, wave_kappa, wave_E0, wave_damping))
