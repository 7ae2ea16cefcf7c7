r"""LAdam: Adam whose second moment is smoothed by a periodic Laplacian.

:func:`scale_by_laplacian_adam` is the reference's default mode,
``variance_lap``. The aliases :func:`ladam` and :func:`ladamw`
(``ladam.LAdam`` / ``ladam.LAdamW``) build its other modes from one
transform each: ``update_lap`` chains :func:`ladam_jax.add_update_laplacian`
after Adam, ``weight_lap`` chains :func:`ladam_jax.add_weight_laplacian`
after the learning rate, ``wave_variance`` is
:func:`ladam_jax.scale_by_wave_variance`.

References:
  Partin, `LAdam: Spatially-Aware Adaptive Optimization via
  Laplacian-Regularized Variance Estimates
  <https://pypi.org/project/ladam/0.4.1/>`_, 2026 (the PyTorch package
  ``ladam`` 0.4.1, MIT).
"""

from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import optax

from ladam_jax import _add_laplacian
from ladam_jax import _accumulators
from ladam_jax import _alias
from ladam_jax import _c2
from ladam_jax import _coupling
from ladam_jax import _numerics
from ladam_jax import _pallas
from ladam_jax import _sharded_laplacian
from ladam_jax import _validation
from ladam_jax import _wave
from ladam_jax._types import Mode, VarianceFloor

__all__ = ["MODES", "ScaleByLaplacianAdamState", "scale_by_laplacian_adam",
           "ladam", "ladamw"]

#: The reference's modes, as :func:`ladam` takes them.
MODES = ("variance_lap", "update_lap", "weight_lap", "wave_variance")


class ScaleByLaplacianAdamState(NamedTuple):
  """State of :func:`scale_by_laplacian_adam`: exactly Adam's.

  ``nu`` holds the raw (un-smoothed) second moment, as in the reference.
  """

  count: jax.Array  # shape=(), dtype=jnp.int32
  mu: optax.Updates
  nu: optax.Updates


