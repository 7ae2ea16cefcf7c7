r"""The discrete periodic Laplacian's stencils, and fields as memory rows.

The layer below every implementation of :math:`L` (the XLA ones in
:mod:`ladam_jax._laplacian`, the Pallas kernels in :mod:`ladam_jax._pallas`):
the stencil weights, the weighted sum in the one order every implementation
uses, the stability bound on c2, and the static plans that see a 2-D field
as contiguous memory rows.

.. math::
  K_9 = \frac{1}{6}\begin{pmatrix}1&4&1\\4&-20&4\\1&4&1\end{pmatrix},\qquad
  K_5 = \begin{pmatrix}0&1&0\\1&-4&1\\0&1&0\end{pmatrix},\qquad
  K_1 = (1, -2, 1).
"""


import functools
import math
from typing import NamedTuple

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from ladam_jax import _layout

__all__ = ["STENCILS", "WEIGHTS", "stability_bound", "kernel_2d",
           "stencil_sum", "flat_rows", "run_rows", "in_bounds_runs",
           "halo_runs", "band_runs", "row_neighbours",
           "RowPlan", "row_plan"]

STENCILS = ("9point", "5point")

# The largest c2 for which x + c2·L(x) damps every Fourier mode instead of
# flipping its sign: 1 + c2·λ >= 0 for the most negative eigenvalue λ of L on
# the periodic grid (9-point: -16/3, 5-point: -8, 1-D [1, -2, 1]: -4).
_C2_BOUNDS = {("9point", 2): 3 / 16, ("5point", 2): 1 / 8,
              ("9point", 1): 1 / 4, ("5point", 1): 1 / 4}


def stability_bound(stencil: str, field_ndim: int = 2) -> float:
  """The largest stable c2 of ``stencil`` on 1-D or 2-D fields.

  Above it, ``x + c2·L(x)`` turns the highest-frequency mode of ``x``
  negative (multiplier ``1 + c2·λ_min``, with ``λ_min`` = -16/3 for the
  9-point stencil, -8 for the 5-point one and -4 for 1-D leaves), so a
  smoothed variance can go below its floor and the step explodes.

  Examples:
    >>> import ladam_jax
    >>> ladam_jax.stability_bound('9point'), ladam_jax.stability_bound('5point')
    (0.1875, 0.125)
    >>> ladam_jax.stability_bound('9point', field_ndim=1)
    0.25
  """
  return _C2_BOUNDS[stencil, min(max(field_ndim, 1), 2)]

# Stencil weights as the reference builds them (Python doubles rounded to the
# leaf dtype): centre, face, corner.
WEIGHTS = {
    "9point": (-20 / 6, 4 / 6, 1 / 6),
    "5point": (-4.0, 1.0, 0.0),
}


def kernel_2d(stencil: str, dtype) -> jax.Array:
  centre, face, corner = WEIGHTS[stencil]
  k = np.array([[corner, face, corner],
                [face, centre, face],
                [corner, face, corner]], dtype=np.float64)
  return jnp.asarray(k, dtype=dtype)


def stencil_sum(stencil, dtype, centre, up, down, left, right, corners=None):
  """The weighted stencil sum, in the same order for every implementation."""
  c, fw, kw = (jnp.asarray(x, dtype) for x in WEIGHTS[stencil])
  out = c * centre + fw * ((up + down) + (left + right))
  if stencil == "9point":
    up_left, up_right, down_left, down_right = corners()
    out = out + kw * ((up_left + up_right) + (down_left + down_right))
  return out


def flat_rows(flat: jax.Array, w: int, start: int, n: int,
              offset: int = 0) -> jax.Array:
  """Memory rows ``start .. start+n-1`` of ``flat`` ``(b, R*w)``, each entry
  read ``offset`` elements over in the flattened rows, as ``(b, n, w)``.

  Where ``k + offset`` leaves the buffer (``k - 1`` of the first element,
  ``k + 1`` of the last) the slice is padded with a zero that the caller's
  select on the column discards; static slices and a pad, which XLA fuses
  into the stencil's loop.
  """
  b, size = flat.shape
  lo, hi = start * w + offset, (start + n) * w + offset
  piece = lax.slice_in_dim(flat, max(lo, 0), min(hi, size), axis=1)
  if lo < 0 or hi > size:
    piece = lax.pad(piece, jnp.zeros((), flat.dtype),
                    ((0, 0, 0), (max(-lo, 0), max(hi - size, 0), 0)))
  return piece.reshape(b, n, w)


