"""Per-leaf Laplacian coupling: which leaves are smoothed, how, and by how much.

Every transform in this package smooths some per-leaf quantity ``x`` (the
bias-corrected variance, an accumulator, the update, the weights) as

.. math::
  x \\leftarrow x + c_2 \\, L(x)

on the leaves where ``use_lap = (c2 > 0) and (leaf.size >= min_spatial_size)``
(the reference's rule). This module holds that shared machinery: the static
field of each leaf, its c2 at the current step, and whether it is coupled. What
is known statically (a concrete ``c2 == 0``, a concrete ``min_spatial_size``
above the leaf's size, a 0-d leaf) costs nothing at run time; traced values
(``optax.inject_hyperparams``) select with ``jnp.where``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ladam_jax import _c2
from ladam_jax import _laplacian
from ladam_jax import _layout
from ladam_jax import _validation

__all__ = ["LeafCoupling", "plan", "smooth", "coupled_term", "validate",
           "map_leaves", "plan_kwargs"]


class LeafCoupling(NamedTuple):
  """How one leaf is coupled at this step."""

  spec: _layout.FieldSpec | None  # static field, None = never smoothed
  c2: Any  # number or traced scalar
  use_lap: Any  # False / True (static) or a traced bool


def validate(*, c2, stencil, layout, min_spatial_size, impl) -> None:
  """Construction-time checks shared by every coupled transform."""
  _c2.check_c2(c2)
  _validation.check_choice("stencil", stencil, _laplacian.STENCILS)
  _laplacian.check_impl(impl)
  if not callable(layout) and _layout.is_leaf_layout(layout):
    _layout.check_leaf_layout(layout)
  _validation.check_non_negative("min_spatial_size", min_spatial_size)


def plan_kwargs(c2, layout, min_spatial_size) -> dict[str, Any]:
  """The keyword arguments of :func:`plan` that a transform fixes at build."""
  return dict(c2=c2, layout=layout, min_spatial_size=min_spatial_size)


def plan(tree: Any, count: jax.Array, *, c2, layout,
         min_spatial_size) -> list[LeafCoupling]:
  """The coupling of every leaf of ``tree`` at step ``count`` (0-based)."""
  leaves = jax.tree.leaves(tree)
  c2_leaves = _c2.resolve_c2(c2, tree, count)
  layouts = _layout.resolve_layouts(layout, tree)
  min_size = _validation.concrete_value(min_spatial_size)
  out = []
  for x, c2_leaf, leaf_layout in zip(leaves, c2_leaves, layouts):
    shape = tuple(x.shape)
    spec = _layout.field_spec(shape, leaf_layout)
    size = math.prod(shape)
    if (spec is None or _validation.is_concrete_zero(c2_leaf) or
        (min_size is not None and size < min_size)):
      use_lap = False
    else:
      c2_value = _validation.concrete_value(c2_leaf)
      c2_pos = (c2_value > 0) if c2_value is not None else (c2_leaf > 0)
      size_ok = True if min_size is not None else (size >= min_spatial_size)
      use_lap = (c2_pos if size_ok is True
                 else jnp.logical_and(c2_pos, size_ok))
    out.append(LeafCoupling(spec, c2_leaf, use_lap))
  return out


def _select(use_lap, coupled, plain):
  if use_lap is True:
    return coupled
  return jnp.where(use_lap, coupled, plain)


def coupled_term(x: jax.Array, leaf: LeafCoupling, stencil: str,
                 impl: str | None) -> jax.Array | None:
  """``c2 · L(x)`` where the leaf is coupled (0 elsewhere); None if never."""
  if leaf.use_lap is False or leaf.spec.too_small:
    return None
  term = _c2.c2_as(leaf.c2, x.dtype) * _laplacian.leaf_laplacian(
      x, leaf.spec, stencil, impl)
  return _select(leaf.use_lap, term, jnp.zeros_like(term))


def smooth(x: jax.Array, leaf: LeafCoupling, stencil: str, impl: str | None,
           floor: Any = None, divisor: Any = None) -> jax.Array:
  """``max(x + c2·L(x), floor)`` where the leaf is coupled, ``x`` elsewhere.

  As in the reference, the floor applies to every coupled leaf, also where the
  Laplacian is zero because a side of the field is too short. With
  ``divisor`` (a scalar ``d``), ``x / d`` is smoothed, computed as
  ``(x + c2·L(x)) / d`` (L is linear): the Laplacian then reads ``x``, a
  buffer that exists anyway (the new optimizer state), instead of a
  materialised ``x / d``.
  """
  div = (lambda y: y) if divisor is None else (
      lambda y: y / jnp.asarray(divisor).astype(y.dtype))
  if leaf.use_lap is False:
    return div(x)
  coupled = x
  if not leaf.spec.too_small:
    coupled = x + _c2.c2_as(leaf.c2, x.dtype) * _laplacian.leaf_laplacian(
        x, leaf.spec, stencil, impl)
  coupled, x = div(coupled), div(x)
  if floor is not None:
    coupled = jnp.maximum(coupled, jnp.asarray(floor, x.dtype))
  return _select(leaf.use_lap, coupled, x)


def map_leaves(fn, tree: Any, *others: Any):
  """Applies ``fn(i, leaf, *other_leaves)`` per leaf of ``tree``.

  ``i`` indexes the list returned by :func:`plan` for the same tree. Returns
  the treedef of ``tree`` and the list of outputs.
  """
  leaves, treedef = jax.tree.flatten(tree)
  other_leaves = [treedef.flatten_up_to(o) for o in others]
  outs = [fn(i, x, *(o[i] for o in other_leaves)) for i, x in enumerate(leaves)]
  return treedef, outs
