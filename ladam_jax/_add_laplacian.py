r"""Explicit diffusion steps: add :math:`c_2 L(\cdot)` of the update or weights.

:func:`add_update_laplacian` turns an update :math:`u` into
:math:`u + c_2 L(u)` (the reference's ``mode='update_lap'`` after Adam);
:func:`add_weight_laplacian`, placed after the learning rate, makes the
applied step give :math:`p' + c_2 L(p')` with :math:`p' = p + u` (its
``mode='weight_lap'``).

References:
  Partin, `LAdam <https://pypi.org/project/ladam/0.4.1/>`_, 2026 (the PyTorch
  package ``ladam`` 0.4.1, MIT).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ladam_jax import _coupling

__all__ = ["AddLaplacianState", "add_update_laplacian",
           "add_weight_laplacian"]


class AddLaplacianState(NamedTuple):
  """State of :func:`add_update_laplacian` and :func:`add_weight_laplacian`
  (the step count, for c2 schedules)."""

  count: jax.Array  # shape=(), dtype=jnp.int32


def _add_laplacian(laplacian: _coupling.LaplacianConfig, *,
                   of_weights: bool) -> optax.GradientTransformation:
  """``u + c2 L(p + u)`` (``of_weights``) or ``u + c2 L(u)``."""

  def init_fn(params):
    laplacian.check(params)
    return AddLaplacianState(jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    leaves = laplacian.plan(updates, state.count)
    if not of_weights:  # u + c2 L(u), small leaves stacked (as LAdam's v)
      return laplacian.smooth(updates, leaves), AddLaplacianState(
          optax.safe_increment(state.count))
    if params is None:
      raise ValueError(
          f"{laplacian.what} smooths the stepped weights and needs them: "
          "call update(updates, state, params).")

    terms = laplacian.terms(jax.tree.map(lambda p, u: p + u, params,
                                         updates), leaves)

    def leaf_fn(i, u):
      return u if terms[i] is None else (u + terms[i]).astype(u.dtype)

    treedef, outs = _coupling.map_leaves(leaf_fn, updates)
    return treedef.unflatten(outs), AddLaplacianState(
        optax.safe_increment(state.count))

  return optax.GradientTransformation(init_fn, update_fn)


def add_update_laplacian(
    c2: Any = 1e-4,
    **coupling: _coupling.Coupling,
) -> optax.GradientTransformation:
  r"""Adds the Laplacian of the update: :math:`u \leftarrow u + c_2 L(u)`.

  On coupled leaves (``use_lap``, as in
  :func:`ladam_jax.scale_by_laplacian_adam`); in float32 for half-precision
  leaves, and an entry where :math:`u + c_2 L(u)` is not finite is left as
  it is. After ``optax.scale_by_adam`` it is the reference's
  ``mode='update_lap'``, which :func:`ladam_jax.ladam` builds as
  ``chain(scale_by_laplacian_adam(c2=0), add_update_laplacian(c2))`` (Adam
  whose bias corrections are accurate to float rounding).

  Args:
    c2: coupling strength >= 0: a number, a schedule, a pytree (prefix) of
      them, or a params function marked with :func:`ladam_jax.per_leaf`
      (:doc:`c2-and-layouts`); 0 leaves the update as it is.
    **coupling: how c2 couples the leaves, :class:`ladam_jax.LaplacianKwargs`
      (``stencil``, ``layout``, ``partition_specs``, ...).

  Returns:
    A :class:`optax.GradientTransformation`.

  Examples:
    >>> import jax.numpy as jnp, optax, ladam_jax
    >>> tx = optax.chain(optax.scale_by_adam(),
    ...                  ladam_jax.add_update_laplacian(c2=1e-4),
    ...                  optax.scale_by_learning_rate(1e-3))
    >>> params = {'w': jnp.ones((8, 8))}
    >>> state = tx.init(params)
    >>> updates, state = tx.update(params, state)

  References:
    Partin, `LAdam <https://pypi.org/project/ladam/0.4.1/>`_, 2026.
  """
  laplacian = _coupling.config("add_update_laplacian", c2, **coupling)
  return _add_laplacian(laplacian, of_weights=False)


def add_weight_laplacian(
    c2: Any = 1e-4,
    **coupling: _coupling.Coupling,
) -> optax.GradientTransformation:
  r"""Adds the Laplacian of the stepped weights: LAdam's ``weight_lap`` mode.

  Placed *after* the learning rate, it turns the incoming update :math:`u`
  into :math:`u + c_2 L(p + u)` on coupled leaves, so that applying it gives
  :math:`p' + c_2 L(p')` with :math:`p' = p + u`: a diffusion step on the
  weights after the optimizer step, as the reference's ``weight_lap`` does.

  Args:
    c2: coupling strength >= 0: a number, a schedule, a pytree (prefix) of
      them, or a params function marked with :func:`ladam_jax.per_leaf`
      (:doc:`c2-and-layouts`); 0 leaves the weights' step as it is.
    **coupling: how c2 couples the leaves, :class:`ladam_jax.LaplacianKwargs`
      (``stencil``, ``layout``, ``partition_specs``, ...).

  Returns:
    A :class:`optax.GradientTransformation` whose ``update`` needs
    ``params``.

  Examples:
    >>> import jax.numpy as jnp, optax, ladam_jax
    >>> tx = optax.chain(optax.scale_by_adam(),
    ...                  optax.scale_by_learning_rate(1e-3),
    ...                  ladam_jax.add_weight_laplacian(c2=1e-4))
    >>> params = {'w': jnp.ones((8, 8))}
    >>> state = tx.init(params)
    >>> updates, state = tx.update(params, state, params)

  References:
    Partin, `LAdam <https://pypi.org/project/ladam/0.4.1/>`_, 2026.
  """
  laplacian = _coupling.config("add_weight_laplacian", c2, **coupling)
  return _add_laplacian(laplacian, of_weights=True)