def run_rows(view: jax.Array, runs, stencil: str, dtype, halos=None,
             row_halos=None) -> jax.Array:
  """The Laplacian of a ``(B, R, w)`` view, run by run ``(start, n, up,
  down)`` (the runs cover the rows in order), as one ``(B, R, w)`` array.

  Every neighbour is a slice of the flattened rows: column ``j ± 1`` is the
  flat element ``k ± 1``, except at ``j = 0`` / ``j = w - 1`` where a select
  takes the wrapped element of the same row instead (or, with ``halos``,
  the entry of the neighbouring block: ``(left, right)``, each ``(B, R, 1)``
  in the view's row order, the last column of the block before and the
  first of the block after). Left of the first element and right of the
  last, where ``k ± 1`` leaves the buffer, the slice is padded with one
  element that this select discards, so the whole leaf is static slices,
  selects and a concatenation, which XLA fuses into its consumer (a gather
  of the edge rows would be a separate kernel).

  With ``row_halos`` ``(below, above)``, each ``(B, 1, w)``: a run whose
  ``up`` is ``-1`` reads ``below`` as its rows above, one whose ``down`` is
  ``R`` reads ``above`` (the rows of the neighbouring blocks of a field
  split by rows). The 9-point stencil's corners, the ends of those rows
  one column over, come from one of the two: ``halos`` that cover the
  rows ``-1 .. R``, ``(B, R + 2, 1)``, or ``row_halos`` that cover the
  columns ``-1 .. w``, ``(B, 1, w + 2)`` (told apart by their shapes).

  A run of several rows that would read one element outside the buffer
  gives its first or last row a run of its own (:func:`in_bounds_runs`).
  """
  b, h, w = view.shape
  flat = view.reshape(b, h * w)
  col = lax.broadcasted_iota(jnp.int32, (1, 1, w), 2)
  first, last = col == 0, col == w - 1
  col_ext = halos is not None and halos[0].shape[1] == h + 2
  row_ext = row_halos is not None and row_halos[0].shape[2] == w + 2
  zero = jnp.zeros((), view.dtype)

  def rows(start, n, offset=0):
    if 0 <= start < h:
      return flat_rows(flat, w, start, n, offset).astype(dtype)
    g = row_halos[0 if start < 0 else 1]  # one halo row
    if row_ext:  # (B, 1, w + 2): columns -1 .. w
      return lax.slice_in_dim(g, 1 + offset, 1 + offset + w,
                              axis=2).astype(dtype)
    if offset:  # read one column over; the select replaces the padding
      lo, hi = (0, w - 1) if offset < 0 else (1, w)
      g = lax.pad(lax.slice_in_dim(g, lo, hi, axis=2), zero,
                  ((0, 0, 0), (0, 0, 0),
                   (1, 0, 0) if offset < 0 else (0, 1, 0)))
    return g.astype(dtype)

  def edge(start, n, left):
    """The column that rows ``start ..`` read left of ``j = 0`` (``left``)
    or right of ``j = w - 1``: the row's own wrapped entry, or the
    neighbouring block's column."""
    inside = 0 <= start < h
    if halos is not None and (inside or col_ext):
      k = start + 1 if col_ext else start
      return lax.slice_in_dim(halos[0 if left else 1], k, k + n, axis=1)
    if inside:
      j = w - 1 if left else 0
      return view[:, start:start + n, j:j + 1]
    g = row_halos[0 if start < 0 else 1]
    if row_ext:  # a corner: the end of the column-extended halo row
      return g[:, :, :1] if left else g[:, :, w + 1:]
    if halos is not None:
      raise AssertionError(
          "run_rows: the corners of split rows and columns need extended "
          "halos (rows -1 .. R, or columns -1 .. w)")
    j = w - 1 if left else 0  # columns whole: the halo row's own wrap
    return g[:, :, j:j + 1]

  def left(start, n):
    return jnp.where(first, edge(start, n, True).astype(dtype),
                     rows(start, n, -1))

  def right(start, n):
    return jnp.where(last, edge(start, n, False).astype(dtype),
                     rows(start, n, 1))

  return jnp.concatenate([stencil_sum(
      stencil, dtype, rows(start, n), rows(u, n), rows(d, n),
      left(start, n), right(start, n),
      lambda u=u, d=d, n=n: (left(u, n), right(u, n), left(d, n),
                             right(d, n)))
                          for start, n, u, d in in_bounds_runs(
                              runs, h, stencil == "9point")], axis=1)


