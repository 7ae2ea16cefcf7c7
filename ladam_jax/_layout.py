"""Which field a parameter leaf is, for the Laplacian.

The reference (PyTorch ``ladam``) smooths a 1-D tensor as a periodic line and
any tensor of 2 or more dims as the periodic 2-D field ``W.reshape(shape[0], -1)``
of its PyTorch layout. A layout names, per leaf, the axes that form the rows of
that field and the axes that form its columns (flattened in the order given).
Axes named in neither are *batch* axes: each slice along them is an independent
field (in the spirit of Optax's ``MuonDimensionNumbers``).

The default, ``'auto'``, reads each leaf the way its model library stores it:
a leaf of an Equinox layer gets the field the reference gives the PyTorch
layer that the Equinox layer mirrors (:func:`auto_layout`); any other leaf
(Flax linen, nnx, plain pytrees) gets ``'flax'``.
"""


import dataclasses
import math
from typing import Any, Callable, Literal, Union

import jax
import jax.numpy as jnp

from ladam_jax import _equinox

__all__ = ["LaplacianLayout", "FieldSpec", "LayoutLike", "field_spec",
           "auto_layout", "resolve_layouts", "with_flips", "unflipped", "batched"]

_NAMED_LAYOUTS = ("auto", "flax", "torch")


@dataclasses.dataclass(frozen=True)
class LaplacianLayout:
  """An explicit field layout for one leaf.

  The leaf is reversed along the ``flip`` axes, transposed to
  ``(*batch_axes, *rows, *cols)`` and reshaped to
  ``(batch, prod(rows), prod(cols))``; each ``(h, w)`` slice is smoothed as a
  periodic 2-D field. With ``cols=()`` the field is the 1-D periodic line
  ``prod(rows)``. Axes may be negative.

  Examples:
    >>> import ladam_jax
    >>> # attention kernel (features, heads, head_dim): one field per head
    >>> per_head = ladam_jax.LaplacianLayout(rows=(0,), cols=(2,))
    >>> # the reference's view of a Flax conv kernel (kh, kw, in, out)
    >>> ref = ladam_jax.LaplacianLayout(rows=(3,), cols=(2, 0, 1))
    >>> # PyTorch's field of an Equinox ConvTranspose2d weight (out, in, kh, kw)
    >>> convt = ladam_jax.LaplacianLayout(rows=(1,), cols=(0, 2, 3),
    ...                                   flip=(2, 3))

  Attributes:
    rows: axes flattened into the field's first (row) dimension.
    cols: axes flattened into the field's second dimension; empty for 1-D.
    flip: axes read in reverse order (a transposed convolution's kernel, which
      Equinox stores flipped relative to PyTorch).
  """

  rows: tuple[int, ...]
  cols: tuple[int, ...] = ()
  flip: tuple[int, ...] = ()

  def __post_init__(self):
    rows = _as_axes("rows", self.rows)
    cols = _as_axes("cols", self.cols)
    flip = _as_axes("flip", self.flip)
    if not rows:
      raise ValueError("LaplacianLayout: `rows` must name at least one axis.")
    object.__setattr__(self, "rows", rows)
    object.__setattr__(self, "cols", cols)
    object.__setattr__(self, "flip", flip)


def _as_axes(name, axes) -> tuple[int, ...]:
  if isinstance(axes, int):
    return (axes,)
  try:
    out = tuple(int(a) for a in axes)
  except TypeError as e:
    raise ValueError(
        f"LaplacianLayout: `{name}` must be an int or a sequence of ints, "
        f"got {axes!r}.") from e
  return out


# A layout of one leaf: a name, an explicit layout, or None (never smoothed).
LeafLayout = Union[Literal["auto", "flax", "torch"], LaplacianLayout, None]
# What users pass: one leaf layout, a pytree (prefix) of them, or a callable
# params -> such a pytree.
LayoutLike = Union[LeafLayout, Any, Callable[[Any], Any]]


def is_leaf_layout(x) -> bool:
  return x is None or isinstance(x, (str, LaplacianLayout))


def check_leaf_layout(layout) -> None:
  """Raises ValueError unless ``layout`` is a valid layout of one leaf."""
  if isinstance(layout, str) and layout not in _NAMED_LAYOUTS:
    raise ValueError(
        f"Invalid `layout` {layout!r}: choose one of {_NAMED_LAYOUTS}, a "
        "ladam_jax.LaplacianLayout, or None (leaf never smoothed).")
  if not is_leaf_layout(layout):
    raise ValueError(
        f"Invalid `layout` {layout!r}: a layout is one of {_NAMED_LAYOUTS}, a "
        "ladam_jax.LaplacianLayout, None (never smoothed), a pytree (or "
        "prefix) of the params' structure holding these (an Equinox module "
        "included), or a params function params -> such a pytree.")


