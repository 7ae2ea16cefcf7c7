r"""The Laplacian of many leaves at once, sharded or not: one halo path.

Every coupled transform computes :math:`L` of all its coupled leaves in one
call of :func:`laplacians`. A leaf whose blocks live on several devices
takes the same path on every mesh: each device runs the stencil on its
block as on one device (shifted slices of the block, no padded copy) and
only the entries at the block's edges read the halos, one row (column) from
each mesh neighbour, received with ``jax.lax.ppermute``
(:func:`ladam_jax._halo.block_laplacians`). The halos of all leaves that
cross the same mesh axes travel together: one ``ppermute`` per ring of
devices and direction per update; where leaves are split on both field
axes, in two rounds, one ring after the other (the second ring's halos
carry the corners that the first ring's brought).

How the blocks are known:

- inside ``jax.shard_map`` the leaves are blocks already, described by
  ``partition_specs`` (:mod:`ladam_jax._halo`);
- on an Explicit mesh the sharding is each leaf's type: one ``jax.shard_map``
  over the mesh runs every sharded leaf's stencil;
- on an Auto mesh (inside ``jax.set_mesh``) XLA's partitioner chooses the
  sharding: one ``custom_partitioning`` op over the leaves reads its choice
  at compile time and runs the same per-device code;
- on one device, or with several devices but no mesh in context, each leaf
  is computed whole (:func:`ladam_jax._laplacian.leaf_laplacian`; with
  several devices the ``'shift'`` stencil, whose periodic padding XLA's
  partitioner turns into halo exchanges).

A sharding the halo exchange cannot take is first moved to one it can
(:func:`haloable_spec`): a mesh axis that does not divide its tensor axis is
dropped (that axis is gathered, as XLA pads such splits), and of several
split tensor axes flattened into one field axis the later ones move onto the
first where the sizes divide (an all-to-all), else they are dropped. The
result has the leaf's sharding.
"""


import functools
import math
from typing import Any, Optional, Sequence

import jax
from jax.experimental.custom_partitioning import custom_partitioning
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from ladam_jax import _halo
from ladam_jax import _laplacian
from ladam_jax import _layout
from ladam_jax import _stencil
from ladam_jax import _validation
from ladam_jax._types import Stencil

__all__ = ["laplacians", "laplacian", "haloable_spec", "route",
           "auto_mesh"]


def auto_mesh():
  """The mesh in context (``jax.set_mesh``) where XLA chooses shardings: a
  non-trivial mesh with an Auto axis outside ``shard_map``; else None."""
  if jax.device_count() == 1:
    return None
  try:
    mesh = jax.sharding.get_abstract_mesh()
  except Exception:  # pylint: disable=broad-except
    return None
  if mesh is None or mesh.empty or math.prod(mesh.axis_sizes) == 1:
    return None
  if getattr(mesh, "manual_axes", ()):
    return None
  auto = getattr(jax.sharding.AxisType, "Auto", None)
  if not any(t == auto for t in getattr(mesh, "axis_types", ())):
    return None
  return mesh


def route(x: jax.Array, block: Optional[_halo.Block]) -> str:
  """How :func:`laplacians` computes one leaf: ``'block'`` (inside
  ``shard_map``), ``'explicit'``, ``'auto'`` or ``'whole'``."""
  if block is not None:
    return "block"
  if _laplacian.explicit_sharding(x) is not None:
    return "explicit"
  if auto_mesh() is not None:
    return "auto"
  return "whole"


def laplacians(xs: Sequence[jax.Array],
               specs: Sequence[_layout.FieldSpec],
               layouts: Sequence[Any], stencil: str, dtypes: Sequence[Any],
               impl: Optional[str] = None,
               blocks: Optional[Sequence[Optional[_halo.Block]]] = None, *,
               in_fused_maths: bool = True,
               what: str = "the optimizer") -> list[jax.Array]:
  """:math:`L` of every leaf ``xs[i]`` (field ``specs[i]``, not too small,
  from ``layouts[i]``), summed in ``dtypes[i]``.

  ``blocks[i]`` (inside ``shard_map``) says how the leaf is split; ``impl``
  is the whole-leaf implementation (:func:`ladam_jax._laplacian.resolve_impl`).
  Leaves are grouped by :func:`route`; each group's halos travel together.
  """
  n = len(xs)
  blocks = list(blocks) if blocks is not None else [None] * n
  out: list[Any] = [None] * n
  groups: dict[Any, list[int]] = {}
  for i, (x, block) in enumerate(zip(xs, blocks)):
    kind = route(x, block)
    if kind == "whole":
      out[i] = _laplacian.leaf_laplacian(x, specs[i], stencil, impl,
                                         dtypes[i],
                                         in_fused_maths=in_fused_maths)
    else:
      mesh = (_laplacian.explicit_sharding(x).mesh if kind == "explicit"
              else None)
      groups.setdefault((kind, mesh), []).append(i)
  for (kind, mesh), idx in groups.items():
    pick = lambda seq, idx=idx: tuple(seq[i] for i in idx)
    if kind == "block":
      got = _halo.block_laplacians(pick(xs), pick(blocks), stencil,
                                   pick(dtypes))
    elif kind == "explicit":
      got = _explicit(pick(xs), mesh, pick(specs), pick(layouts), stencil,
                      pick(dtypes), what)
    else:
      got = _auto(pick(xs), (pick(specs), pick(layouts), stencil,
                             tuple(jnp.dtype(d) for d in pick(dtypes)),
                             what))
    for i, y in zip(idx, got):
      out[i] = y
  return out