# XLA:CPU fuses a concatenation of at most 8 operands into its consumer;
# with more, the runs are computed into a temporary copy of the leaf.
FUSED_RUNS = 8


def in_bounds_runs(runs, rows: int, corners: bool):
  """``runs`` with the first and the last row of a run of several rows run
  alone where the run would read one element outside the flat buffer.

  :func:`run_rows` reads column ``j - 1`` of the first memory row and
  ``j + 1`` of the last through a padded slice (:func:`flat_rows`). Inside
  a long run that padding becomes a masked, bounds-checked load in every
  vector of the fused loop (on x86 CPUs, a dozen of the 9-point loop's
  seventy-odd instructions per vector). With the edge row peeled into a
  run of its own, the long run reads in bounds and only the one-row run
  pays for the padding. The rows read are the run's own (offsets -1 and
  +1) and, with ``corners`` (the 9-point stencil), its neighbours above
  and below; rows outside ``0 .. rows-1`` are halo rows, which are never
  padded. The rows and the
  values are the same; only the loops differ. Where peeling would take a
  plan of at most :data:`FUSED_RUNS` runs past that count (runs are the
  operands of one concatenation, which XLA:CPU then stops fusing), the runs
  are returned as they are.

  Examples:
    >>> from ladam_jax import _stencil
    >>> _stencil.in_bounds_runs(_stencil.band_runs(6), 6, corners=True)
    ((0, 1, 5, 1), (1, 1, 0, 2), (2, 2, 1, 3), (4, 1, 3, 5), (5, 1, 4, 0))
    >>> _stencil.in_bounds_runs(_stencil.band_runs(6), 6, corners=False)
    ((0, 1, 5, 1), (1, 4, 0, 2), (5, 1, 4, 0))
  """
  out = []
  for start, n, up, down in runs:
    reads = (start, up, down) if corners else (start,)
    reads = [r for r in reads if 0 <= r < rows]
    if n > 1 and 0 in reads:
      out.append((start, 1, up, down))
      start, n, up, down = start + 1, n - 1, up + 1, down + 1
      reads = [r + 1 for r in reads]
    if n > 1 and any(r + n == rows for r in reads):
      out.append((start, n - 1, up, down))
      start, n, up, down = start + n - 1, 1, up + n - 1, down + n - 1
    out.append((start, n, up, down))
  if len(out) > FUSED_RUNS >= len(runs):
    return tuple(runs)  # the stencil would no longer fuse: keep the padding
  return tuple(out)


def halo_runs(runs, rows: int):
  """``runs`` of a :class:`RowPlan` (or :func:`band_runs`) of a block that
  holds a band of a field's rows: the first field row (memory row 0) reads
  the halo row below (``up = -1``), the last one (memory row ``R - 1``)
  the halo row above (``down = R``), as :func:`run_rows` takes them."""
  out = []
  for start, n, up, down in runs:
    if start == 0:
      assert n == 1 or rows == 1, runs
      up = -1
    if start + n == rows:
      assert n == 1 or rows == 1, runs
      down = rows
    out.append((start, n, up, down))
  return tuple(out)


