r"""VRAdam: a velocity-regularized learning rate around any scale-by transform.

References:
  Vaidhyanathan, Schorling, Ares, Osborne, *A Physics-Inspired Optimizer:
  Velocity Regularized Adam*, arXiv:2505.13196.
"""

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from ladam_jax import _alias
from ladam_jax import _coupling
from ladam_jax import _halo
from ladam_jax import _numerics
from ladam_jax import _ladam
from ladam_jax import _validation
from ladam_jax._types import VarianceFloor
from ladam_jax._types import Velocity

__all__ = ["VelocityRegularizationState", "scale_by_velocity_regularization",
           "vradam"]

VELOCITIES = ("momentum", "gradient")


class VelocityRegularizationState(NamedTuple):
  """State of :func:`scale_by_velocity_regularization`."""

  inner_state: optax.OptState
  factor: jax.Array  # the last step's 1 / (1 + min(beta3 * S, lr_cutoff))


def scale_by_velocity_regularization(
    inner: optax.GradientTransformation,
    beta3: jax.typing.ArrayLike = 1.0,
    lr_cutoff: jax.typing.ArrayLike = 10.0,
    velocity: Velocity = "momentum",
    *,
    partition_specs: Any = None,
) -> optax.GradientTransformation:
  r"""Scales ``inner``'s updates by VRAdam's velocity penalty.

  With :math:`S` the squared norm of the velocity over the whole tree,

  .. math::
    u \leftarrow \frac{u}{1 + \min(\beta_3 S, \text{lr\_cutoff})},

  so that after the learning rate the step size is
  :math:`\eta_t = \eta / (1 + \min(\beta_3 S, \text{lr\_cutoff}))`. The
  velocity is the first moment ``mu`` of ``inner``'s new state (this step's
  momentum; ``velocity='momentum'``, the paper's choice) or the incoming
  gradient (``velocity='gradient'``). Put weight decay inside ``inner`` so it
  is scaled by :math:`\eta_t` too, as in the paper.

  Args:
    inner: the transform to regularize (``optax.scale_by_adam``,
      :func:`ladam_jax.scale_by_laplacian_adam`, a chain holding one, ...).
      With ``velocity='momentum'`` its state must hold exactly one ``mu``.
    beta3: strength of the penalty, >= 0 (paper: 1; 0 gives ``inner``).
    lr_cutoff: cap of :math:`\beta_3 S`, >= 0 (public code: 10).
    velocity: ``'momentum'`` or ``'gradient'``.
    partition_specs: inside ``jax.shard_map``, the params' PartitionSpecs as
      given to ``in_specs``: :math:`S` is then summed over each leaf's
      blocks (``jax.lax.psum`` over the mesh axes that split it), so the
      penalty is the global one (:ref:`partition-specs`).

  Returns:
    A :class:`optax.GradientTransformation`.

  Examples:
    >>> import jax.numpy as jnp, optax, ladam_jax
    >>> tx = optax.chain(
    ...     ladam_jax.scale_by_velocity_regularization(optax.scale_by_adam()),
    ...     optax.scale_by_learning_rate(1e-3))
    >>> state = tx.init({'w': jnp.ones((8, 8))})
    >>> updates, state = tx.update({'w': jnp.ones((8, 8))}, state)
  """
  _validation.check_non_negative("beta3", beta3)
  _validation.check_non_negative("lr_cutoff", lr_cutoff)
  _validation.check_choice("velocity", velocity, VELOCITIES)
  _halo.check_partition_specs(partition_specs)

  def init_fn(params):
    inner_state = inner.init(params)
    if velocity == "momentum":
      _momentum(inner_state)  # fail early if there is none
    return VelocityRegularizationState(inner_state,
                                       jnp.ones([], jnp.float32))

  def update_fn(updates, state, params=None):
    new_updates, inner_state = inner.update(updates, state.inner_state, params)
    source = _momentum(inner_state) if velocity == "momentum" else updates
    # Inside shard_map, each leaf's sum over its blocks (none outside).
    split = _halo.split_axes(source, partition_specs,
                             "scale_by_velocity_regularization")
    speed2 = sum(  # |x|², bf16 leaves summed in float32
        _halo.psum(jnp.sum(_numerics.abs_sq(
            x.astype(jnp.promote_types(x.dtype, jnp.float32)))), axes)
        for x, axes in zip(jax.tree.leaves(source), split))
    factor = 1.0 / (1.0 + jnp.minimum(beta3 * speed2, lr_cutoff))
    new_updates = jax.tree.map(lambda u: (u * factor).astype(u.dtype),
                               new_updates)
    return new_updates, VelocityRegularizationState(
        inner_state, jnp.asarray(factor, jnp.float32))

  return optax.GradientTransformation(init_fn, update_fn)


