"""What model library a parameter leaf comes from, and from which layer.

Flax (linen dicts, ``nnx.State``) and plain pytrees carry only key paths;
an Equinox model carries its layers: ``eqx.filter(model, eqx.is_array)`` is
the model itself with ``None`` for every non-array field, so each leaf sits
in an ``eqx.Module`` whose type says which PyTorch layer it mirrors (Equinox
keeps PyTorch's weight layouts: ``Linear`` ``(out, in)``, ``Conv``
``(out, in, *kernel)``). :func:`leaf_owners` walks a tree once and gives,
per leaf, the innermost Equinox layer that holds it and the attribute name,
so that layouts (:mod:`ladam_jax._layout`) and parameter classes
(:mod:`ladam_jax._auto`) can follow the layer types.

Equinox is optional: when it has not been imported, no tree can hold an
Equinox module and every leaf's owner is None.
"""


import sys
from typing import Any, NamedTuple

import jax

__all__ = ["LeafOwner", "leaf_owners", "equinox_module_type"]


class LeafOwner(NamedTuple):
  """Where one leaf sits in an Equinox model (None outside one)."""

  module: Any  # the innermost eqx.Module holding the leaf
  attr: str  # the attribute of ``module`` the leaf is under
  chain: tuple[Any, ...]  # every enclosing eqx.Module, outermost first


def equinox_module_type():
  """``eqx.Module`` if Equinox has been imported, else None."""
  eqx = sys.modules.get("equinox")
  return None if eqx is None else eqx.Module


def _attr_name(key) -> str:
  for attr in ("name", "key", "idx"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def leaf_owners(tree: Any) -> list[LeafOwner | None]:
  """The Equinox owner of every leaf of ``tree``, in ``jax.tree.leaves`` order.

  None for a leaf that is not inside an Equinox module (Flax, plain dicts).
  """
  module_type = equinox_module_type()
  if module_type is None:
    return [None] * len(jax.tree.leaves(tree))
  out: list[LeafOwner | None] = []

  def visit(node, owner: LeafOwner | None, chain: tuple[Any, ...]):
    if node is None:
      return
    if isinstance(node, module_type):
      chain = chain + (node,)
      children = jax.tree_util.tree_flatten_with_path(
          node, is_leaf=lambda x: x is not node)[0]
      for path, child in children:
        attr = _attr_name(path[0]) if path else ""
        visit(child, LeafOwner(node, attr, chain), chain)
      return
    treedef = jax.tree.structure(node)
    if treedef.num_leaves == 0:
      return
    if jax.tree_util.treedef_is_leaf(treedef):
      out.append(owner)
      return
    children = jax.tree_util.tree_flatten(
        node, is_leaf=lambda x: x is not node)[0]
    for child in children:
      visit(child, owner, chain)

  visit(tree, None, ())
  assert len(out) == len(jax.tree.leaves(tree))
  return out
