r"""The state and steps the transforms share.

:func:`adam_moments_init`: the state ``(count, mu, nu)`` of LAdam and
LaProp, exactly Adam's. :func:`scale_by_smoothed_root`: LRMSProp's and
LAdaGrad's step. Both keep one accumulator :math:`a` of squared gradients
(an exponential average in RMSProp, a running sum in AdaGrad) and step by

.. math::
  u = g / (\sqrt{\tilde a} + \epsilon), \quad
  \tilde a = \max(a + c_2 L(a), 0) \text{ where use\_lap, else } a,

with eps outside the square root, as PyTorch (and the reference).
"""

from typing import Any, Callable, NamedTuple

import jax.numpy as jnp
import optax

from ladam_jax import _coupling
from ladam_jax import _validation

__all__ = ["adam_moments_init", "scale_by_smoothed_root"]


def adam_moments_init(laplacian: _coupling.LaplacianConfig,
                      state_type: type[NamedTuple], mu_dtype: Any,
                      nu_dtype: Any) -> Callable[[Any], NamedTuple]:
  """``init_fn`` of a ``state_type(count, mu, nu)`` state (Adam's).

  The coupling is checked against the params first
  (:meth:`LaplacianConfig.check`); ``mu_dtype`` / ``nu_dtype`` (None: the
  params') are the moments' dtypes.
  """
  mu_dtype = _validation.canonical_dtype(mu_dtype)
  nu_dtype = _validation.canonical_dtype(nu_dtype)

  def init_fn(params):
    laplacian.check(params)
    return state_type(jnp.zeros([], jnp.int32),
                      optax.tree.zeros_like(params, mu_dtype),
                      optax.tree.zeros_like(params, nu_dtype))

  return init_fn


def scale_by_smoothed_root(
    laplacian: _coupling.LaplacianConfig,
    eps: Any,
    initial_value: Any,
    state_type: type[NamedTuple],
    accumulate: Callable[[Any, Any], Any],
) -> optax.GradientTransformation:
  """The transform :math:`g / (\\sqrt{\\tilde a} + \\epsilon)`.

  ``accumulate(updates, a) -> a'`` advances the accumulator, which starts
  at ``initial_value``; the state is ``state_type(count, a)``.
  """

  def init_fn(params):
    laplacian.check(params)
    return state_type(jnp.zeros([], jnp.int32),
                      optax.tree.full_like(params, initial_value))

  def update_fn(updates, state, params=None):
    del params
    leaves = laplacian.plan(updates, state.count)
    acc = accumulate(updates, state[1])
    new_updates = laplacian.smooth(
        acc, leaves, floor=0.0, others=(updates,),
        finish=lambda a, g: g / (jnp.sqrt(a) + eps))
    return new_updates, state_type(optax.safe_increment(state.count), acc)

  return optax.GradientTransformation(init_fn, update_fn)