def scale_by_laplacian_adam(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    *,
    c2: Any = 1e-4,
    variance_floor: VarianceFloor = 0.0,
    mu_dtype: Optional[jax.typing.DTypeLike] = None,
    nu_dtype: Optional[jax.typing.DTypeLike] = None,
    **coupling: _coupling.Coupling,
) -> optax.GradientTransformation:
  r"""Rescale updates by Adam whose second moment is Laplacian-smoothed (LAdam).

  Per leaf, at step :math:`t = 1, 2, \dots`, with
  :math:`\text{use\_lap} = (c_2 > 0) \wedge (\text{size} \ge
  \text{min\_spatial\_size})`:

  .. math::
    m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \\
    \hat m_t &= m_t / (1-\beta_1^t), \quad \hat v_t = v_t / (1-\beta_2^t),
    \\
    \tilde v &= \max(\hat v_t + c_2 L(\hat v_t), \text{floor})
      \text{ where use\_lap, else } \hat v_t, \quad
    u = \hat m_t / (\sqrt{\tilde v} + \epsilon).

  This is the reference's ``mode='variance_lap'``. The floor is 0 by
  default: the reference's documented maths (and its experiment scripts),
  under which :math:`c_2 \to 0` tends to Adam (below the stability bound
  :math:`\hat v + c_2 L(\hat v) \ge 0`; the floor only guards rounding and
  ``allow_unstable_c2``). ``variance_floor='eps'`` is the clamp of the
  package's code (ladam 0.4.1), :math:`\max(\cdot, \epsilon)`: it shrinks
  the step wherever :math:`\hat v < \epsilon`, so it is not continuous at
  :math:`c_2 = 0`. The state keeps the raw :math:`v_t`. The bias
  corrections are accurate to float rounding (:math:`1 - \beta^t` from a
  double-precision :math:`\log\beta`, as the reference's Python floats).

  Numerical safety: half-precision leaves are smoothed in float32; an entry
  where :math:`v + c_2 L(v)` is not finite (its own or a neighbour's
  :math:`v` is inf or NaN, or the sums overflow) is left unsmoothed, so
  where Adam's update is finite this one is too (:doc:`numerical-safety`).

  Args:
    b1: decay of the first moment, in [0, 1).
    b2: decay of the second moment, in [0, 1).
    eps: added to the denominator's square root, >= 0.
    c2: Laplacian coupling strength >= 0: a number, an Optax schedule, a
      pytree (prefix) of them, or a params function marked with
      :func:`ladam_jax.per_leaf` (:doc:`c2-and-layouts`). 0 gives Adam, and
      so does the limit ``c2 -> 0``.
    variance_floor: floor of the smoothed variance: a number >= 0 (default
      0.0, the reference's documented maths) or ``'eps'`` (the package's
      clamp at ``eps``, ladam 0.4.1's code).
    mu_dtype: optional dtype of the first moment.
    nu_dtype: optional dtype of the second moment, e.g. ``jnp.float32`` for
      bfloat16 parameters; the update keeps the gradient's dtype.
    **coupling: how c2 couples the leaves, :class:`ladam_jax.LaplacianKwargs`
      (``stencil``, ``layout``, ``partition_specs``, ...).

  Returns:
    A :class:`optax.GradientTransformation` whose state is
    :class:`ScaleByLaplacianAdamState`.

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

  References:
    Partin, `LAdam <https://pypi.org/project/ladam/0.4.1/>`_, 2026.
  """
  floor = _validation.check_adam_like(b1, b2, eps, variance_floor)
  laplacian = _coupling.config("scale_by_laplacian_adam", c2, **coupling)
  init_fn = _accumulators.adam_moments_init(
      laplacian, ScaleByLaplacianAdamState, mu_dtype, nu_dtype)
  mu_dtype = _validation.canonical_dtype(mu_dtype)

  def update_fn(updates, state, params=None):
    del params
    leaves = laplacian.plan(updates, state.count)
    count_inc = optax.safe_increment(state.count)
    mu = optax.tree.update_moment(updates, state.mu, b1, 1)
    nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
    bc1 = _numerics.bias_correction_divisor(b1, count_inc)
    bc2 = _numerics.bias_correction_divisor(b2, count_inc)
    # Leaves the fused Pallas kernel computes whole; the XLA maths below
    # leaves them unsmoothed (and, under jit, dead).
    fused = _fused_indices(updates, state.mu, state.nu, leaves,
                           laplacian.impl)
    xla_leaves = [leaf._replace(use_lap=False) if i in fused else leaf
                  for i, leaf in enumerate(leaves)]
    # L reads the new state v (L is linear: (v + c2 L(v)) / (1 - b2^t));
    # m / (1 - b1^t) is taken in `finish`, on the stacked m where small
    # leaves are stacked.
    results = (laplacian.smooth(
        nu, xla_leaves, floor=floor, divisor=bc2, others=(mu,),
        finish=lambda v, m: _numerics.divide(m, bc1) / (jnp.sqrt(v) + eps)),
               optax.tree.cast(mu, mu_dtype),
               optax.tree.cast_like(nu, state.nu))
    if fused:
      results = _fused_tree(
          fused, updates, state.mu, state.nu, leaves, results, b1=b1, b2=b2,
          eps=eps, floor=floor, stencil=laplacian.stencil, bc2=bc2, bc1=bc1,
          interpret=laplacian.impl == "pallas_interpret")
    new_updates, mu, nu = results
    # The gradient's dtype, also where nu_dtype is wider.
    return optax.tree.cast_like(new_updates, updates), (
        ScaleByLaplacianAdamState(count_inc, mu, nu))

  return optax.GradientTransformation(init_fn, update_fn)


