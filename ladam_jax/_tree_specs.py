"""Per-leaf hyperparameter specifications.

A specification is one value for every leaf, a pytree prefix of the params
holding one value per subtree, or a callable ``params -> such a pytree`` (called
on the updates, which have the params' structure, like ``optax.masked``).
"""

from __future__ import annotations

from typing import Any, Callable

import jax

__all__ = ["per_leaf"]


def per_leaf(spec: Any, tree: Any, *, is_spec_leaf: Callable[[Any], bool],
             name: str) -> list[Any]:
  """One spec value per leaf of ``tree``, in ``jax.tree.leaves`` order.

  Args:
    spec: the specification (see module docstring).
    tree: the params (or updates) pytree.
    is_spec_leaf: tells a single spec value from a container of them.
    name: the argument's name, for error messages.

  Returns:
    A list with one spec value per leaf of ``tree``.
  """
  n = len(jax.tree.leaves(tree))
  if callable(spec) and not is_spec_leaf(spec):
    spec = spec(tree)
  if is_spec_leaf(spec):
    return [spec] * n
  try:
    full = jax.tree.broadcast(spec, tree, is_leaf=is_spec_leaf)
  except ValueError as e:
    raise ValueError(
        f"`{name}` is a pytree that is not a prefix of the params' structure "
        f"{jax.tree.structure(tree)}: {e}") from e
  leaves = jax.tree.leaves(full, is_leaf=is_spec_leaf)
  if len(leaves) != n:  # a None in the spec pytree swallowed leaves
    raise ValueError(
        f"`{name}` pytree gives {len(leaves)} values for {n} params leaves; "
        "give every subtree a value.")
  for leaf in leaves:
    if not is_spec_leaf(leaf):
      raise ValueError(f"`{name}` holds {leaf!r}, which is not a valid value.")
  return leaves
