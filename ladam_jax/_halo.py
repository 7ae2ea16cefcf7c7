r"""The Laplacian of parameter blocks inside ``jax.shard_map``: halo exchange.

Inside ``jax.shard_map`` every device holds one block of each leaf. Adam is
elementwise, so it gives the same update on a block as on the whole leaf;
the Laplacian couples neighbours, and the periodic stencil applied to a
block alone would wrap around at the block's edges. With the leaves'
``PartitionSpec`` (as given to ``shard_map``'s ``in_specs``), each block
takes one row (and one column) from each of its mesh neighbours with
``jax.lax.ppermute``; the stencil reads shifted slices of the block itself
and, at the block's edges only, the received halos (no padded copy of the
block), so that

.. math::
  L_{\text{block}}(x)_{ij} = L(x)_{ij} \quad \text{for every entry of the block}

with the periodic wrap joining the first and the last block.

Which field a leaf is comes from its layout (:mod:`ladam_jax._layout`): the
leaf is transposed to ``(*batch, *rows, *cols)`` and reshaped to ``(batch,
h, w)``. A mesh axis that splits the *leading* axis of the rows (or of the
columns) cuts the field into contiguous bands of rows (or columns): one halo
row (column) from each neighbour is then enough. A mesh axis on a later
axis of the rows (say ``r1`` of rows ``(r0, r1, r2)``) gives each device
``size(r0)`` runs of consecutive rows, one per index ``o`` of ``r0``: each
run takes its halos from the same run of the neighbouring blocks, except
across the periodic wrap, where run ``o`` of the first block continues run
``o - 1`` of the last one (a roll of the received halos). Batch axes are
independent fields and need no exchange. Two split tensor axes within the
rows (or within the columns) are refused with an error that names the leaf
and the axes.
Where rows and columns are both split, one dimension's halos are
exchanged first and the other's, extended by them, second, so that the
9-point stencil's corners come from the diagonal neighbour. The
halos of all the leaves of one update that cross the same devices travel in
one ``ppermute`` per direction (:func:`block_laplacians`); the same code
runs the blocks of leaves sharded on Explicit and Auto meshes
(:mod:`ladam_jax._sharded_laplacian`).

Without ``partition_specs``, a leaf whose type says it varies over a manual
mesh axis (``jax.shard_map``'s default ``check_vma=True``) may be a block and
is refused with an error that names ``partition_specs``; a leaf that does
not vary is whole on every device. Under ``check_vma=False`` (and
``jax.pmap``) the type says nothing: leaves are taken to be whole, with a
warning. Outside ``shard_map`` none of this runs.
"""


import math
import sys
import warnings
from typing import Any, NamedTuple, Optional, Sequence

import jax
from jax import lax
import jax.numpy as jnp
from jax.sharding import PartitionSpec

from ladam_jax import _layout
from ladam_jax import _stencil
from ladam_jax import _tree_specs

__all__ = ["Context", "Partition", "Block", "Ring", "context", "partitions",
           "leaf_block", "block_laplacians", "partition", "field_axes", "split_axes", "psum",
           "finite_mean", "check_partition_specs", "is_spec_leaf",
           "pmin", "pmax", "gather", "leaf_paths", "mesh_axes",
           "padded_spec",
           "refuse_smoothing_in_shard_map", "ERROR_HINT"]

ERROR_HINT = (
    "Pass `partition_specs`: the PartitionSpecs of the params as given to "
    "shard_map's in_specs (a PartitionSpec, a pytree (prefix) of them or a "
    "callable params -> such a pytree; None or PartitionSpec() for a leaf "
    "that every device holds whole), e.g. partition_specs={'w': "
    "PartitionSpec('x', None), 'b': None}.")


class Context(NamedTuple):
  """The manual (``shard_map``) mesh axes around the current trace."""

  manual: frozenset  # names of the manual mesh axes
  sizes: dict  # every mesh axis name -> size
  vma_checked: Optional[bool]  # shard_map's check_vma (None: unknown)


class Partition(NamedTuple):
  """How one leaf is split over the manual mesh axes (static)."""

  dims: tuple[tuple[str, ...], ...]  # per tensor axis, manual axes splitting it
  blocks: tuple[int, ...]  # per tensor axis, number of blocks
  global_shape: tuple[int, ...]

  @property
  def split(self) -> tuple[str, ...]:
    return tuple(a for axes in self.dims for a in axes)


class Block(NamedTuple):
  """A leaf split over manual mesh axes, as the Laplacian sees it (static).

  ``spec`` is the local block's field (None when the leaf has no field);
  ``rows`` / ``cols`` the :class:`Ring` of the contiguous bands that the
  manual mesh axes cut the field's rows / columns into (None: not cut);
  ``split`` every manual mesh axis that splits the leaf (for reductions over
  the whole leaf).
  """

  spec: Optional[_layout.FieldSpec]
  rows: Optional["Ring"]
  cols: Optional["Ring"]
  split: tuple[str, ...]
  size: int  # the global leaf's number of elements


