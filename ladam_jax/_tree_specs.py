"""Per-leaf arguments: one rule for ``c2``, ``layout``, ``sigma``, masks, ...

Every argument that can differ between leaves of the params is accepted in
the same three forms:

1. **one value** for every leaf (``c2=1e-4``, ``layout='torch'``);
2. **a pytree** with the params' structure, or a prefix of it, holding one
   value per leaf or per subtree: a dict for linen params, an
   ``nnx.State``, an Equinox module (as ``jax.tree.map`` over
   ``eqx.filter(model, eqx.is_array)`` gives). Where the params have no
   array (the ``None`` that ``eqx.filter`` leaves, an empty dict), the spec's
   value there is not used, so a spec mapped over the whole model works too;
3. **a params function** ``params -> such a pytree``, called on the updates
   (which have the params' structure), as ``optax.masked`` does with its
   mask: :func:`ladam_jax.c2_by_path`, :func:`ladam_jax.auto_c2`, a lambda.

A spec that is itself a pytree node (a dict, a list, an Equinox module, an
``nnx.State``) is always read as a pytree and never called, even when it is
callable as an Equinox module is: only a plain function is a params
function. Anything else is refused with an error that names the argument and
these forms.
"""

from __future__ import annotations

from typing import Any, Callable

import jax

__all__ = ["per_leaf", "is_pytree_node", "as_mask", "FORMS"]

FORMS = ("one value for every leaf, a pytree (or prefix) of the params' "
         "structure holding such values (a dict, an nnx.State, an Equinox "
         "module, with None where the params have no array), or a params "
         "function params -> such a pytree")


def is_pytree_node(x: Any) -> bool:
  """Whether ``x`` is a pytree container (not a single leaf, not None)."""
  if x is None:
    return False
  children = jax.tree.leaves(x, is_leaf=lambda y: y is not x)
  return len(children) != 1 or children[0] is not x


def _describe(value: Any) -> str:
  text = repr(value)
  return text if len(text) <= 80 else text[:77] + "..."


def _call_params_function(spec: Callable[[Any], Any], tree: Any,
                          name: str) -> Any:
  try:
    return spec(tree)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(
        f"`{name}` is a function, so it was called as a params function "
        f"`{name}(params)` and raised {type(e).__name__}: {e}. `{name}` takes "
        f"{FORMS}.") from e


def per_leaf(spec: Any, tree: Any, *, is_spec_leaf: Callable[[Any], bool],
             name: str, none_is_value: bool = False,
             call: bool = True) -> list[Any]:
  """One spec value per leaf of ``tree``, in ``jax.tree.leaves`` order.

  Args:
    spec: the argument, in one of the forms of the module docstring.
    tree: the params (or updates) pytree.
    is_spec_leaf: tells a single value from a container of values (called
      only on objects that are not pytree containers, and on None when
      ``none_is_value``).
    name: the argument's name, for error messages.
    none_is_value: whether None is a valid value of one leaf (a layout:
      never smoothed). Otherwise a None in the spec is only accepted where
      the params have no array.
    call: whether a plain function is a params function. False where the
      caller has already called it.

  Returns:
    A list with one spec value per leaf of ``tree``.
  """
  n = len(jax.tree.leaves(tree))
  if (call and callable(spec) and not is_pytree_node(spec)
      and not is_spec_leaf(spec)):
    spec = _call_params_function(spec, tree, name)
  if spec is None and not none_is_value:
    if n == 0:
      return []
    raise ValueError(f"`{name}` is None; it takes {FORMS}.")
  if not is_pytree_node(spec):
    if not is_spec_leaf(spec):
      raise ValueError(
          f"`{name}`={_describe(spec)} is not a valid value; `{name}` takes "
          f"{FORMS}.")
    return [spec] * n

  is_leaf = lambda x: x is None or (not is_pytree_node(x) and is_spec_leaf(x))
  paths_values, spec_def = jax.tree_util.tree_flatten_with_path(
      spec, is_leaf=is_leaf)
  try:
    subtrees = spec_def.flatten_up_to(tree)
  except (ValueError, TypeError) as e:
    raise ValueError(
        f"`{name}` is a pytree that is not a prefix of the params' structure "
        f"{jax.tree.structure(tree)}: {e}. `{name}` takes {FORMS}.") from e
  out = []
  for (path, value), sub in zip(paths_values, subtrees):
    k = len(jax.tree.leaves(sub))
    if k == 0:  # no array there (eqx.filter's None, an empty container)
      continue
    where = jax.tree_util.keystr(path) or "the root"
    if value is None and not none_is_value:
      raise ValueError(
          f"`{name}` is None at {where}, where the params have {k} array(s); "
          "give those leaves a value.")
    if not is_spec_leaf(value):
      raise ValueError(
          f"`{name}` holds {_describe(value)} at {where}, which is not a "
          f"valid value; `{name}` takes {FORMS}.")
    out.extend([value] * k)
  assert len(out) == n, (len(out), n)
  return out


def as_mask(mask: Any, name: str = "mask") -> Any:
  """A mask in the per-leaf forms, as a params function for ``optax.masked``.

  None (no mask) stays None. Otherwise the result maps the params to a
  pytree of bools of their full structure, so ``optax.masked`` and
  ``optax.add_decayed_weights`` see exactly one bool per leaf whatever form
  the user gave (a prefix, an Equinox module of bools, a params function).
  """
  if mask is None:
    return None
  def mask_fn(params):
    values = per_leaf(mask, params, is_spec_leaf=_is_bool_leaf, name=name)
    return jax.tree.structure(params).unflatten([bool(v) for v in values])

  return mask_fn


def _is_bool_leaf(x) -> bool:
  import numpy as np  # pylint: disable=g-import-not-at-top
  if isinstance(x, (bool, np.bool_)):
    return True
  return (isinstance(x, (jax.Array, np.ndarray)) and np.ndim(x) == 0
          and np.dtype(x.dtype) == np.bool_)