def _momentum(inner_state):
  message = ("velocity='momentum' needs exactly one `mu` (first moment) in "
             "the inner transform's state; use velocity='gradient' otherwise.")
  try:
    mu = optax.tree.get(inner_state, "mu")
  except (KeyError, ValueError) as e:
    raise ValueError(message) from e
  if mu is None:
    raise ValueError(message)
  return mu


def vradam(
    learning_rate: optax.ScalarOrSchedule = 1e-3,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    weight_decay: Optional[jax.typing.ArrayLike] = None,
    mask: Any = None,
    *,
    beta3: jax.typing.ArrayLike = 1.0,
    lr_cutoff: jax.typing.ArrayLike = 10.0,
    velocity: Velocity = "momentum",
    c2: Any = 0.0,
    variance_floor: VarianceFloor = 0.0,
    mu_dtype: Optional[jax.typing.DTypeLike] = None,
    **coupling: _coupling.Coupling,
) -> optax.GradientTransformation:
  r"""VRAdam; ``c2 > 0`` gives its Laplacian (LAdam) variant.

  .. math::
    \eta_t = \frac{\eta}{1 + \min(\beta_3 S_t, \text{lr\_cutoff})}, \quad
    p \leftarrow p (1 - \lambda \eta_t) - \eta_t\,
      \hat m_t / (\sqrt{\tilde v_t} + \epsilon)

  with :math:`S_t = \sum |m_t|^2` over all leaves and :math:`\tilde v_t` the
  (Laplacian-smoothed, when ``c2 > 0``) bias-corrected second moment.
  ``beta3=0`` is Adam(W) / LAdam(W).

  Args:
    learning_rate: a float >= 0 or an Optax schedule.
    b1: first-moment decay, in [0, 1).
    b2: second-moment decay, in [0, 1).
    eps: added to the square root.
    weight_decay: decoupled weight decay, scaled by :math:`\eta_t`; None
      (default) leaves the stage out (any number, also 0, keeps it, so the
      state's structure does not depend on how it is spelled).
    mask: which leaves are decayed.
    beta3: strength of the velocity penalty (paper: 1).
    lr_cutoff: cap of :math:`\beta_3 S` (public code: 10).
    velocity: ``'momentum'`` (paper) or ``'gradient'``.
    c2: Laplacian coupling; 0 (default) is plain VRAdam.
    variance_floor: floor of the smoothed variance: a number >= 0 (default
      0.0) or ``'eps'`` (the package's clamp), as in :func:`ladam_jax.ladam`.
    mu_dtype: optional dtype of the first moment.
    **coupling: how c2 couples the leaves, :class:`ladam_jax.LaplacianKwargs`
      (``stencil``, ``layout``, ``partition_specs``, ...).

  Returns:
    ``optax.chain(scale_by_velocity_regularization(chain(
    scale_by_laplacian_adam(...), [add_decayed_weights])),
    scale_by_learning_rate(learning_rate))``.

  Examples:
    >>> import jax.numpy as jnp, ladam_jax
    >>> opt = ladam_jax.vradam(1e-3, beta3=1.0, c2=1e-4)
    >>> state = opt.init({'w': jnp.ones((8, 8))})
  """
  coupling = _coupling.check_names("vradam", coupling)
  _alias.check_learning_rate(learning_rate)
  inner = [_ladam.scale_by_laplacian_adam(
      b1, b2, eps, c2=c2, variance_floor=variance_floor, mu_dtype=mu_dtype,
      **coupling)]
  inner += _alias.decayed_weights(weight_decay, mask)
  return optax.chain(
      scale_by_velocity_regularization(
          optax.chain(*inner), beta3, lr_cutoff, velocity,
          partition_specs=coupling.get("partition_specs")),
      optax.scale_by_learning_rate(learning_rate))