class Ring(NamedTuple):
  """The blocks along one field dimension, as ``ppermute`` addresses them.

  ``axes`` are the manual mesh axes in the mesh's order (``ppermute`` numbers
  devices over them in that order, whatever the order in the
  PartitionSpec); ``forward`` sends block ``b`` to block ``b + 1`` (block
  numbers in the PartitionSpec's order, ``spec_axes``; periodic).

  ``segments`` is the product of the sizes of the tensor axes flattened
  into the field dimension before the split one (1 when the split axis
  leads). The block then holds ``segments`` runs of consecutive field rows
  (or columns), one per index of those axes: the run of segment ``o`` of
  block ``b`` follows the run of segment ``o`` of block ``b - 1``, and on
  block 0 it follows segment ``o - 1`` of the last block.
  """

  axes: tuple[str, ...]
  forward: tuple[tuple[int, int], ...]
  spec_axes: tuple[str, ...]
  segments: int
  # The split tensor axis is read in reverse (a layout's `flip`): the field
  # sees the blocks in reverse order.
  reverse: bool = False


def _ring(spec_axes: tuple[str, ...], sizes: dict, segments: int,
          reverse: bool = False) -> Ring:
  """The :class:`Ring` of the blocks that ``spec_axes`` (major to minor, as
  in one PartitionSpec entry) cut a dimension into; with ``reverse``, in
  the field's order of a tensor axis read in reverse."""
  mesh_axes = tuple(a for a in sizes if a in spec_axes)
  spec_sizes = [sizes[a] for a in spec_axes]
  n = math.prod(spec_sizes)

  def device(block):  # block number -> ppermute's number of that device
    if reverse:
      block = n - 1 - block
    coords = dict(zip(spec_axes, _unravel(block, spec_sizes)))
    index = 0
    for a in mesh_axes:
      index = index * sizes[a] + coords[a]
    return index

  return Ring(mesh_axes, tuple((device(b), device((b + 1) % n))
                               for b in range(n)), tuple(spec_axes), segments,
              reverse)


def _unravel(index: int, sizes: Sequence[int]) -> list[int]:
  out = []
  for size in reversed(sizes):
    out.append(index % size)
    index //= size
  return out[::-1]


def is_spec_leaf(x) -> bool:
  """One leaf's partition spec: a PartitionSpec, or None (not split)."""
  return x is None or isinstance(x, PartitionSpec)


def check_partition_specs(partition_specs) -> None:
  """Construction-time check of ``partition_specs``' top level."""
  if partition_specs is None or isinstance(partition_specs, PartitionSpec):
    return
  if isinstance(partition_specs, (str, int, float)):
    raise ValueError(
        f"Invalid partition_specs {partition_specs!r}: expected None, a "
        "jax.sharding.PartitionSpec, a pytree (prefix) of them or a "
        "callable params -> such a pytree.")


def _vma_checked(manual: frozenset) -> Optional[bool]:
  """Whether the current ``shard_map`` checks types (``check_vma=True``).

  Read from a public probe: under ``check_vma=True`` the type of
  ``lax.axis_index(name)`` varies over ``name``; under ``check_vma=False``
  (and ``jax.pmap``) no type varies. ``manual``: the manual mesh axes
  (:func:`context`); None if the probe fails.
  """
  try:
    return bool(_varying(lax.axis_index(min(manual))))
  except Exception:  # pylint: disable=broad-except
    return None


def _in_pmap() -> bool:
  """Whether the current trace is a ``jax.pmap``'s body.

  ``jax.pmap`` runs its function in a ``shard_map`` with
  ``check_vma=False`` over replicated or per-device values: every leaf is
  whole on its device (pmap has no way to split a parameter), so nothing
  needs a warning. The mesh and the types cannot tell pmap from such a
  ``shard_map``; the Python stack can: the body is called from JAX's pmap
  module (``jax/_src/pmap.py``, or ``jax/_src/interpreters/pxla.py``'s
  older pmap).
  """
  frame = sys._getframe(1)  # pylint: disable=protected-access
  depth = 0
  while frame is not None and depth < 200:
    name = frame.f_code.co_filename.replace("\\", "/")
    if name.endswith(("jax/_src/pmap.py", "jax/_src/interpreters/pxla.py")):
      return True
    frame, depth = frame.f_back, depth + 1
  return False


