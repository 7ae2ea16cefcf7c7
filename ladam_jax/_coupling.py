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


import math
import sys
from typing import Any, NamedTuple, TypedDict

import jax
import jax.numpy as jnp

from ladam_jax import _c2
from ladam_jax import _halo
from ladam_jax import _laplacian
from ladam_jax import _layout
from ladam_jax import _numerics
from ladam_jax import _sharded_laplacian
from ladam_jax import _stencil
from ladam_jax import _validation
from ladam_jax._types import Stencil

__all__ = ["LaplacianKwargs", "Coupling", "LeafCoupling", "LaplacianConfig",
           "config", "check_names", "DEFAULTS", "plan", "smooth",
           "smoothed", "smooth_leaves", "coupled_term", "laplacians", "compute_dtype",
           "map_leaves", "needs_laplacian", "BATCH_MAX_SIZE",
           "BATCH_MAX_LEAVES"]

# Coupled leaves of at most BATCH_MAX_SIZE elements that share shape, dtype
# and field are smoothed together, up to BATCH_MAX_LEAVES at a time, stacked
# into one array: the stencil is compiled once per group instead of once per
# leaf, which keeps the compile time of trees with many small leaves near
# Adam's. Stacking copies the leaves, so larger ones are smoothed one by one,
# and larger groups compile slower again (the measurements behind both
# limits are in benchmarks/RESULTS.md).
BATCH_MAX_SIZE = 1024
BATCH_MAX_LEAVES = 32


class LeafCoupling(NamedTuple):
  """How one leaf is coupled at this step."""

  spec: _layout.FieldSpec | None  # static field, None = never smoothed
  c2: Any  # number or traced scalar
  use_lap: Any  # False / True (static) or a traced bool
  # Inside jax.shard_map, how the leaf is split over the manual mesh axes
  # (static; `spec` is then the global leaf's field); None = a whole leaf.
  halo: _halo.Block | None = None
  layout: Any = None  # the leaf's resolved layout (static)


class LaplacianKwargs(TypedDict, total=False):
  r"""The keyword arguments that say how c2 couples each leaf (``**coupling``).

  Every coupled transform and alias takes them, with the same meaning and
  defaults (``docs/c2-and-layouts.md``, ``docs/shard_map.md``).

  Attributes:
    stencil: ``'9point'`` (default: isotropic,
      :math:`\frac16[1,4,1;4,-20,4;1,4,1]`) or ``'5point'``.
    min_spatial_size: leaves with fewer elements are never smoothed
      (default 16, as the reference).
    layout: how a leaf is seen as a periodic field: ``'auto'`` (default:
      the reference's field for each Equinox layer, ``'flax'`` elsewhere),
      ``'flax'``, ``'torch'``, a :class:`ladam_jax.LaplacianLayout`, None
      (never smoothed), a pytree (prefix) of these or a callable params ->
      such a pytree (:func:`ladam_jax.auto_layout`).
    allow_unstable_c2: accept concrete c2 values above the stencil's
      stability bound for the leaf's field
      (:func:`ladam_jax.stability_bound`: 3/16 for the 9-point stencil, 1/8
      for the 5-point one on 2-D fields, 1/4 on 1-D leaves), which are
      otherwise refused when the transform is built (the largest, 1/4) or
      initialised (each leaf's own), and leave traced values (schedules,
      ``inject_hyperparams``) unclipped; the reference allows any c2 >= 0.
      Default False.
    partition_specs: inside ``jax.shard_map``, how the params are split:
      the ``jax.sharding.PartitionSpec`` of each leaf as given to
      ``in_specs`` (a PartitionSpec, a pytree (prefix) of them with None for
      a whole leaf, or a callable params -> such a pytree). Each block then
      exchanges its edge rows and columns with its mesh neighbours and the
      update equals the global one. None (default): leaves whose type
      varies over a manual mesh axis are refused with an error naming this
      argument. Ignored outside ``shard_map`` (``docs/shard_map.md``).
  """

  stencil: Stencil
  min_spatial_size: jax.typing.ArrayLike
  layout: _layout.LayoutLike
  allow_unstable_c2: bool
  partition_specs: Any


#: The defaults of :class:`LaplacianKwargs`.
DEFAULTS = {"stencil": "9point", "min_spatial_size": 16, "layout": "auto",
            "allow_unstable_c2": False, "partition_specs": None}

if sys.version_info >= (3, 11):
  from typing import Unpack  # pylint: disable=g-import-not-at-top
  #: The annotation of ``**coupling``.
  Coupling = Unpack[LaplacianKwargs]
