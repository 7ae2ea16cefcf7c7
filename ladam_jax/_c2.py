"""c2 specifications: the Laplacian coupling strength, per leaf and per step.

``c2`` is accepted everywhere in the per-leaf forms of
:mod:`ladam_jax._tree_specs`, with numbers or schedules as values:

- a number (``1e-4``; a traced scalar under ``optax.inject_hyperparams``);
- an Optax schedule ``count -> c2``: any plain callable, as in Optax;
- a pytree (or pytree prefix) of the params holding numbers and/or schedules
  (a dict, an ``nnx.State``, an Equinox module with None where
  ``eqx.filter`` leaves it);
- a params function ``params -> such a pytree``, marked with
  :func:`ladam_jax.per_leaf` (called on the updates, which have the params'
  structure, as ``optax.masked`` does with its mask). :func:`c2_by_path` and
  :func:`ladam_jax.auto_c2` return one.

A pytree container is never called (an Equinox module is callable: it is read
as a pytree). The stability bound is checked per leaf, against that leaf's
own field (1-D 1/4; 2-D 3/16 for the 9-point stencil, 1/8 for the 5-point
one), whatever the form: at construction a concrete number is only checked
against the largest bound of any field, and every leaf against its own when
the state is created (``init``).
"""

import fnmatch
import re
from typing import Any, Callable, Literal, Mapping, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from ladam_jax import _tree_specs
from ladam_jax import _validation

__all__ = ["C2Like", "resolve_c2", "check_c2", "check_c2_bound", "c2_by_path",
           "suggest_c2", "path_to_str"]

C2Like = Union[float, jax.typing.ArrayLike, Callable[[Any], Any],
               _tree_specs.PerLeaf, Any]


def _is_c2_leaf(x) -> bool:
  """A single c2 value: a number, a scalar array, or a schedule.

  A callable that is itself a pytree node (an ``nnx.Variable`` holding a c2,
  as ``jax.tree.map`` over ``nnx.state(model)`` gives) is a container.
  """
  if callable(x):
    return not _tree_specs.is_pytree_node(x)
  if isinstance(x, (int, float, np.number)) and not isinstance(x, bool):
    return True
  return isinstance(x, (jax.Array, np.ndarray)) and np.ndim(x) == 0


def check_c2(c2: C2Like, name: str = "c2", bound: Optional[float] = None,
             stencil: str = "",
             where: str = "1-D leaves, the largest of any field"
             ) -> None:
  """Construction-time check of every concrete number in a c2 spec.

  With ``bound`` (the largest stability bound of any field: which leaf a
  number applies to is only known at ``init``), a concrete number above it
  is refused too (see :func:`check_c2_bound`).
  """
  if isinstance(c2, _tree_specs.PerLeaf):
    return  # a params function: its values are checked at init
  if callable(c2) and not _tree_specs.is_pytree_node(c2):
    return  # a schedule: its values are clipped at run time
  leaves = ([c2] if _is_c2_leaf(c2)
            else jax.tree.leaves(c2, is_leaf=_is_c2_leaf))
  for leaf in leaves:
    if not _is_c2_leaf(leaf):
      raise ValueError(
          f"`{name}` holds {leaf!r}: c2 values are numbers >= 0 or schedules "
          "(count -> c2).")
    _validation.check_non_negative(name, leaf)
    if bound is not None:
      check_c2_bound(leaf, bound, stencil, name, where=where)


def check_c2_bound(value: Any, bound: float, stencil: str,
                   name: str = "c2", where: str = "2-D fields") -> None:
  """Refuses a concrete number above the stencil's stability bound.

  Only Python and NumPy numbers: a JAX array (``optax.inject_hyperparams``
  passes arrays, concrete in ``init`` and traced in a jitted ``update``) is
  clipped at run time instead, the same way in both.
  """
  if isinstance(value, jax.Array):
    return
  concrete = _validation.concrete_value(value)
  if concrete is not None and concrete > bound:
    raise ValueError(
        f"`{name}`={concrete:g} is above the stability bound {bound:g} of the "
        f"{stencil} stencil on {where} (bounds: 9-point 3/16, 5-point 1/8 on "
        "2-D fields, 1/4 on 1-D leaves): v + c2·L(v) then flips the sign of "
        "the highest-frequency mode, the smoothed variance hits its floor "
        "and steps explode. Use a smaller c2, or pass "
        "allow_unstable_c2=True to run it anyway, as the reference does.")


_HINT = ("a plain callable given as `{name}` is a schedule count -> {name}, "
         "as in Optax; mark a function of the params with "
         "ladam_jax.per_leaf(fn).")


def _evaluate_schedule(schedule, count, name: str):
  """``schedule(count)``; its exceptions surface as they are, with a note."""
  try:
    value = schedule(count)
  except Exception as e:
    if hasattr(e, "add_note"):  # Python >= 3.11
      e.add_note("ladam_jax: " + _HINT.format(name=name))
    raise
  if _tree_specs.is_pytree_node(value) or np.ndim(value) != 0:
    got = ("a pytree" if _tree_specs.is_pytree_node(value)
           else f"a value of shape {np.shape(value)}")
    raise ValueError(
        f"`{name}`: the schedule {schedule!r} returned {got}, not a scalar: "
        + _HINT.format(name=name))
  return value