def haloable_spec(spec: P, shape: tuple[int, ...], layout,
                  sizes: dict) -> P:
  """``spec`` (padded to the leaf's rank) moved to the nearest sharding the
  halo exchange takes (see the module docs)."""
  entries = list(_halo.padded_spec(spec, len(shape)))
  for a, entry in enumerate(entries):
    axes = _halo.mesh_axes(entry)
    if axes and shape[a] % math.prod(sizes[m] for m in axes):
      entries[a] = None  # XLA would pad this split: gather that axis
  rows, cols = _halo.field_axes(len(shape), layout)
  for group in (rows, cols):
    split = [a for a in group if entries[a] is not None]
    if len(split) > 1:
      lead = split[0]
      axes = tuple(m for a in split for m in _halo.mesh_axes(entries[a]))
      for a in split[1:]:
        entries[a] = None
      if shape[lead] % math.prod(sizes[m] for m in axes) == 0:
        entries[lead] = axes if len(axes) > 1 else axes[0]
  return P(*entries)


def _body(xs, pspecs, specs, layouts, stencil, dtypes, sizes, what):
  """The per-device Laplacians of blocks split by ``pspecs`` over a mesh of
  axis ``sizes`` (every axis manual): blocks by their halos, leaves that
  are whole on each device as on one device."""
  ctx = _halo.Context(frozenset(sizes), dict(sizes), False)
  out: list[Any] = [None] * len(xs)
  split = []
  for i, (x, pspec) in enumerate(zip(xs, pspecs)):
    shape = tuple(x.shape)
    part = _halo.partition(pspec, shape, ctx, f"<leaf {i}>", what)
    block = _halo.leaf_block(part, shape, layouts[i], f"<leaf {i}>", what,
                             ctx)
    if block is None:
      out[i] = _laplacian.leaf_laplacian(x, specs[i], stencil, "flat",
                                         dtypes[i], in_fused_maths=True)
    else:
      split.append((i, block))
  got = _halo.block_laplacians([xs[i] for i, _ in split],
                               [b for _, b in split], stencil,
                               [dtypes[i] for i, _ in split])
  for (i, _), y in zip(split, got):
    out[i] = y
  return tuple(out)


def _explicit(xs, mesh, specs, layouts, stencil, dtypes, what):
  """One ``jax.shard_map`` over the Explicit ``mesh`` for all the leaves."""
  sizes = dict(zip(mesh.axis_names, mesh.axis_sizes))
  typed, moved = [], []
  for x, layout in zip(xs, layouts):
    spec = _halo.padded_spec(_laplacian.explicit_sharding(x).spec, x.ndim)
    fixed = haloable_spec(spec, tuple(x.shape), layout, sizes)
    typed.append(spec)
    moved.append(fixed)
  xs = [x if s == m else jax.sharding.reshard(x, m)
        for x, s, m in zip(xs, typed, moved)]
  body = functools.partial(_body, pspecs=tuple(moved), specs=specs,
                           layouts=layouts, stencil=stencil, dtypes=dtypes,
                           sizes=sizes, what=what)
  outs = jax.shard_map(lambda *a: body(a), mesh=mesh,
                       in_specs=tuple(moved), out_specs=tuple(moved),
                       check_vma=False)(*xs)
  return [y if s == m else jax.sharding.reshard(y, s)
          for y, s, m in zip(outs, typed, moved)]


# --------------------------------------------------------------------------
# Auto meshes: a custom_partitioning op reads the partitioner's choice
# --------------------------------------------------------------------------


def _cp_specs(layouts, mesh, arg_shapes):
  """The mesh's axis sizes and, per operand, the spec the op computes it
  with: the partitioner's choice made haloable (no mesh names: whole)."""
  sizes = dict(zip(mesh.axis_names, mesh.axis_sizes))
  out = []
  for a, layout in zip(arg_shapes, layouts):
    shape = tuple(a.shape)
    spec = getattr(a.sharding, "spec", None)
    spec = P() if spec is None or not sizes else spec
    out.append(haloable_spec(spec, shape, layout, sizes))
  return sizes, out