else:  # typing.Unpack is Python 3.11+
  Coupling = Any


class LaplacianConfig(NamedTuple):
  """The Laplacian coupling of one transform, validated once by :func:`config`.

  The arguments every coupled transform shares (``docs/c2-and-layouts.md``),
  with ``bound_stencil`` None where ``allow_unstable_c2`` was given, the
  implementation the library picked when the transform was built, and
  ``what``, the transform's name for error messages.
  """

  c2: Any
  stencil: str
  min_spatial_size: Any
  layout: Any
  bound_stencil: str | None
  partition_specs: Any
  impl: str | None
  what: str

  def plan(self, tree: Any, count: jax.Array) -> list[LeafCoupling]:
    """Every leaf's coupling at step ``count`` (0-based); see :func:`plan`."""
    return plan(tree, count, c2=self.c2, layout=self.layout,
                min_spatial_size=self.min_spatial_size,
                bound_stencil=self.bound_stencil,
                partition_specs=self.partition_specs, what=self.what)

  def check(self, params: Any) -> None:
    """Resolves every leaf's c2 and field once, at ``init``.

    So that what can only be checked against the parameters (a params
    callable's c2 tree, a concrete c2 above the stability bound of a leaf's
    field, a layout that does not fit a leaf) fails when the optimizer
    state is created, not at the first update.
    """
    self.plan(params, jnp.zeros([], jnp.int32))

  def smooth(self, tree: Any, leaves: list[LeafCoupling], *,
             floor: Any = None, divisor: Any = None, finish=None,
             others: tuple[Any, ...] = ()) -> Any:
    """:func:`smooth_leaves` with this config's stencil and implementation."""
    return smooth_leaves(tree, leaves, self.stencil, self.impl, floor=floor,
                         divisor=divisor, finish=finish, others=others)

  def terms(self, tree: Any, leaves: list[LeafCoupling]
            ) -> list[jax.Array | None]:
    """:func:`coupled_term` of every leaf of ``tree``, the Laplacians of
    all leaves computed together (their halos travel together)."""
    xs = jax.tree.leaves(tree)
    laps = laplacians(xs, leaves, self.stencil, self.impl)
    return [coupled_term(x, leaf, self.stencil, self.impl, lap)
            for x, leaf, lap in zip(xs, leaves, laps)]


def check_names(what: str, coupling: dict[str, Any]) -> dict[str, Any]:
  """``what``'s :class:`LaplacianKwargs`, other names refused (naming the
  allowed ones).

  ``optax.inject_hyperparams`` binds a factory's arguments to its signature
  and passes ``**coupling`` on as one argument named ``coupling`` (a dict,
  static: none of these is a numeric hyperparameter); that form is
  unpacked here.
  """
  if isinstance(coupling.get("coupling"), dict):
    coupling = {**coupling["coupling"],
                **{k: v for k, v in coupling.items() if k != "coupling"}}
  unknown = sorted(set(coupling) - set(DEFAULTS))
  if unknown:
    raise TypeError(
        f"{what}() got unexpected keyword argument(s) {unknown}. Besides its "
        "own, it takes the Laplacian coupling's: "
        f"{', '.join(DEFAULTS)} (ladam_jax.LaplacianKwargs).")
  return coupling


def config(what: str, c2: Any, **coupling: Coupling) -> LaplacianConfig:
  """The validated :class:`LaplacianConfig` of the transform ``what``.

  ``coupling`` holds :class:`LaplacianKwargs` (absent ones take
  :data:`DEFAULTS`); any other name is refused, naming the allowed ones.
  Concrete c2 values above the largest stability bound of any field (that
  of 1-D leaves, 1/4) are refused unless ``allow_unstable_c2``: which leaf
  a value applies to, and so its own bound, is only known at ``init``
  (:meth:`LaplacianConfig.check`), where every form of c2 is checked per
  leaf.
  """
  values = {**DEFAULTS, **check_names(what, coupling)}
  stencil, min_spatial_size, layout, allow_unstable_c2, partition_specs = (
      values[k] for k in DEFAULTS)
  _halo.check_partition_specs(partition_specs)
  _validation.check_choice("stencil", stencil, _stencil.STENCILS)
  _c2.check_c2(c2, bound=(None if allow_unstable_c2
                          else _stencil.stability_bound(stencil, 1)),
               stencil=stencil)
  if not callable(layout) and _layout.is_leaf_layout(layout):
    _layout.check_leaf_layout(layout)
  _validation.check_non_negative("min_spatial_size", min_spatial_size)
  return LaplacianConfig(
      c2=c2, stencil=stencil, min_spatial_size=min_spatial_size,
      layout=layout, bound_stencil=None if allow_unstable_c2 else stencil,
      partition_specs=partition_specs, impl=_laplacian.forced_impl(),
      what=what)