def resolve_c2(c2: C2Like, tree: Any, count: jax.Array,
               name: str = "c2") -> list[Any]:
  """One c2 value per leaf of ``tree`` at step ``count``.

  Numbers stay Python numbers (so that a zero is known statically and the
  Laplacian is skipped); schedules are evaluated at ``count``. ``c2`` takes
  the per-leaf forms of :mod:`ladam_jax._tree_specs`, whose values are
  numbers or schedules; a plain callable is a schedule, a params function
  is a :class:`ladam_jax.PerLeaf`.
  """
  leaves = _tree_specs.values_per_leaf(c2, tree, is_spec_leaf=_is_c2_leaf,
                                       name=name, call=False)
  out = []
  for leaf in leaves:
    if callable(leaf):
      out.append(_evaluate_schedule(leaf, count, name))
    else:
      _validation.check_non_negative(name, leaf)
      out.append(leaf)
  return out


def path_to_str(path: Sequence[Any]) -> str:
  """``('params', 'Dense_0', 'kernel')``-style key path as ``'params/Dense_0/kernel'``."""
  parts = []
  for key in path:
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        parts.append(str(getattr(key, attr)))
        break
    else:
      parts.append(str(key))
  return "/".join(parts)


def c2_by_path(rules: Mapping[str, Any] | Sequence[tuple[str, Any]],
               default: Any = 1e-4, *,
               syntax: Literal["regex", "glob"] = "regex"
               ) -> _tree_specs.PerLeaf:
  """A params function giving each leaf the c2 of the first matching rule.

  Paths are written ``'params/Conv_0/kernel'`` (keys joined by ``/``; an
  ``nnx.Variable``'s trailing ``value`` key included; an Equinox model's
  ``.layers[0].weight`` is ``'layers/0/weight'``). With
  ``syntax='regex'`` each rule is a regular expression matched with
  ``re.search``; with ``syntax='glob'`` a shell pattern matched against the
  whole path with ``fnmatch.fnmatchcase`` (``*`` also crosses ``/``). A value
  is a number or a schedule.

  Args:
    rules: ``{pattern: c2}`` (tried in insertion order) or a sequence of
      ``(pattern, c2)`` pairs.
    default: c2 for leaves that match no rule.
    syntax: ``'regex'`` or ``'glob'``.

  Returns:
    A params function (:class:`ladam_jax.PerLeaf`) to pass as ``c2=``;
    ``.fn(params)`` gives the pytree of c2 values.

  Examples:
    >>> import jax.numpy as jnp, optax, ladam_jax
    >>> params = {'conv': {'kernel': jnp.ones((3, 3, 8, 8)), 'bias': jnp.ones(8)},
    ...           'norm': {'scale': jnp.ones(8)}}
    >>> c2 = ladam_jax.c2_by_path({r'conv/kernel': 1e-3, r'norm': 0.0},
    ...                           default=1e-4)
    >>> c2.fn(params)
    {'conv': {'bias': 0.0001, 'kernel': 0.001}, 'norm': {'scale': 0.0}}
    >>> opt = ladam_jax.ladam(1e-3, c2=c2)
    >>> ladam_jax.c2_by_path({'conv/*': 1e-3}, default=0.0, syntax='glob').fn(
    ...     params)
    {'conv': {'bias': 0.001, 'kernel': 0.001}, 'norm': {'scale': 0.0}}
  """
  _validation.check_choice("syntax", syntax, ("regex", "glob"))
  items = list(rules.items()) if isinstance(rules, Mapping) else list(rules)
  compiled = []
  for pattern, value in items:
    check_c2(value, name=f"c2_by_path rule {pattern!r}")
    if not isinstance(pattern, str):
      raise TypeError(f"c2_by_path: a rule's pattern must be a string, got "
                      f"{pattern!r}.")
    if syntax == "glob":
      pattern = fnmatch.translate(pattern)
    try:
      compiled.append((re.compile(pattern), value))
    except re.error as e:
      raise ValueError(f"c2_by_path: bad {syntax} pattern {pattern!r}: {e}") \
          from None
  check_c2(default, name="c2_by_path default")
  match = "search" if syntax == "regex" else "fullmatch"

  def c2_fn(params):
    def pick(path, _):
      name = path_to_str(path)
      for regex, value in compiled:
        if getattr(regex, match)(name):
          return value
      return default
    return jax.tree.map_with_path(pick, params)

  return _tree_specs.PerLeaf(c2_fn)


_SUGGESTED_C2 = {
    "pinn": 1e-5,
    "transformer": 1e-4,
    "mlp": 5e-4,
    "cnn": 0.0,
    "cnn_denoise": 1e-3,
    "auto": 1e-4,
}


def suggest_c2(architecture: Literal["pinn", "transformer", "mlp", "cnn",
                                     "cnn_denoise", "auto"] = "auto"
               ) -> float:
  """The reference's suggested c2 for an architecture (``ladam.suggest_c2``).

  Args:
    architecture: one of ``'pinn'`` (1e-5), ``'transformer'`` (1e-4), ``'mlp'``
      (5e-4), ``'cnn'`` (0.0), ``'cnn_denoise'`` (1e-3), ``'auto'`` (1e-4);
      case-insensitive.

  Returns:
    The suggested c2.

  Examples:
    >>> import ladam_jax
    >>> ladam_jax.suggest_c2('pinn')
    1e-05
  """
  arch = str(architecture).lower()
  if arch not in _SUGGESTED_C2:
    raise ValueError(
        f"Unknown `architecture`={architecture!r}: choose one of "
        f"{tuple(_SUGGESTED_C2)}.")
  return _SUGGESTED_C2[arch]


def c2_as(value: Any, dtype) -> Any:
  """c2 in the leaf's dtype (Python numbers stay weakly typed)."""
  if isinstance(value, (int, float)):
    return value
  return jnp.asarray(value).astype(dtype)