def _fused_indices(updates: Any, mu: Any, nu: Any, leaves,
                   impl: str | None) -> list[int]:
  """Leaves that the fused Pallas kernel computes whole.

  Only where the kernel was chosen (``'pallas'`` on a GPU, or its
  interpreter): coupled leaves that it takes
  (:func:`ladam_jax._pallas.qualifies`: float32 gradient and moments, field
  rows contiguous in memory) and larger than ``_coupling.BATCH_MAX_SIZE``
  (smaller ones are cheaper stacked, as ``'flat'`` smooths them).
  """
  if not (impl == "pallas_interpret" or (impl == "pallas" and
                                         _pallas.on_gpu())):
    return []
  return [i for i, (g, m, v, leaf) in enumerate(zip(
      jax.tree.leaves(updates), jax.tree.leaves(mu), jax.tree.leaves(nu),
      leaves))
          if _coupling.needs_laplacian(leaf)
          and _sharded_laplacian.route(g, leaf.halo) == "whole"
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


def _laplacian_adam(what, learning_rate, weight_decay, mask, *, b1, b2, eps,
                    c2, mode, variance_floor, mu_dtype, nu_dtype, wave,
                    **coupling) -> optax.GradientTransformation:
  """The chain of :func:`ladam` / :func:`ladamw` (``what``) for one mode."""
  coupling = _coupling.check_names(what, coupling)
  _alias.check_learning_rate(learning_rate)
  _validation.check_choice("mode", mode, MODES)
  _validation.check_adam_like(b1, b2, eps, variance_floor)
  adam = dict(variance_floor=variance_floor, mu_dtype=mu_dtype,
              nu_dtype=nu_dtype, **coupling)
  if mode == "variance_lap":
    parts = [scale_by_laplacian_adam(b1, b2, eps, c2=c2, **adam)]
  elif mode == "wave_variance":
    parts = [_wave.scale_by_wave_variance(
        b1, eps, c2=c2, mu_dtype=mu_dtype, nu_dtype=nu_dtype, **wave,
        **coupling)]
  else:  # Adam (c2 = 0), then the update's or the weights' diffusion
    parts = [scale_by_laplacian_adam(b1, b2, eps, c2=0.0, **adam)]
    if mode == "update_lap":
      parts.append(_add_laplacian.add_update_laplacian(c2, **coupling))
  after_lr = ([_add_laplacian.add_weight_laplacian(c2, **coupling)]
              if mode == "weight_lap" else [])
  return _alias.with_decay_and_lr(parts, learning_rate, weight_decay, mask,
                                  after_lr=after_lr)


def ladam(
    learning_rate: optax.ScalarOrSchedule = 1e-3,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    *,
    c2: Any = 1e-4,
    mode: Mode = "variance_lap",
    variance_floor: VarianceFloor = 0.0,
    mu_dtype: Optional[jax.typing.DTypeLike] = None,
    nu_dtype: Optional[jax.typing.DTypeLike] = None,
    wave_dt: jax.typing.ArrayLike = 0.1,
    wave_kappa: jax.typing.ArrayLike = 0.1,
    wave_E0: jax.typing.ArrayLike = 0.0,  # pylint: disable=invalid-name
    wave_damping: jax.typing.ArrayLike = 0.5,
    **coupling: _coupling.Coupling,
) -> optax.GradientTransformation:
  r"""LAdam: Adam with a Laplacian-smoothed second moment (``ladam.LAdam``).

  ``mode`` picks the reference's mode, each one chain of this package's
  transforms before ``optax.scale_by_learning_rate(learning_rate)``:

  - ``'variance_lap'`` (default): :func:`scale_by_laplacian_adam`;
  - ``'update_lap'``: Adam's update :math:`u`, then :math:`u + c_2 L(u)`
    (:func:`ladam_jax.add_update_laplacian`);
  - ``'weight_lap'``: an Adam step, then the diffusion
    :math:`p \leftarrow p + c_2 L(p)` of the stepped weights
    (:func:`ladam_jax.add_weight_laplacian`, after the learning rate);
  - ``'wave_variance'``: :func:`ladam_jax.scale_by_wave_variance`.

  ``c2=0`` is ``optax.adam`` in every mode but ``'wave_variance'``.

  Args:
    learning_rate: a float >= 0 or an Optax schedule.
    b1: decay of the first moment, in [0, 1).
    b2: decay of the second moment, in [0, 1).
    eps: added to the denominator's square root, >= 0.
    c2: coupling strength >= 0: a number, a schedule, a pytree (prefix) of
      them, or a params function marked with :func:`ladam_jax.per_leaf`
      (:doc:`c2-and-layouts`).
    mode: ``'variance_lap'`` (default), ``'update_lap'``, ``'weight_lap'``
      or ``'wave_variance'``.
    variance_floor: floor of the smoothed variance: a number >= 0 (default
      0.0: the reference's documented maths and experiment scripts, and
      ``c2 -> 0`` tends to ``optax.adam``) or ``'eps'`` (the package's
      clamp at ``eps``, as ladam 0.4.1's code).
    mu_dtype: optional dtype of the first moment.
    nu_dtype: optional dtype of the second moment (e.g. float32 for
      bfloat16 parameters).
    wave_dt: time step of ``'wave_variance'``.
    wave_kappa: source strength of ``'wave_variance'``.
    wave_E0: background gradient level of ``'wave_variance'`` (0 = auto).
    wave_damping: damping of ``'wave_variance'``, in [0, 1].
    **coupling: how c2 couples the leaves, :class:`ladam_jax.LaplacianKwargs`
      (``stencil``, ``layout``, ``partition_specs``, ...).

  Returns:
    An ``optax.chain`` of the mode's transforms and
    ``optax.scale_by_learning_rate(learning_rate)``.

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

  References:
    Partin, `LAdam <https://pypi.org/project/ladam/0.4.1/>`_, 2026.
  """
  return _laplacian_adam(
      "ladam", learning_rate, None, None, b1=b1, b2=b2, eps=eps, c2=c2,
      mode=mode,
      variance_floor=variance_floor, mu_dtype=mu_dtype, nu_dtype=nu_dtype,
      wave=dict(wave_dt=wave_dt, wave_kappa=wave_kappa, wave_E0=wave_E0,
                wave_damping=wave_damping),
      **coupling)


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
    variance_floor: VarianceFloor = 0.0,
    mu_dtype: Optional[jax.typing.DTypeLike] = None,
    nu_dtype: Optional[jax.typing.DTypeLike] = None,
    wave_dt: jax.typing.ArrayLike = 0.1,
    wave_kappa: jax.typing.ArrayLike = 0.1,
    wave_E0: jax.typing.ArrayLike = 0.0,  # pylint: disable=invalid-name
    wave_damping: jax.typing.ArrayLike = 0.5,
    **coupling: _coupling.Coupling,
) -> optax.GradientTransformation:
  r"""LAdamW: :func:`ladam` with decoupled weight decay (``ladam.LAdamW``).

  The reference first decays the weights, :math:`p \leftarrow p(1 -
  \eta\lambda)`, then takes the LAdam step; here that is
  ``optax.add_decayed_weights(weight_decay, mask)`` before the learning
  rate, as in ``optax.adamw``.

  Args:
    learning_rate: a float >= 0 or an Optax schedule.
    b1: decay of the first moment, in [0, 1).
    b2: decay of the second moment, in [0, 1).
    eps: added to the denominator's square root, >= 0.
    weight_decay: decoupled weight decay rate >= 0.
    mask: which leaves are decayed (a pytree of bools or a params callable),
      as in ``optax.adamw``.
    c2: coupling strength >= 0, as in :func:`ladam`.
    mode: the reference's mode, as in :func:`ladam`.
    variance_floor: floor of the smoothed variance: a number >= 0 (default
      0.0) or ``'eps'`` (the package's clamp), as in :func:`ladam`.
    mu_dtype: optional dtype of the first moment.
    nu_dtype: optional dtype of the second moment.
    wave_dt: time step of ``'wave_variance'``.
    wave_kappa: source strength of ``'wave_variance'``.
    wave_E0: background gradient level of ``'wave_variance'`` (0 = auto).
    wave_damping: damping of ``'wave_variance'``, in [0, 1].
    **coupling: how c2 couples the leaves, :class:`ladam_jax.LaplacianKwargs`
      (``stencil``, ``layout``, ``partition_specs``, ...).

  Returns:
    ``ladam``'s chain with ``optax.add_decayed_weights(weight_decay, mask)``
    before the learning rate.

  Examples:
    >>> import jax.numpy as jnp, optax, ladam_jax
    >>> schedule = optax.warmup_cosine_decay_schedule(0.0, 1e-3, 10, 100)
    >>> opt = optax.chain(optax.clip_by_global_norm(1.0),
    ...                   ladam_jax.ladamw(schedule, weight_decay=1e-2))
    >>> state = opt.init({'w': jnp.ones((8, 8))})

  References:
    Partin, `LAdam <https://pypi.org/project/ladam/0.4.1/>`_, 2026;
    Loshchilov, Hutter, `Decoupled Weight Decay Regularization
    <https://arxiv.org/abs/1711.05101>`_, 2019.
  """
  _validation.check_non_negative("weight_decay", weight_decay)
  return _laplacian_adam(
      "ladamw", learning_rate, weight_decay, mask, b1=b1, b2=b2, eps=eps, c2=c2,
      mode=mode, variance_floor=variance_floor, mu_dtype=mu_dtype,
      nu_dtype=nu_dtype,
      wave=dict(wave_dt=wave_dt, wave_kappa=wave_kappa, wave_E0=wave_E0,
                wave_damping=wave_damping),
      **coupling)