def _bounded_c2(c2_leaf, spec, stencil, tree, index):
  """The leaf's c2 within the stencil's stability bound for its field.

  A concrete (Python or NumPy) number above the bound is refused, naming
  the leaf (``tree``'s leaf ``index``); a JAX array (a schedule's value, an
  injected hyperparameter; traced or not) is clipped into ``[0, bound]``,
  since ``jit`` cannot raise on a value.
  """
  bound = _stencil.stability_bound(stencil, len(spec.field))
  if isinstance(c2_leaf, jax.Array):
    return jnp.clip(c2_leaf, 0.0, bound)
  concrete = _validation.concrete_value(c2_leaf)
  if concrete is not None and concrete > bound:
    _c2.check_c2_bound(
        c2_leaf, bound, stencil,
        where=(f"{len(spec.field)}-D fields, as the leaf "
               f"{_halo.leaf_paths(tree)[index]} is"))
  return c2_leaf


def plan(tree: Any, count: jax.Array, *, c2, layout, min_spatial_size,
         bound_stencil=None, partition_specs=None,
         what: str = "the optimizer") -> list[LeafCoupling]:
  """The coupling of every leaf of ``tree`` at step ``count`` (0-based).

  With ``bound_stencil``, every coupled leaf's c2 is kept within that
  stencil's stability bound (:func:`_bounded_c2`). Inside ``jax.shard_map``,
  ``partition_specs`` says how each leaf is split over the manual mesh axes
  (:mod:`ladam_jax._halo`): the field, its size rules and ``min_spatial_size``
  are then those of the global leaf, and ``halo`` says how to exchange the
  block's edges. Outside ``shard_map`` it is ignored. ``what`` names the
  transform in errors.
  """
  leaves = jax.tree.leaves(tree)
  c2_leaves = _c2.resolve_c2(c2, tree, count)
  layouts = _layout.resolve_layouts(layout, tree)
  min_size = _validation.concrete_value(min_spatial_size)
  ctx = _halo.context()  # None outside shard_map: nothing below runs
  if ctx is None:
    parts = [None] * len(leaves)
  else:
    parts = _halo.partitions(
        tree, partition_specs, ctx, what=what,
        may_couple=[l is not None and jnp.ndim(x) > 0
                    and not _validation.is_concrete_zero(c)
                    for x, c, l in zip(leaves, c2_leaves, layouts)])
    paths = _halo.leaf_paths(tree)
  out = []
  for i, (x, c2_leaf, leaf_layout) in enumerate(
      zip(leaves, c2_leaves, layouts)):
    shape = tuple(jnp.shape(x))  # Python scalar leaves too, as optax.adam
    halo = None
    if parts[i] is not None:
      local, shape = shape, parts[i].global_shape
      static_off = (_validation.is_concrete_zero(c2_leaf) or (
          min_size is not None and math.prod(shape) < min_size))
      # A leaf that is never smoothed needs no field, only its split axes.
      halo = _halo.leaf_block(parts[i], local,
                              None if static_off else leaf_layout, paths[i],
                              what, ctx)
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
      if bound_stencil is not None:
        c2_leaf = _bounded_c2(c2_leaf, spec, bound_stencil, tree, i)
    out.append(LeafCoupling(spec, c2_leaf, use_lap, halo, leaf_layout))
  return out


def _select(use_lap, coupled, plain):
  if use_lap is True:
    return coupled
  return jnp.where(use_lap, coupled, plain)


def needs_laplacian(leaf: LeafCoupling) -> bool:
  """Whether the leaf may be smoothed at all (statically)."""
  return leaf.use_lap is not False and not leaf.spec.too_small


def compute_dtype(dtype) -> jnp.dtype:
  """The dtype the stencil sums in: float32 for half-precision leaves.

  A float16 variance above about 2e4 overflows the stencil's sums (one
  float16 gradient of 900 has g² = 8.1e5 > 65504 already), so float16 and
  bfloat16 leaves are smoothed in float32 and cast back; other dtypes are
  smoothed in their own.
  """
  dtype = jnp.dtype(dtype)
  if dtype in (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16)):
    return jnp.dtype(jnp.float32)
  return dtype