@dataclasses.dataclass(frozen=True)
class FieldSpec:
  """How one leaf maps to a batch of periodic fields (static).

  The leaf is reversed along the ``flip`` axes (usually none), transposed by
  ``perm`` and reshaped to ``(batch, *field)``.
  """

  perm: tuple[int, ...]  # leaf axes -> (*batch, *rows, *cols)
  batch: int  # number of independent fields
  field: tuple[int, ...]  # (n,) or (h, w)
  flip: tuple[int, ...] = ()  # leaf axes reversed first (sorted)

  @property
  def too_small(self) -> bool:
    """The reference gives an all-zero Laplacian for such fields."""
    if len(self.field) == 1:
      return self.field[0] < 4
    return min(self.field) < 3


def _named_axes(layout: str, ndim: int) -> LaplacianLayout:
  # 'auto' is resolved per leaf over a tree (resolve_layouts); a leaf seen on
  # its own, outside any model, is read as 'flax'.
  if ndim == 1:
    return LaplacianLayout(rows=(0,))
  if layout == "torch" or ndim == 2:
    # (out, in, *spatial).reshape(out, -1); for 2-D both stencils commute with
    # transposition, so (in, out) and (out, in) give the same smoothing.
    return LaplacianLayout(rows=(0,), cols=tuple(range(1, ndim)))
  # Flax (*spatial, in, out): the reference's field is the PyTorch view
  # (out, in * prod(spatial)). We smooth its transpose (in * prod(spatial),
  # out): the same result, as both stencils and the size rules commute with
  # transposition, and it moves whole contiguous `out` rows instead of
  # transposing element by element (2-3x faster on CPU).
  return LaplacianLayout(rows=(ndim - 2,) + tuple(range(ndim - 2)),
                         cols=(ndim - 1,))


def field_spec(shape: tuple[int, ...], layout: LeafLayout) -> FieldSpec | None:
  """The static field description of a leaf of ``shape``, or None.

  None means the leaf is never smoothed (0-d leaves, ``layout=None``).
  """
  ndim = len(shape)
  if ndim == 0 or layout is None:
    return None
  check_leaf_layout(layout)
  axes = _named_axes(layout, ndim) if isinstance(layout, str) else layout
  rows = tuple(a % ndim if -ndim <= a < ndim else _bad_axis(a, shape)
               for a in axes.rows)
  cols = tuple(a % ndim if -ndim <= a < ndim else _bad_axis(a, shape)
               for a in axes.cols)
  flip = {a % ndim if -ndim <= a < ndim else _bad_axis(a, shape)
          for a in axes.flip}
  flip = tuple(sorted(a for a in flip if shape[a] > 1))
  named = rows + cols
  if len(set(named)) != len(named):
    raise ValueError(f"LaplacianLayout {axes} names an axis twice.")
  batch_axes = tuple(a for a in range(ndim) if a not in named)
  h = math.prod(shape[a] for a in rows)
  field = (h,) if not cols else (h, math.prod(shape[a] for a in cols))
  return FieldSpec(perm=batch_axes + named,
                   batch=math.prod(shape[a] for a in batch_axes), field=field,
                   flip=flip)


def unflipped(spec: FieldSpec) -> FieldSpec:
  """``spec`` without its ``flip`` axes (the leaf is flipped by the caller)."""
  return dataclasses.replace(spec, flip=())


def with_flips(fn, x, spec: FieldSpec | None):
  """``fn(x, spec)`` for a spec with ``flip`` axes: ``x`` is reversed along
  them, ``fn`` runs on the unflipped spec, and its result is reversed back
  (the Laplacian and its solves act on the field, and reversing the leaf's
  axes is how that field is read). Without flips, ``fn(x, spec)``.
  """
  if spec is None or not spec.flip:
    return fn(x, spec)
  return jnp.flip(fn(jnp.flip(x, spec.flip), unflipped(spec)), spec.flip)


def _bad_axis(axis, shape):
  raise ValueError(
      f"LaplacianLayout axis {axis} is out of range for a leaf of shape "
      f"{tuple(shape)}.")


def _line(ndim: int) -> LaplacianLayout:
  """Every axis flattened into one periodic line (a PyTorch bias)."""
  return LaplacianLayout(rows=tuple(range(ndim)))