def _cp_partition(static, mesh, arg_shapes, result_shape):
  del result_shape
  specs, layouts, stencil, dtypes, what = static
  sizes, pspecs = _cp_specs(layouts, mesh, arg_shapes)
  shardings = tuple(NamedSharding(mesh, s) for s in pspecs)

  def lower(*xs):
    return _body(xs, pspecs, specs, layouts, stencil, dtypes, sizes, what)

  return mesh, lower, shardings, shardings


def _cp_infer(static, mesh, arg_shapes, result_shape):
  del static, result_shape
  return tuple(a.sharding for a in arg_shapes)


def _cp_rule(static, mesh, operand_types, result_types):
  del static, mesh, result_types
  factors = [" ".join(f"l{i}a{k}" for k in range(len(t.shape)))
             for i, t in enumerate(operand_types)]
  return ", ".join(factors) + " -> " + ", ".join(factors)


def _whole(static, *xs):
  specs, _, stencil, dtypes, _ = static
  return tuple(_laplacian.leaf_laplacian(x, s, stencil, "flat", d,
                                         in_fused_maths=True)
               for x, s, d in zip(xs, specs, dtypes))


_jit_whole = jax.jit(_whole, static_argnums=(0,))


@functools.partial(custom_partitioning, static_argnums=(0,))
def _halo_op(static, *xs):
  """:func:`_whole` as an op whose partitioning rule exchanges halos."""
  # Jitted: custom_partitioning takes no closed-over constants.
  return _jit_whole(static, *xs)


_halo_op.def_partition(partition=_cp_partition,
                       infer_sharding_from_operands=_cp_infer,
                       propagate_user_sharding=None, sharding_rule=_cp_rule)


def _auto(xs, static):
  """The leaves' Laplacians as one :func:`_halo_op`; under ``jax.vmap`` the
  mapped axis is a batch axis of each leaf's fields (the op has no batching
  rule of its own), computed whole with ``'shift'``."""

  @jax.custom_batching.custom_vmap
  def call(*xs):
    return _halo_op(static, *xs)

  @call.def_vmap
  def _(axis_size, in_batched, *xs):
    specs, _, stencil, dtypes, _ = static
    outs = []
    for x, batched, spec, dtype in zip(xs, in_batched, specs, dtypes):
      x = x if batched else jnp.broadcast_to(x, (axis_size,) + x.shape)
      outs.append(_laplacian.leaf_laplacian(
          x, _layout.batched(spec, axis_size), stencil, "shift", dtype,
          in_fused_maths=True))
    return tuple(outs), (True,) * len(outs)

  return call(*xs)


def laplacian(x: jax.Array, stencil: Stencil = "9point",
              layout: _layout.LeafLayout = "flax") -> jax.Array:
  """The periodic discrete Laplacian of one leaf, as the optimizers apply it.

  A 1-D leaf is a periodic line (kernel ``[1, -2, 1]``, zero if shorter than
  4). A leaf of 2 or more dims is seen as a periodic 2-D field (see
  ``layout``) and zero if a side of that field is shorter than 3. 0-d leaves
  give zero. A sharded leaf keeps its sharding: its blocks exchange halos
  (one row or column with each mesh neighbour) and no device gathers it.

  Args:
    x: the leaf (any shape, floating dtype).
    stencil: ``'9point'`` (isotropic, default) or ``'5point'``.
    layout: ``'flax'`` (default: a Flax kernel ``(*spatial, in, out)`` gets the
      field the reference gives the PyTorch weight ``(out, in, *spatial)``),
      ``'torch'`` (``x.reshape(x.shape[0], -1)``), a
      :class:`ladam_jax.LaplacianLayout`, or None (no smoothing: zeros).

  Returns:
    An array of ``x``'s shape and dtype.

  Examples:
    >>> import jax.numpy as jnp
    >>> import ladam_jax
    >>> x = jnp.zeros((4, 4)).at[1, 1].set(6.0)
    >>> ladam_jax.laplacian(x)[0:3, 0:3]
    Array([[  1.,   4.,   1.],
           [  4., -20.,   4.],
           [  1.,   4.,   1.]], dtype=float32)
  """
  _validation.check_choice("stencil", stencil, _stencil.STENCILS)
  _layout.check_leaf_layout(layout)
  x = jnp.asarray(x)
  return _jitted_laplacian(x, stencil, layout, _laplacian.forced_impl())


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _jitted_laplacian(x, stencil, layout, impl):
  spec = _layout.field_spec(x.shape, layout)
  if spec is None or spec.too_small:
    return jnp.zeros_like(x)
  return laplacians([x], [spec], [layout], stencil, [x.dtype], impl,
                    in_fused_maths=False, what="laplacian")[0]
