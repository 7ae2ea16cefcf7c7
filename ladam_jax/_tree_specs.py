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
   mask, and marked as one with :func:`per_leaf` (as
   :func:`ladam_jax.c2_by_path` and :func:`ladam_jax.auto_c2` return it).

The form is stated, never guessed. A spec that is itself a pytree node (a
dict, a list, an Equinox module, an ``nnx.State``) is always read as a
pytree and never called, even when it is callable as an Equinox module is.
For the arguments whose values may be schedules (``c2``, ``sigma``), a plain
callable is a schedule ``count -> value``, as in Optax; for the others
(``layout``, ``mask``, ``partition_specs``) a plain callable is a params
function, as ``optax.masked``'s mask is. A params function's exceptions
surface as they are. Anything else is refused with an error that names the
argument and these forms.
"""

from typing import Any, Callable

import jax

__all__ = ["PerLeaf", "per_leaf", "values_per_leaf", "is_pytree_node",
           "as_mask", "FORMS"]

FORMS = ("one value for every leaf, a pytree (or prefix) of the params' "
         "structure holding such values (a dict, an nnx.State, an Equinox "
         "module, with None where the params have no array), or a params "
         "function params -> such a pytree marked with ladam_jax.per_leaf(fn)")


class PerLeaf:
  """A params function, marked as one: ``params -> pytree of per-leaf values``.

  Made by :func:`ladam_jax.per_leaf` (and returned by
  :func:`ladam_jax.auto_c2` and :func:`ladam_jax.c2_by_path`). The optimizer
  calls ``fn`` on the params (its updates, which have their structure) once
  per trace. It is not itself callable, so ``optax.inject_hyperparams``
  keeps it as a static argument instead of taking it for a schedule; call
  ``.fn(params)`` to see the pytree it gives.

  Attributes:
    fn: the function ``params -> pytree (prefix) of values``.
  """

  __slots__ = ("fn",)

  def __init__(self, fn: Callable[[Any], Any]):
    if isinstance(fn, PerLeaf):
      fn = fn.fn
    if not callable(fn) or is_pytree_node(fn):
      raise TypeError(
          f"ladam_jax.per_leaf takes a function params -> pytree of values, "
          f"got {_describe(fn)}; a pytree of values needs no wrapper.")
    self.fn = fn

  def __repr__(self) -> str:
    return f"per_leaf({getattr(self.fn, '__qualname__', self.fn)!r})"

  def __eq__(self, other) -> bool:
    return isinstance(other, PerLeaf) and other.fn == self.fn

  def __hash__(self) -> int:
    return hash((PerLeaf, self.fn))


def per_leaf(fn: Callable[[Any], Any]) -> PerLeaf:
  """Marks ``fn`` as a params function for a per-leaf argument (``c2``, ...).

  A plain callable given as ``c2`` (or ``sigma``) is a schedule
  ``count -> c2``, as in Optax. A function of the params that gives each
  leaf its own value must say so: ``c2=ladam_jax.per_leaf(fn)``, where
  ``fn(params)`` returns a pytree (or pytree prefix) of the params holding
  numbers or schedules. :func:`ladam_jax.auto_c2` and
  :func:`ladam_jax.c2_by_path` return such a function already.

  Args:
    fn: a function ``params -> pytree (prefix) of values``.

  Returns:
    A :class:`ladam_jax.PerLeaf` holding ``fn``.

  Examples:
    >>> import jax, jax.numpy as jnp, ladam_jax
    >>> params = {'w': jnp.zeros((16, 16)), 'b': jnp.zeros(16)}
    >>> c2 = ladam_jax.per_leaf(
    ...     lambda p: jax.tree.map(lambda x: 1e-3 if x.ndim == 2 else 0.0, p))
    >>> c2.fn(params)
    {'b': 0.0, 'w': 0.001}
    >>> opt = ladam_jax.ladam(1e-3, c2=c2)
    >>> state = opt.init(params)
  """
  return PerLeaf(fn)


def is_pytree_node(x: Any) -> bool:
  """Whether ``x`` is a pytree container (not a single leaf, not None)."""
  if x is None:
    return False
  children = jax.tree.leaves(x, is_leaf=lambda y: y is not x)
  return len(children) != 1 or children[0] is not x


def _describe(value: Any) -> str:
  text = repr(value)
  return text if len(text) <= 80 else text[:77] + "..."


def values_per_leaf(spec: Any, tree: Any, *,
                    is_spec_leaf: Callable[[Any], bool], name: str,
                    none_is_value: bool = False,
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
    call: whether a plain function is a params function (``layout``,
      ``mask``, ``partition_specs``). False where a plain function is a
      value (a schedule, for ``c2`` and ``sigma``); a :class:`PerLeaf` is
      called in both cases.

  Returns:
    A list with one spec value per leaf of ``tree``.
  """
  n = len(jax.tree.leaves(tree))
  if isinstance(spec, PerLeaf):
    spec = spec.fn(tree)  # its exceptions surface as they are
  elif (call and callable(spec) and not is_pytree_node(spec)
        and not is_spec_leaf(spec)):
    spec = spec(tree)
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
    values = values_per_leaf(mask, params, is_spec_leaf=_is_bool_leaf,
                             name=name)
    return jax.tree.structure(params).unflatten([bool(v) for v in values])

  return mask_fn


def _is_bool_leaf(x) -> bool:
  import numpy as np  # pylint: disable=g-import-not-at-top
  if isinstance(x, (bool, np.bool_)):
    return True
  return (isinstance(x, (jax.Array, np.ndarray)) and np.ndim(x) == 0
          and np.dtype(x.dtype) == np.bool_)