def band_runs(rows: int):
  """The runs of ``rows`` field rows in memory order (periodic)."""
  if rows == 1:
    return ((0, 1, 0, 0),)
  inner = ((1, rows - 2, 0, 2),) if rows > 2 else ()
  return ((0, 1, rows - 1, 1),) + inner + ((rows - 1, 1, rows - 2, 0),)


class RowPlan(NamedTuple):
  """Static plan of the ``'flat'`` path for one leaf shape and field.

  The leaf is viewed in memory order as ``(B, R, w)``: ``B`` fields, ``R``
  memory rows of ``w`` contiguous elements (the field's columns).
  """

  view: tuple[int, int, int]  # (B, R, w)
  # runs (start, n, up_start, down_start): memory rows start..start+n-1 whose
  # field neighbours above / below are the rows up_start.., down_start..
  runs: tuple[tuple[int, int, int, int], ...]


# A row order that breaks into more runs (unusual custom layouts) falls back
# to 'shift' rather than emit that many slices per leaf.
_MAX_RUNS = 32


@functools.lru_cache(maxsize=None)
def row_neighbours(shape: tuple[int, ...], spec: _layout.FieldSpec):
  """Field rows of a 2-D field as contiguous memory rows, or None.

  Returns ``((B, R, w), up, down)`` where the leaf is viewed in memory order
  as ``B`` fields of ``R`` memory rows of ``w`` contiguous elements (the
  field's columns), and ``up[r]`` / ``down[r]`` (NumPy int arrays of length
  ``R``) are the memory rows of the field rows above and below memory row
  ``r`` (periodic). None where this does not hold: after dropping size-1
  axes, the field's batch axes must lead the leaf in memory order and its
  column axes must be the trailing (minor) axes in order; only the order of
  the rows may differ (a Flax conv kernel ``(kh, kw, in, out)``: field rows
  ``(in, kh, kw)``, columns ``out``).
  """
  if len(spec.field) != 2 or spec.flip:
    return None
  nd = len(shape)
  perm = [a for a in spec.perm if shape[a] > 1]
  b, (h, w) = spec.batch, spec.field
  sizes = [shape[a] for a in perm]
  # Split perm into batch / row / column axes by the sizes' products.
  nb = next(i for i in range(len(perm) + 1) if math.prod(sizes[:i]) == b)
  nc = next(i for i in range(len(perm) + 1)
            if math.prod(sizes[len(perm) - i:]) == w)
  batch, rows, cols = perm[:nb], perm[nb:len(perm) - nc], perm[len(perm) - nc:]
  mem = [a for a in range(nd) if shape[a] > 1]
  if batch != mem[:nb] or cols != mem[len(mem) - nc:]:
    return None
  mem_rows = sorted(rows)
  # mem_row[i]: memory row of field row i.
  mem_row = np.transpose(
      np.arange(h).reshape([shape[a] for a in mem_rows]),
      [mem_rows.index(a) for a in rows]).reshape(-1)
  field_row = np.empty(h, np.int64)
  field_row[mem_row] = np.arange(h)
  up = mem_row[(field_row - 1) % h]
  down = mem_row[(field_row + 1) % h]
  return (b, h, w), up, down


@functools.lru_cache(maxsize=None)
def row_plan(shape: tuple[int, ...], spec: _layout.FieldSpec):
  """The :class:`RowPlan` of a 2-D field, or None where it does not apply.

  It applies where :func:`row_neighbours` does (every field row is a
  contiguous memory row). Consecutive memory rows whose neighbours above and
  below sit at the same memory offsets form a run, computed from shifted
  slices of the flattened rows.
  """
  rows = row_neighbours(shape, spec)
  if rows is None:
    return None
  (b, h, w), up, down = rows
  runs = []
  m = 0
  while m < h:
    start, du, dd = m, up[m] - m, down[m] - m
    while m < h and up[m] - m == du and down[m] - m == dd:
      m += 1
    runs.append((start, m - start, int(start + du), int(start + dd)))
  if len(runs) > _MAX_RUNS:
    return None
  return RowPlan((b, h, w), tuple(runs))