def laplacians(xs: list[jax.Array], leaves: list[LeafCoupling],
               stencil: str, impl: str | None) -> list[jax.Array | None]:
  """``L(x)`` in :func:`compute_dtype` of every leaf that may be smoothed
  (:func:`needs_laplacian`; None elsewhere), all in one
  :func:`ladam_jax._sharded_laplacian.laplacians`: sharded leaves exchange
  their halos together."""
  idx = [i for i, leaf in enumerate(leaves) if needs_laplacian(leaf)]
  got = _sharded_laplacian.laplacians(
      [xs[i] for i in idx], [leaves[i].spec for i in idx],
      [leaves[i].layout for i in idx], stencil,
      [compute_dtype(xs[i].dtype) for i in idx], impl,
      [leaves[i].halo for i in idx])
  out: list[jax.Array | None] = [None] * len(xs)
  for i, lap in zip(idx, got):
    out[i] = lap
  return out


def _term(x: jax.Array, leaf: LeafCoupling, stencil: str,
          impl: str | None, lap: jax.Array | None = None) -> jax.Array:
  """``c2 · L(x)`` in :func:`compute_dtype` (``lap``: ``L(x)`` computed
  already)."""
  dtype = compute_dtype(x.dtype)
  if lap is None:
    lap = laplacians([x], [leaf], stencil, impl)[0]
  return _c2.c2_as(leaf.c2, dtype) * lap


def coupled_term(x: jax.Array, leaf: LeafCoupling, stencil: str,
                 impl: str | None,
                 lap: jax.Array | None = None) -> jax.Array | None:
  """``c2 · L(x)`` where the leaf is coupled (0 elsewhere); None if never.

  In :func:`compute_dtype`, and 0 wherever it is not finite (as
  :func:`smoothed` leaves such entries unsmoothed).
  """
  if not needs_laplacian(leaf):
    return None
  term = _term(x, leaf, stencil, impl, lap)
  term = jnp.where(jnp.isfinite(term), term, jnp.zeros((), term.dtype))
  return _select(leaf.use_lap, term, jnp.zeros_like(term))


def smoothed(x: jax.Array, leaf: LeafCoupling, stencil: str,
             impl: str | None, lap: jax.Array | None = None) -> jax.Array:
  """``x + c2·L(x)`` in :func:`compute_dtype`, and ``x`` where that is not
  finite.

  ``x + c2·L(x)`` is not finite where ``x`` is not (an overflowed g², a NaN
  gradient: the entry keeps its inf or NaN, as Adam's second moment), where
  a neighbour is not (the stencil reads inf or NaN), or where the stencil's
  sums overflow (finite values within a few times the dtype's largest). In
  each case the entry is left unsmoothed at that step: one select on values
  the update computes anyway, so finite results are bit-for-bit the plain
  formula's, and XLA still fuses the stencil into the update's loop.
  """
  xc = x.astype(compute_dtype(x.dtype))
  y = xc + _term(x, leaf, stencil, impl, lap)
  return jnp.where(jnp.isfinite(y), y, xc)


def smooth(x: jax.Array, leaf: LeafCoupling, stencil: str, impl: str | None,
           floor: Any = None, divisor: Any = None,
           lap: jax.Array | None = None) -> jax.Array:
  """``max(x + c2·L(x), floor)`` where the leaf is coupled, ``x`` elsewhere.

  As in the reference, the floor applies to every coupled leaf, also where the
  Laplacian is zero because a side of the field is too short. With
  ``divisor`` (a scalar ``d``), ``x / d`` is smoothed, computed as
  ``(x + c2·L(x)) / d`` (L is linear): the Laplacian then reads ``x``, a
  buffer that exists anyway (the new optimizer state), instead of a
  materialised ``x / d``. ``leaf.c2`` and ``leaf.use_lap`` may also be arrays
  that broadcast against ``x`` (one value per stacked leaf).

  Overflow-safe (:func:`smoothed`): half-precision leaves are smoothed in
  float32 and cast back, and an entry where ``x + c2·L(x)`` is not finite
  (``x`` or a neighbour is inf or NaN, or the sums overflow) is left
  unsmoothed, so its update is Adam's.
  """
  div = (lambda y: y) if divisor is None else (
      lambda y: _numerics.divide(y, divisor))
  if leaf.use_lap is False:
    return div(x)
  coupled = x
  if not leaf.spec.too_small:
    coupled = smoothed(x, leaf, stencil, impl, lap)
  coupled = div(coupled)
  if floor is not None:
    coupled = jnp.maximum(coupled, jnp.asarray(floor, coupled.dtype))
  return _select(leaf.use_lap, coupled.astype(x.dtype), div(x))