def context() -> Optional[Context]:
  """The manual mesh axes of the current trace, or None (no ``shard_map``).

  Reads the abstract mesh only: outside ``shard_map`` this is one Python
  call at trace time and nothing at run time.
  """
  try:
    mesh = jax.sharding.get_abstract_mesh()
  except Exception:  # pylint: disable=broad-except
    return None
  manual = tuple(getattr(mesh, "manual_axes", ()) or ())
  if not manual:
    return None
  return Context(frozenset(manual), dict(mesh.shape), _vma_checked(manual))


def _varying(x) -> frozenset:
  """The manual mesh axes over which ``x``'s type says it varies."""
  try:
    aval = jax.typeof(x)
  except Exception:  # pylint: disable=broad-except
    return frozenset()
  vma = getattr(aval, "vma", None)
  if vma is None:
    mat = getattr(aval, "manual_axis_type", None)
    vma = getattr(mat, "varying", None) if mat is not None else None
  return frozenset(vma or ())


def leaf_paths(tree) -> list[str]:
  """Every leaf's key path, for error messages."""
  return [jax.tree_util.keystr(p) or "<root>"
          for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def padded_spec(spec, ndim: int) -> PartitionSpec:
  """``spec`` as a PartitionSpec of ``ndim`` entries (``None`` appended)."""
  return PartitionSpec(*(tuple(spec) + (None,) * (ndim - len(spec))))


def mesh_axes(entry) -> tuple[str, ...]:
  """The mesh axes of one ``PartitionSpec`` entry, as a tuple."""
  if entry is None:
    return ()
  if isinstance(entry, (tuple, list)):
    return tuple(entry)
  return (entry,)


def partition(pspec: Optional[PartitionSpec], shape: tuple[int, ...],
               ctx: Context, path: str, what: str) -> Optional[Partition]:
  """The leaf's :class:`Partition` from its spec; None if not split."""
  if pspec is None:
    return None
  entries = tuple(pspec)
  if len(entries) > len(shape):
    raise ValueError(
        f"{what}: partition_specs gives {pspec} for the leaf {path} of local "
        f"shape {shape}: more entries than the leaf has axes.")
  entries = entries + (None,) * (len(shape) - len(entries))
  seen = set()
  dims, blocks = [], []
  for axis, entry in enumerate(entries):
    if entry is PartitionSpec.UNCONSTRAINED:
      raise ValueError(
          f"{what}: partition_specs gives P.UNCONSTRAINED for axis {axis} of "
          f"the leaf {path}; inside shard_map every axis is either split by "
          "named mesh axes or not (None).")
    names = mesh_axes(entry)
    manual = []
    for pos, name in enumerate(names):
      if name not in ctx.sizes:
        raise ValueError(
            f"{what}: partition_specs names the mesh axis {name!r} for axis "
            f"{axis} of the leaf {path}, but the mesh has the axes "
            f"{tuple(ctx.sizes)}.")
      if name in seen:
        raise ValueError(
            f"{what}: partition_specs {pspec} of the leaf {path} names the "
            f"mesh axis {name!r} twice.")
      seen.add(name)
      if name in ctx.manual:
        if any(n not in ctx.manual for n in names[:pos]):
          raise ValueError(
              f"{what}: partition_specs {pspec} of the leaf {path} puts the "
              f"manual mesh axis {name!r} after an automatic one on axis "
              f"{axis}: its blocks are not contiguous. Put the manual axes "
              "first in that entry.")
        if ctx.sizes[name] > 1:
          manual.append(name)
    dims.append(tuple(manual))
    blocks.append(math.prod(ctx.sizes[n] for n in manual))
  if not any(dims):
    return None
  return Partition(tuple(dims), tuple(blocks),
                   tuple(s * b for s, b in zip(shape, blocks)))


def partitions(tree: Any, partition_specs: Any, ctx: Optional[Context], *,
               may_couple: Sequence[bool], what: str
               ) -> list[Optional[Partition]]:
  """Per leaf of ``tree``, how it is split over the manual mesh axes.

  ``ctx`` is :func:`context` (None outside ``shard_map``: nothing is split).
  With ``partition_specs=None`` (not given), leaves in ``may_couple`` whose
  type varies over a manual axis are refused (they may be blocks); under
  ``check_vma=False`` the type says nothing, and leaves are taken whole with
  a warning.
  """
  leaves = jax.tree.leaves(tree)
  if ctx is None:
    return [None] * len(leaves)
  paths = leaf_paths(tree)
  if partition_specs is None:
    if ctx.vma_checked:
      for x, path, couple in zip(leaves, paths, may_couple):
        varying = _varying(x) & ctx.manual
        if couple and varying:
          raise ValueError(
              f"{what} runs inside jax.shard_map, and the leaf {path} "
              f"(local shape {tuple(jnp.shape(x))}) varies over the manual "
              f"mesh axes {tuple(sorted(varying))}: it may be one block of a "
              "larger parameter, and the Laplacian couples entries across "
              "blocks (on a block alone it would wrap around at the block's "
              f"edges and give a different update). {ERROR_HINT}")
    elif any(may_couple) and not _in_pmap():
      warnings.warn(
          f"{what} runs inside jax.shard_map with check_vma=False "
          f"(manual mesh axes {tuple(sorted(ctx.manual))}): the values' types "
          "do not say whether a leaf is split, so every leaf is taken to be "
          "whole on each device. If leaves are split, the Laplacian needs "
          f"their specs. {ERROR_HINT}", stacklevel=4)
    return [None] * len(leaves)
  specs = _tree_specs.values_per_leaf(partition_specs, tree,
                                      is_spec_leaf=is_spec_leaf,
                                      name="partition_specs",
                                      none_is_value=True)
  return [partition(s, tuple(jnp.shape(x)), ctx, path, what)
          for x, s, path in zip(leaves, specs, paths)]


def field_axes(ndim: int, layout) -> tuple[tuple[int, ...], tuple[int, ...]]:
  """(rows, cols) tensor axes of the field, as :func:`_layout.field_spec`."""
  axes = (_layout._named_axes(layout, ndim)  # pylint: disable=protected-access
          if isinstance(layout, str) else layout)
  return (tuple(a % ndim for a in axes.rows),
          tuple(a % ndim for a in axes.cols))


def _leading(group: tuple[int, ...], part: Partition, kind: str, path: str,
             layout, what: str, sizes: dict,
             flip: tuple[int, ...] = ()) -> Optional[Ring]:
  """The :class:`Ring` of the manual axes that split the field's ``kind``
  (None when none does)."""
  split = [a for a in group if part.dims[a]]
  if not split:
    return None
  shape = part.global_shape
  if len(split) > 1:
    raise ValueError(
        f"{what}: the leaf {path} (global shape {shape}) is split on the "
        f"axes {tuple(split)} (mesh axes "
        f"{tuple(part.dims[a] for a in split)}), which are all flattened "
        f"into its field's {kind} (the axes {group} under layout "
        f"{layout!r}). A halo exchange handles one split tensor axis per "
        f"field dimension: split only one of them (several mesh axes on one "
        "tensor axis, P(('a', 'b')), are fine), leave the others out of the "
        "field with a ladam_jax.LaplacianLayout (batch axes), or run the "
        "optimizer outside shard_map (under jit with sharded arrays).")
  a = split[0]
  segments = math.prod(shape[b] for b in group[:group.index(a)])
  return _ring(part.dims[a], sizes, segments, reverse=a in flip)


def leaf_block(part: Optional[Partition], local_shape: tuple[int, ...],
               layout, path: str, what: str, ctx: Context) -> Optional[Block]:
  """The :class:`Block` of a split leaf (None when it is not split)."""
  if part is None:
    return None
  size = math.prod(part.global_shape)
  spec = _layout.field_spec(local_shape, layout)
  if spec is None:
    return Block(None, None, None, part.split, size)
  rows, cols = field_axes(len(local_shape), layout)
  # Axes the layout reads in reverse, from the global shape (the local
  # FieldSpec leaves out those of local size 1).
  flip = getattr(_layout.field_spec(part.global_shape, layout), "flip", ())
  return Block(spec,
               _leading(rows, part, "rows", path, layout, what, ctx.sizes,
                        flip),
               _leading(cols, part, "columns", path, layout, what, ctx.sizes,
                        flip),
               part.split, size)


def _name(axes: tuple[str, ...]):
  return axes[0] if len(axes) == 1 else axes


def _to_varying(x: jax.Array, axes: tuple[str, ...]) -> jax.Array:
  """``x`` typed as varying over ``axes`` (for collectives under check_vma)."""
  missing = tuple(a for a in axes if a not in _varying(x))
  ctx = context() if missing else None
  if ctx is not None and ctx.vma_checked:
    if hasattr(lax, "pcast"):
      x = lax.pcast(x, _name(missing), to="varying")
    else:  # JAX before lax.pcast
      x = lax.pvary(x, _name(missing))  # pylint: disable=no-member
  return x


def _field(x: jax.Array, block: Block):
  """The block as ``(B, SR, h[, SC, w])``: field rows (columns) in ``SR``
  (``SC``) runs of consecutive global rows (columns), and the inverse map."""
  spec = block.spec
  flip = getattr(spec, "flip", ())
  if flip:  # the field reads these axes in reverse (Ring.reverse for blocks)
    x = jnp.flip(x, flip)
  identity = spec.perm == tuple(range(x.ndim))
  xt = x if identity else jnp.transpose(x, spec.perm)
  seg = lambda ring: 1 if ring is None else ring.segments
  if len(spec.field) == 1:
    view = (spec.batch, seg(block.rows), spec.field[0] // seg(block.rows))
  else:
    sr, sc = seg(block.rows), seg(block.cols)
    view = (spec.batch, sr, spec.field[0] // sr, sc, spec.field[1] // sc)

  def back(out):
    out = out.reshape(xt.shape)
    if not identity:
      out = jnp.transpose(out, [spec.perm.index(a) for a in range(x.ndim)])
    return jnp.flip(out, flip) if flip else out

  return xt.reshape(view), back


class _Message(NamedTuple):
  """Edge slices that one leaf sends along one ring, both directions."""

  ring: Ring
  axis: int  # the field axis the halos extend
  last: jax.Array  # sent to the next block (its halo below)
  first: jax.Array  # sent to the previous block (its halo above)


def _send_all(messages: list[_Message]) -> list[tuple[jax.Array, jax.Array]]:
  """Per message ``(below, above)``: the halos received from the previous and
  the next block of its ring.

  Messages that travel between the same devices (the same mesh axes and
  ring) in the same dtype, with the same varying mesh axes, are flattened
  and concatenated: one ``ppermute`` per group and direction for the whole
  tree, whatever the number of leaves. On a ring of two blocks both
  directions go to the same device: one ``ppermute`` carries both.
  """
  messages = [m._replace(last=_to_varying(m.last, m.ring.axes),
                         first=_to_varying(m.first, m.ring.axes))
              for m in messages]
  groups: dict[Any, list[int]] = {}
  for i, m in enumerate(messages):
    key = (m.ring.axes, m.ring.forward, m.last.dtype, _varying(m.last))
    groups.setdefault(key, []).append(i)
  out: list[Any] = [None] * len(messages)
  for (axes, forward, _, _), idx in groups.items():
    name = _name(axes)
    backward = [(j, i) for i, j in forward]
    parts = [messages[i] for i in idx]
    flat = lambda xs: (xs[0].reshape(-1) if len(xs) == 1 else
                       jnp.concatenate([x.reshape(-1) for x in xs]))
    # Block b receives the last slices of block b - 1, the first of b + 1.
    lasts, firsts = [m.last for m in parts], [m.first for m in parts]
    if set(backward) == set(forward):  # b - 1 and b + 1 are one block
      both = lax.ppermute(flat(lasts + firsts), name, list(forward))
      half = both.shape[0] // 2
      below, above = both[:half], both[half:]
    else:
      below = lax.ppermute(flat(lasts), name, list(forward))
      above = lax.ppermute(flat(firsts), name, backward)
    offset = 0
    for i, m in zip(idx, parts):
      n = m.last.size
      out[i] = tuple(lax.slice_in_dim(r, offset, offset + n).reshape(
          m.last.shape) for r in (below, above))
      offset += n
  for i, m in enumerate(messages):
    ring = m.ring
    if ring.segments > 1:
      # Across the periodic wrap, segment o continues segment o -/+ 1.
      below, above = out[i]
      b = lax.axis_index(_name(ring.spec_axes))
      n = len(ring.forward)
      if ring.reverse:
        b = n - 1 - b
      below = jnp.where(b == 0, jnp.roll(below, 1, axis=m.axis - 1), below)
      above = jnp.where(b == n - 1, jnp.roll(above, -1, axis=m.axis - 1),
                        above)
      out[i] = (below, above)
  return out


def _edges(f: jax.Array, axis: int):
  """The first and the last slice of ``f`` along ``axis``."""
  n = f.shape[axis]
  return (lax.slice_in_dim(f, 0, 1, axis=axis),
          lax.slice_in_dim(f, n - 1, n, axis=axis))


def _shifted(f: jax.Array, axis: int, d: int, below, above) -> jax.Array:
  """``f`` read one entry back (``d = -1``) or ahead (``d = 1``) along
  ``axis``: the entries that leave the block come from the halos ``below`` /
  ``above`` (one slice each). A padded slice of ``f`` and a select of the
  broadcast halo, which XLA fuses into the stencil's loop (where a
  concatenation would be a copy of the block)."""
  n = f.shape[axis]
  zero = jnp.zeros((), f.dtype)
  config = [(0, 0, 0)] * f.ndim
  if d < 0:
    config[axis] = (1, 0, 0)
    piece = lax.pad(lax.slice_in_dim(f, 0, n - 1, axis=axis), zero, config)
    edge, halo = 0, below
  else:
    config[axis] = (0, 1, 0)
    piece = lax.pad(lax.slice_in_dim(f, 1, n, axis=axis), zero, config)
    edge, halo = n - 1, above
  index = lax.broadcasted_iota(jnp.int32, f.shape, axis)
  return jnp.where(index == edge, jnp.broadcast_to(halo, f.shape), piece)


def block_laplacians(xs: Sequence[jax.Array], blocks: Sequence[Block],
                     stencil: str, dtypes: Sequence[Any]) -> list[jax.Array]:
  """The global Laplacian's values on this device's blocks of leaves.

  ``blocks[i]`` says how ``xs[i]`` is split (:func:`leaf_block`, with a
  field). Each block's own stencil reads shifted slices of the block; only
  the entries at its edges read the halos, one row (column) from each mesh
  neighbour. The halos of all leaves travel together (:func:`_send_all`).
  The 9-point stencil's corners come from the diagonal neighbour: a leaf
  split both ways exchanges one dimension first, and the halos of the
  other dimension then carry the ends of the first one's. Which dimension
  goes first follows one order of the rings for every leaf, so the first
  round holds the halos of one ring (say ``'data'``) and the second those
  of the other (``'model'``): each ring's ``ppermute`` is shared by every
  leaf, whichever of its dimensions it splits (the 5-point stencil reads
  no corner: one round). Sums in ``dtypes[i]`` in the order of
  :func:`ladam_jax._stencil.stencil_sum`, as the unsharded
  implementations.
  """
  plans = [_memory_rows(x, b) for x, b in zip(xs, blocks)]
  # A block that row_plan reads in memory order is not transposed: its
  # field (and halos) stay in the leaf's own row order, (B, R, w).
  fields = [(x.reshape(p.view), lambda out, x=x: out.reshape(x.shape))
            if p is not None else _field(x, b)
            for x, b, p in zip(xs, blocks, plans)]
  fs = [f for f, _ in fields]
  got: list[dict] = [{} for _ in xs]  # "rows" / "cols" -> (below, above)
  axes = [{"rows": 1, "cols": 2} if p is not None else {"rows": 2, "cols": 4}
          for p in plans]
  # Blocks read as memory rows take their corners from either dimension's
  # halos; the others (several runs of columns) from the column halos,
  # extended by the row halos (or by their own wrap).
  rows_views = [p is not None or (f.ndim == 5 and f.shape[3] == 1)
                for f, p in zip(fs, plans)]
  key = lambda ring: (ring.axes, ring.forward)
  rounds: tuple[list, list] = ([], [])
  single = []
  for i, b in enumerate(blocks):
    split = [(kind, ring) for kind, ring in (("rows", b.rows),
                                             ("cols", b.cols))
             if ring is not None]
    if len(split) == 2 and stencil == "9point":
      if rows_views[i]:
        split.sort(key=lambda kr: key(kr[1]))
      rounds[0].append((i, *split[0]))
      rounds[1].append((i, *split[1]))
    else:
      single.extend((i, kind, ring) for kind, ring in split)
  # A leaf split one way joins the round that already sends on its ring.
  late = {key(r) for _, _, r in rounds[1]} - {key(r) for _, _, r in rounds[0]}
  for i, kind, ring in single:
    rounds[1 if key(ring) in late else 0].append((i, kind, ring))

  def message(i, kind, ring):
    f = fs[i]
    axis = axes[i][kind]
    other = "cols" if kind == "rows" else "rows"
    ends = got[i].get(other)
    if ends is None and kind == "cols" and not rows_views[i]:
      ends = _wrap(f, axes[i]["rows"])  # never read by a 5-point stencil
    if ends is None:
      first, last = _edges(f, axis)
    else:  # the edges of the block extended by the other dimension's halos
      first, last = (jnp.concatenate(parts, axis=axes[i][other])
                     for parts in zip(*(_edges(g, axis)
                                        for g in (ends[0], f, ends[1]))))
    return _Message(ring, axis, last, first)

  for phase in rounds:
    if phase:
      msgs = [message(*m) for m in phase]
      for (i, kind, _), halos in zip(phase, _send_all(msgs)):
        got[i][kind] = halos
  out = []
  for i, ((f, back), dtype) in enumerate(zip(fields, dtypes)):
    plan, rows, cols = plans[i], got[i].get("rows"), got[i].get("cols")
    if plan is None:
      lap = _stencil_block(f, rows, cols, stencil, dtype)
    else:
      lap = _memory_stencil(f, plan.runs, rows, cols, stencil, dtype)
    out.append(back(lap))
  return out


def _memory_rows(x: jax.Array, block: Block) -> Optional[_stencil.RowPlan]:
  """The :class:`ladam_jax._stencil.RowPlan` of a block whose field rows
  are its memory rows in some order (a Flax conv kernel ``(kh, kw, in,
  out)``: field rows ``(in, kh, kw)``), or None. Such a block is read in
  memory order, as ``'flat'`` reads a whole leaf, with the halos at its
  edges: its field rows are whole, or a band of them (split on the
  leading row axis, whose first and last field rows are its first and
  last memory rows); its columns likewise."""
  if block.spec is None or any(
      ring is not None and ring.segments != 1
      for ring in (block.rows, block.cols)):
    return None
  return _stencil.row_plan(tuple(x.shape), block.spec)  # None unless 2-D


def _wrap(f: jax.Array, axis: int):
  """The block's own periodic wrap as ``(below, above)`` halos."""
  first, last = _edges(f, axis)
  return last, first


def _neighbour(f: jax.Array, dr: int, dc: int, rows, cols) -> jax.Array:
  """``f`` read at the offset ``(dr, dc)`` of the block extended by its
  halos: one padded 2-D slice of ``f`` (each neighbour its own, so that
  XLA fuses every one into the stencil's loop instead of materialising a
  shared shifted copy), with selects of the broadcast halo row and column
  at the block's edges (those are slice-sized)."""
  h, w = f.shape[2], f.shape[4]
  below, above = rows
  zero = jnp.zeros((), f.dtype)
  starts, limits, config = [0] * 5, list(f.shape), [(0, 0, 0)] * 5
  for axis, d in ((2, dr), (4, dc)):
    if d < 0:
      limits[axis] -= 1
      config[axis] = (1, 0, 0)
    elif d > 0:
      starts[axis] = 1
      config[axis] = (0, 1, 0)
  out = lax.pad(lax.slice(f, starts, limits), zero, config)
  if dc:
    # Column halo at rows r + dr: the neighbour's edge column of its
    # row-extended block, or the block's own wrap.
    if cols is not None:
      col = lax.slice_in_dim(cols[0 if dc < 0 else 1], 1 + dr, 1 + dr + h,
                             axis=2)
    else:
      j = w - 1 if dc < 0 else 0
      own = lambda g: lax.slice_in_dim(g, j, j + 1, axis=4)
      col = own(f) if dr == 0 else _shifted(own(f), 2, dr, own(below),
                                            own(above))
    index = lax.broadcasted_iota(jnp.int32, f.shape, 4)
    out = jnp.where(index == (0 if dc < 0 else w - 1),
                    jnp.broadcast_to(col, f.shape), out)
  if dr:
    row = below if dr < 0 else above
    if dc:  # the halo row read one column over, its ends from the corners
      if cols is not None:
        k = 0 if dr < 0 else h + 1
        corner = lambda c: lax.slice_in_dim(c, k, k + 1, axis=2)
        ends = (corner(cols[0]), corner(cols[1]))
      else:
        ends = (lax.slice_in_dim(row, w - 1, w, axis=4),
                lax.slice_in_dim(row, 0, 1, axis=4))
      row = _shifted(row, 4, dc, *ends)
    index = lax.broadcasted_iota(jnp.int32, f.shape, 2)
    out = jnp.where(index == (0 if dr < 0 else h - 1),
                    jnp.broadcast_to(row, f.shape), out)
  return out


def _memory_stencil(view, runs, rows, cols, stencil, dtype):
  """The stencil on a ``(B, R, w)`` view of memory rows, run by run, with
  its halos (``rows`` None: the field's rows are whole; ``cols`` None: its
  columns are)."""
  if rows is not None:
    runs = _stencil.halo_runs(runs, view.shape[1])
  return _stencil.run_rows(view, runs, stencil, dtype, cols, rows)


def _stencil_block(f, rows, cols, stencil, dtype):
  """The stencil on one block ``(B, SR, n)`` or ``(B, SR, h, SC, w)`` with
  its halos (``rows`` None: the block's own wrap; ``cols`` None: the
  block's own wrap of each row)."""
  cast = lambda a: a.astype(dtype)
  if f.ndim == 5 and f.shape[3] == 1:  # one run of columns: memory rows
    b, sr, h, _, w = f.shape
    flat = lambda halos: None if halos is None else tuple(
        a.reshape(b * sr, a.shape[2], a.shape[4]) for a in halos)
    out = _memory_stencil(f.reshape(b * sr, h, w), _stencil.band_runs(h),
                          flat(rows), flat(cols), stencil, dtype)
    return out.reshape(f.shape)
  rows = rows if rows is not None else _wrap(f, 2)
  if f.ndim == 3:
    return (cast(_shifted(f, 2, -1, *rows))
            + cast(_shifted(f, 2, 1, *rows))) - 2 * cast(f)
  at = lambda dr, dc: cast(_neighbour(f, dr, dc, rows, cols))
  return _stencil.stencil_sum(
      stencil, dtype, cast(f), at(-1, 0), at(1, 0), at(0, -1), at(0, 1),
      lambda: (at(-1, -1), at(-1, 1), at(1, -1), at(1, 1)))


def split_axes(tree: Any, partition_specs: Any, what: str
               ) -> list[tuple[str, ...]]:
  """Per leaf of ``tree``, the manual mesh axes that split it (reductions
  over whole leaves psum over them); all empty outside ``shard_map``."""
  ctx = context()
  n = len(jax.tree.leaves(tree))
  parts = partitions(tree, partition_specs, ctx, may_couple=[True] * n,
                     what=what)
  return [() if p is None else p.split for p in parts]


def psum(x: jax.Array, axes: tuple[str, ...]) -> jax.Array:
  """``x`` summed over the mesh ``axes`` (``x`` itself when there are none)."""
  if not axes:
    return x
  return lax.psum(_to_varying(x, axes), _name(axes))


def finite_mean(x: jax.Array, block: Optional[Block] = None) -> jax.Array:
  """The mean of the finite entries of the whole leaf (0 if none).

  Of the global leaf where ``x`` is one block of it (``block``), else of
  ``x``; without overflow: the entries are scaled by a power of two no
  smaller than their count (exact) before they are summed. Outside
  ``shard_map`` it equals ``jnp.mean(x)`` bit-for-bit where every entry is
  finite and the sum does not overflow.
  """
  split = () if block is None else block.split
  size = x.size if not split else block.size
  dtype = x.dtype
  x = x.astype(jnp.promote_types(x.dtype, jnp.float32))  # as jnp.mean
  finite = jnp.isfinite(x)
  scale = float(2 ** -math.ceil(math.log2(max(size, 1))))
  total = psum(jnp.sum(jnp.where(finite, x * scale, jnp.zeros((), x.dtype))),
               split)
  count = psum(jnp.sum(finite, dtype=jnp.int32), split)
  # jnp.mean's own division by the size (n / count is exactly 1 where all
  # entries are finite), rescaled to the finite entries' count.
  mean = total / jnp.asarray(size, x.dtype)
  fraction = size / jnp.maximum(count, 1).astype(x.dtype)
  return (mean / scale * fraction).astype(dtype)


def refuse_smoothing_in_shard_map(tree: Any, what: str) -> None:
  """Raises if the FFT-based Laplacian smoothing would run on blocks.

  ``(I - sigma·L)^{-1}`` couples every entry of a field with every other:
  a halo exchange cannot compute it. Refused inside ``shard_map`` wherever a
  leaf's type varies over a manual mesh axis; under ``check_vma=False``
  (where the type cannot tell) with a warning that leaves are taken whole.
  """
  ctx = context()
  if ctx is None:
    return
  if not ctx.vma_checked:
    if _in_pmap():
      return  # under jax.pmap every leaf is whole on its device
    warnings.warn(
        f"{what} runs inside jax.shard_map with check_vma=False: "
        "every leaf is taken to be whole on each device. The Laplacian "
        "smoothing solve needs whole fields: if leaves are split, run it "
        "outside shard_map (under jit with sharded arrays).", stacklevel=4)
    return
  for x, path in zip(jax.tree.leaves(tree), leaf_paths(tree)):
    varying = _varying(x) & ctx.manual
    if varying:
      raise ValueError(
          f"{what} cannot run inside jax.shard_map on split leaves: the leaf "
          f"{path} (local shape {tuple(jnp.shape(x))}) varies over the manual "
          f"mesh axes {tuple(sorted(varying))}, and the smoothing solve "
          "(I - sigma·L)^{-1} couples every entry of a field with every "
          "other, which a halo exchange cannot give. Run it outside "
          "shard_map: under jax.jit with the params sharded "
          "(NamedSharding), where it keeps the sharding; or use LAdam "
          "(ladam_jax.ladam), whose explicit Laplacian takes "
          "`partition_specs` inside shard_map.")


def pmin(x: jax.Array, axes: tuple[str, ...]) -> jax.Array:
  """``x``'s minimum over the mesh ``axes`` (``x`` when there are none)."""
  return lax.pmin(_to_varying(x, axes), _name(axes)) if axes else x


def pmax(x: jax.Array, axes: tuple[str, ...]) -> jax.Array:
  """``x``'s maximum over the mesh ``axes`` (``x`` when there are none)."""
  return lax.pmax(_to_varying(x, axes), _name(axes)) if axes else x


def gather(x: jax.Array, axes: tuple[str, ...]) -> jax.Array:
  """The blocks of a 1-D ``x`` over the mesh ``axes``, concatenated."""
  if not axes:
    return x
  return lax.all_gather(_to_varying(x, axes), _name(axes), tiled=True)
