r"""Control optimizers: what in LAdam's effect is the Laplacian's.

LAdam differs from Adam in two ways at once: the Laplacian couples each
entry's second moment to its neighbours', and (in the package) the smoothed
variance is floored at eps, which Adam never does. The controls separate
them, each run on the same random seeds as LAdam:

- :func:`adam_floor`: Adam whose :math:`\hat v` is floored exactly where and
  as LAdam floors its smoothed variance (the leaves LAdam couples, floor
  ``eps``), with no Laplacian: the floor alone.
- :func:`shuffled`: LAdam whose Laplacian acts on a fixed random permutation
  of each leaf's entries (permute, run, un-permute): the same smoothing
  strength and field shapes, without spatial meaning.

LAdam against each of them is "what the Laplacian adds".
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ladam_jax import _coupling
from ladam_jax import _numerics

__all__ = ["adam_floor", "scale_by_floored_adam", "shuffled",
           "CONTROL_MEANING"]

# The bench's control optimizers and what comparing with them isolates.
CONTROL_MEANING = {
    "adam-copy": "A/A: what no difference looks like",
    "adam-floor": "the Laplacian (the floor kept)",
    "ladam-shuffled": "the spatial layout (same smoothing strength)",
    "ladam-floor0-shuffled": "the spatial layout (same smoothing strength)",
}


class ScaleByFlooredAdamState(NamedTuple):
  count: jax.Array
  mu: optax.Updates
  nu: optax.Updates


def scale_by_floored_adam(c2: Any, *, b1=0.9, b2=0.999, eps=1e-8,
                          min_spatial_size=16, layout="auto"
                          ) -> optax.GradientTransformation:
  r""":math:`\hat m / (\sqrt{\max(\hat v, \epsilon)} + \epsilon)` on the
  leaves LAdam with this ``c2``, ``min_spatial_size`` and ``layout`` couples,
  Adam's :math:`\hat m / (\sqrt{\hat v} + \epsilon)` elsewhere."""

  def init_fn(params):
    return ScaleByFlooredAdamState(jnp.zeros([], jnp.int32),
                                   optax.tree.zeros_like(params),
                                   optax.tree.zeros_like(params))

  def update_fn(updates, state, params=None):
    del params
    leaves = _coupling.plan(updates, state.count, c2=c2, layout=layout,
                            min_spatial_size=min_spatial_size)
    count = optax.safe_increment(state.count)
    mu = optax.tree.update_moment(updates, state.mu, b1, 1)
    nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
    m_hat = _numerics.bias_correction(mu, b1, count)
    v_hat = _numerics.bias_correction(nu, b2, count)

    def leaf_fn(i, m, v):
      floored = jnp.maximum(v, jnp.asarray(eps, v.dtype))
      use = leaves[i].use_lap
      v = v if use is False else (floored if use is True else
                                  jnp.where(use, floored, v))
      return m / (jnp.sqrt(v) + eps)

    treedef, outs = _coupling.map_leaves(leaf_fn, m_hat, v_hat)
    return treedef.unflatten(outs), ScaleByFlooredAdamState(count, mu, nu)

  return optax.GradientTransformation(init_fn, update_fn)


def adam_floor(learning_rate, c2: Any) -> optax.GradientTransformation:
  """``adam-floor``: :func:`scale_by_floored_adam` times ``-learning_rate``."""
  return optax.chain(scale_by_floored_adam(c2),
                     optax.scale_by_learning_rate(learning_rate))


def _permutations(params: Any, seed: int):
  """A fixed permutation of each leaf's entries and its inverse (NumPy)."""
  perms = []
  for i, leaf in enumerate(jax.tree.leaves(params)):
    perm = np.random.default_rng([seed, i]).permutation(int(np.size(leaf)))
    perms.append((perm, np.argsort(perm)))
  return perms


def shuffled(inner: optax.GradientTransformation,
             seed: int = 0) -> optax.GradientTransformation:
  """``inner`` run on each leaf's entries in a fixed random order.

  Gradients (and params) are permuted within each leaf, keeping its shape,
  before ``inner`` sees them, and its updates are permuted back: an
  elementwise optimizer (Adam) is unchanged, while a Laplacian now couples
  entries that are not neighbours. The permutations depend on ``seed`` and
  the leaf's position only (so every random seed of a run shares them).
  """

  def apply(tree, perms, which):
    leaves, treedef = jax.tree.flatten(tree)
    return treedef.unflatten([
        jnp.reshape(jnp.ravel(x)[p[which]], jnp.shape(x))
        for x, p in zip(leaves, perms)])

  def init_fn(params):
    return inner.init(apply(params, _permutations(params, seed), 0))

  def update_fn(updates, state, params=None):
    perms = _permutations(updates, seed)
    params = None if params is None else apply(params, perms, 0)
    new, state = inner.update(apply(updates, perms, 0), state, params)
    return apply(new, perms, 1), state

  return optax.GradientTransformation(init_fn, update_fn)