def _equinox_layout(owner, shape: tuple[int, ...]) -> LeafLayout:
  """The reference's field for a leaf of an Equinox layer (see auto_layout)."""
  import equinox as eqx  # pylint: disable=g-import-not-at-top
  module, attr = owner.module, owner.attr
  ndim = len(shape)
  conv_types = (eqx.nn.Conv, eqx.nn.ConvTranspose)
  if isinstance(module, conv_types) and attr == "bias":
    # Equinox (out, 1, ..., 1); PyTorch's bias is the 1-D line (out,).
    return _line(ndim)
  if isinstance(module, eqx.nn.ConvTranspose) and attr == "weight":
    # Equinox (out, in // groups, *kernel) holds PyTorch's (in, out // groups,
    # *kernel) weight of the same layer transposed and with its kernel
    # flipped (equinox's ConvTranspose docs), and PyTorch's field is
    # (in, (out // groups) * prod(kernel)).
    if getattr(module, "groups", 1) != 1:
      raise ValueError(
          f"layout='auto' cannot give the reference's field to the weight of "
          f"an eqx.nn.ConvTranspose with groups={module.groups}: PyTorch "
          "stores it (in, out // groups, *kernel), which is no transpose of "
          "Equinox's (out, in // groups, *kernel). Pass `layout` for that "
          "leaf explicitly (a ladam_jax.LaplacianLayout, or None).")
    spatial = tuple(range(2, ndim))
    return LaplacianLayout(rows=(1,), cols=(0,) + spatial, flip=spatial)
  # Every other Equinox array is stored as PyTorch stores it (Linear
  # (out, in), Conv (out, in, *kernel), Embedding (num, dim), norms' shapes,
  # custom modules by Equinox's convention).
  return "torch"


def auto_layout(tree: Any) -> Any:
  """The layout ``layout='auto'`` gives every leaf of ``tree``, as a pytree.

  A leaf of an Equinox layer gets the field the reference (ladam 0.4.1)
  gives the PyTorch layer that the Equinox layer mirrors: ``'torch'``
  (``W.reshape(W.shape[0], -1)``) for ``Linear``, ``Conv1d/2d/3d``,
  ``Embedding``, ``MultiheadAttention``'s projections, norms and any other
  array of an Equinox module (Equinox stores PyTorch's layouts); the 1-D line
  of ``out`` entries for a conv bias, which Equinox stores ``(out, 1, 1)``;
  and ``(in, out * prod(kernel))`` for a ``ConvTranspose`` weight, which
  PyTorch stores ``(in, out, *kernel)`` and Equinox ``(out, in, *kernel)``.
  Any other leaf (Flax linen, ``nnx.State``, plain dicts) gets ``'flax'``.

  Args:
    tree: the params (``eqx.filter(model, eqx.is_array)`` for Equinox).

  Returns:
    A pytree of the params' structure holding each leaf's layout (a name or
    a :class:`LaplacianLayout`).

  Examples:
    >>> import jax, jax.numpy as jnp, ladam_jax
    >>> params = {'Dense_0': {'kernel': jnp.zeros((4, 8))}}
    >>> ladam_jax.auto_layout(params)
    {'Dense_0': {'kernel': 'flax'}}
  """
  return jax.tree.structure(tree).unflatten(_auto_leaf_layouts(tree))


def _auto_leaf_layouts(tree: Any) -> list[LeafLayout]:
  """:func:`auto_layout` as a list, in ``jax.tree.leaves`` order."""
  return ["flax" if owner is None else
          _equinox_layout(owner, tuple(jnp.shape(x)))
          for x, owner in zip(jax.tree.leaves(tree),
                              _equinox.leaf_owners(tree))]


def resolve_layouts(layout: LayoutLike, tree) -> list[LeafLayout]:
  """One leaf layout per leaf of ``tree`` (``jax.tree.leaves`` order).

  ``layout`` takes the per-leaf forms of :mod:`ladam_jax._tree_specs`;
  ``'auto'`` values (the default) become :func:`auto_layout`'s.
  """
  from ladam_jax import _tree_specs  # pylint: disable=g-import-not-at-top
  leaves = _tree_specs.values_per_leaf(layout, tree,
                                       is_spec_leaf=is_leaf_layout,
                                       name="layout", none_is_value=True)
  for leaf_layout in leaves:
    check_leaf_layout(leaf_layout)
  if any(isinstance(x, str) and x == "auto" for x in leaves):
    auto = _auto_leaf_layouts(tree)
    leaves = [a if isinstance(x, str) and x == "auto" else x
              for x, a in zip(leaves, auto)]
  return leaves


def batched(spec: FieldSpec, n: int) -> FieldSpec:
  """``spec`` of a leaf stacked ``n`` times on a new leading axis (each
  copy's fields are independent fields of the stack)."""
  return FieldSpec(perm=(0,) + tuple(a + 1 for a in spec.perm),
                   batch=n * spec.batch, field=spec.field,
                   flip=tuple(a + 1 for a in spec.flip))