def _stacked_leaf(group: list[LeafCoupling], ndim: int,
                  dtype) -> LeafCoupling:
  """One :class:`LeafCoupling` for leaves stacked on a new leading axis."""
  spec = _layout.batched(group[0].spec, len(group))
  per_leaf = (len(group),) + (1,) * ndim
  c2 = jnp.stack([jnp.asarray(_c2.c2_as(leaf.c2, dtype), dtype)
                  for leaf in group]).reshape(per_leaf)
  if all(leaf.use_lap is True for leaf in group):
    use_lap = True
  else:
    use_lap = jnp.stack([jnp.asarray(leaf.use_lap) for leaf in group]
                        ).reshape(per_leaf)
  return LeafCoupling(spec, c2, use_lap)


def smooth_leaves(tree: Any, leaves: list[LeafCoupling], stencil: str,
                  impl: str | None, floor: Any = None, divisor: Any = None,
                  finish=None, others: tuple[Any, ...] = ()):
  """``finish(smooth(x), *others)`` for every leaf ``x`` of ``tree``.

  ``others`` are trees of the same structure; ``finish`` (elementwise, by
  default the identity) gets their matching leaves. Coupled leaves of at most
  :data:`BATCH_MAX_SIZE` elements that share shape, dtype and field are
  stacked, smoothed and finished as one array, then split: the stencil is
  compiled once per group instead of once per leaf, which keeps compile time
  and per-op overhead of trees with many small leaves close to Adam's.
  """
  finish = finish or (lambda s, *_: s)
  xs, treedef = jax.tree.flatten(tree)
  other_leaves = [treedef.flatten_up_to(o) for o in others]

  def one(x, leaf, *rest, lap=None):
    return finish(smooth(x, leaf, stencil, impl, floor, divisor, lap), *rest)

  # Small whole leaves that share shape, dtype and field are stacked; the
  # Laplacians of all other leaves are computed together (sharded leaves
  # exchange their halos in one go).
  out = [None] * len(xs)
  groups: dict[Any, list[list[int]]] = {}  # key -> chunks of leaf indices
  alone = []
  for i, (x, leaf) in enumerate(zip(xs, leaves)):
    if (needs_laplacian(leaf) and x.size <= BATCH_MAX_SIZE
        and _sharded_laplacian.route(x, leaf.halo) == "whole"):
      key = (tuple(x.shape), x.dtype, leaf.spec, leaf.use_lap is True,
             tuple((o[i].shape, o[i].dtype) for o in other_leaves))
      chunks = groups.setdefault(key, [[]])
      if len(chunks[-1]) == BATCH_MAX_LEAVES:
        chunks.append([])
      chunks[-1].append(i)
    else:
      alone.append(i)
  laps = laplacians([xs[i] for i in alone], [leaves[i] for i in alone],
                    stencil, impl)
  for i, lap in zip(alone, laps):
    out[i] = one(xs[i], leaves[i], *(o[i] for o in other_leaves), lap=lap)
  for idx in (idx for chunks in groups.values() for idx in chunks):
    if len(idx) == 1:
      i = idx[0]
      out[i] = one(xs[i], leaves[i], *(o[i] for o in other_leaves))
      continue
    stack = lambda ls, idx=idx: jnp.stack([ls[i] for i in idx])
    done = one(stack(xs), _stacked_leaf([leaves[i] for i in idx],
                                        xs[idx[0]].ndim, xs[idx[0]].dtype),
               *(stack(o) for o in other_leaves))
    for j, i in enumerate(idx):
      out[i] = done[j]
  return treedef.unflatten(out)


def map_leaves(fn, tree: Any, *others: Any):
  """Applies ``fn(i, leaf, *other_leaves)`` per leaf of ``tree``.

  ``i`` indexes the list returned by :func:`plan` for the same tree. Returns
  the treedef of ``tree`` and the list of outputs.
  """
  leaves, treedef = jax.tree.flatten(tree)
  other_leaves = [treedef.flatten_up_to(o) for o in others]
  outs = [fn(i, x, *(o[i] for o in other_leaves)) for i, x in enumerate(leaves)]
  return treedef, outs
