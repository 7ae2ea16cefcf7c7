r"""The discrete periodic Laplacian that LAdam applies to each leaf.

On a 1-D field of length :math:`n` (zero when :math:`n < 4`):

.. math::
  (Lx)_i = x_{i-1} - 2 x_i + x_{i+1}

On a 2-D field :math:`(h, w)` (zero when :math:`\min(h, w) < 3`), wrap-around
on both axes, with the stencils

.. math::
  K_9 = \frac{1}{6}\begin{pmatrix}1&4&1\\4&-20&4\\1&4&1\end{pmatrix},\qquad
  K_5 = \begin{pmatrix}0&1&0\\1&-4&1\\0&1&0\end{pmatrix}.

Which field a leaf is comes from its layout (see :mod:`ladam_jax._layout`).

Four implementations give the same numbers (to rounding):

- ``'conv'``: ``jax.lax.conv_general_dilated`` on a wrap-padded field, exactly
  the reference's ``F.pad(mode='circular')`` + ``F.conv2d``;
- ``'shift'`` (the default with several devices, and on TPU): weighted sums
  of shifted slices of the wrap-padded field, which XLA fuses with the
  optimizer's elementwise maths; much faster than ``'conv'`` on CPU, where
  single-channel convolutions are slow, and under sharding it only exchanges
  halos;
- ``'flat'`` (the default on one CPU or GPU device): no padded copy and no
  transpose. The leaf is read in memory order as ``(B, R, w)``, where each
  of the ``R`` memory rows is one field row of ``w`` contiguous columns
  (true of every Flax and PyTorch kernel layout: for a Flax conv kernel
  ``(kh, kw, in, out)`` only the order of the rows differs). In the
  flattened rows the neighbour one column left is element ``k - 1`` and one
  field row up sits a fixed number of rows away over long runs of rows; so
  each run is a weighted sum of contiguous slices, with a ``jnp.where`` on
  the column index for the wrap at ``j = 0`` and ``j = w - 1`` (a slice that
  would leave the buffer there is padded with one discarded zero). XLA
  fuses the slices, the selects, the concatenation of the runs and the
  optimizer's elementwise maths into one loop over the leaf, as for Adam.
  Layouts it does not cover (1-D fields, columns that are not the minor
  axes) use ``'shift'``;
- ``'pallas'`` (GPU, opt-in): a Pallas/Triton kernel over tiles of field
  rows (see :mod:`ladam_jax._pallas`), for float32 leaves whose field rows
  are contiguous memory rows. ``scale_by_laplacian_adam`` (``variance_lap``)
  runs its whole update in it; :func:`laplacian` runs the stencil alone;
  the other transforms and modes, other leaves and non-GPU backends use
  ``'flat'`` (a standalone kernel would only cut XLA's fusion).
"""

from __future__ import annotations

import functools
import math
from typing import Literal, NamedTuple

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from ladam_jax import _layout
from ladam_jax import _validation

__all__ = ["laplacian", "leaf_laplacian", "STENCILS", "IMPLS", "default_impl",
           "stability_bound"]

Stencil = Literal["9point", "5point"]
Impl = Literal["conv", "shift", "flat", "pallas"]
STENCILS = ("9point", "5point")
IMPLS = ("conv", "shift", "flat", "pallas")

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
_WEIGHTS = {
    "9point": (-20 / 6, 4 / 6, 1 / 6),
    "5point": (-4.0, 1.0, 0.0),
}


def default_impl() -> str:
  """The implementation used when ``impl=None``.

  ``'flat'`` when one CPU or GPU device is visible, else ``'shift'``.
  ``'flat'`` is the fastest on CPU (``benchmarks/bench_update.py``, see
  ``benchmarks/RESULTS.md``), but it flattens each field's rows: XLA's SPMD
  partitioner gathers a leaf whose columns are sharded before it can do
  that, where ``'shift'`` only exchanges halos; and on TPU, whose arrays are
  tiled over their two minor dimensions, flattening them is a relayout copy.
  On one H100, ``'flat'`` was also the faster on dense kernels (1.2x vs 1.6x
  optax.adam at 168M parameters); TPU is not measured. Pass ``impl`` to
  override.
  """
  if jax.device_count() == 1 and jax.default_backend() in ("cpu", "gpu",
                                                          "cuda", "rocm"):
    return "flat"
  return "shift"


def check_impl(impl) -> None:
  if impl is not None:
    _validation.check_choice("impl", impl, IMPLS)


def _kernel_2d(stencil: str, dtype) -> jax.Array:
  centre, face, corner = _WEIGHTS[stencil]
  k = np.array([[corner, face, corner],
                [face, centre, face],
                [corner, face, corner]], dtype=np.float64)
  return jnp.asarray(k, dtype=dtype)


def _conv_field(f: jax.Array, stencil: str, dtype) -> jax.Array:
  """Periodic Laplacian of a batch of fields ``(B, n)`` or ``(B, h, w)``."""
  f = f.astype(dtype)
  if f.ndim == 2:  # 1-D fields
    fp = jnp.pad(f, ((0, 0), (1, 1)), mode="wrap")[:, None, :]
    k = jnp.asarray(np.array([1.0, -2.0, 1.0]), f.dtype)[None, None, :]
    dn = ("NCH", "OIH", "NCH")
  else:
    fp = jnp.pad(f, ((0, 0), (1, 1), (1, 1)), mode="wrap")[:, None]
    k = _kernel_2d(stencil, f.dtype)[None, None]
    dn = ("NCHW", "OIHW", "NCHW")
  out = lax.conv_general_dilated(
      fp, k, window_strides=(1,) * (f.ndim - 1), padding="VALID",
      dimension_numbers=dn, precision=lax.Precision.HIGHEST)
  return out[:, 0]


def _shift_field(f: jax.Array, stencil: str, dtype) -> jax.Array:
  """Same as :func:`_conv_field`, from shifted slices of a wrap-padded field.

  XLA fuses the pad, the slices and the weighted sum with the optimizer's
  elementwise maths; on CPU this is many times faster than a single-channel
  convolution.
  """
  if f.ndim == 2:
    n = f.shape[1]
    p = jnp.pad(f, ((0, 0), (1, 1)), mode="wrap").astype(dtype)
    return p[:, :n] + p[:, 2:] - 2 * f.astype(dtype)
  h, w = f.shape[1:]
  p = jnp.pad(f, ((0, 0), (1, 1), (1, 1)), mode="wrap")
  s = lambda i, j: p[:, i:i + h, j:j + w].astype(dtype)
  return _stencil_sum(
      stencil, dtype, f.astype(dtype), s(0, 1), s(2, 1), s(1, 0), s(1, 2),
      lambda: (s(0, 0), s(0, 2), s(2, 0), s(2, 2)))


def _stencil_sum(stencil, dtype, centre, up, down, left, right, corners=None):
  """The weighted stencil sum, in the same order for every implementation."""
  c, fw, kw = (jnp.asarray(x, dtype) for x in _WEIGHTS[stencil])
  out = c * centre + fw * ((up + down) + (left + right))
  if stencil == "9point":
    up_left, up_right, down_left, down_right = corners()
    out = out + kw * ((up_left + up_right) + (down_left + down_right))
  return out


class _RowPlan(NamedTuple):
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
  if len(spec.field) != 2:
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
def _row_plan(shape: tuple[int, ...], spec: _layout.FieldSpec):
  """The :class:`_RowPlan` of a 2-D field, or None where it does not apply.

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
  return _RowPlan((b, h, w), tuple(runs))


def _run_rows(view: jax.Array, runs, stencil: str,
              dtype) -> list[jax.Array]:
  """The Laplacian on each run ``(start, n, up, down)`` of a ``(B, R, w)`` view.

  Every neighbour is a slice of the flattened rows: column ``j ± 1`` is the
  flat element ``k ± 1``, except at ``j = 0`` / ``j = w - 1`` where a select
  takes the wrapped element of the same row instead. Left of the first
  element and right of the last, where ``k ± 1`` leaves the buffer, the
  slice is padded with one element that this select discards, so the whole
  leaf is static slices, selects and a concatenation, which XLA fuses into
  its consumer (a gather of the edge rows would be a separate kernel).
  """
  b, h, w = view.shape
  flat = view.reshape(b, h * w)
  col = lax.broadcasted_iota(jnp.int32, (1, 1, w), 2)
  first, last = col == 0, col == w - 1

  def rows(start, n, offset=0):
    lo, hi = start * w + offset, (start + n) * w + offset
    piece = lax.slice_in_dim(flat, max(lo, 0), min(hi, h * w), axis=1)
    if lo < 0 or hi > h * w:
      # k - 1 of the first element or k + 1 of the last: a zero that the
      # select in left() / right() discards.
      piece = lax.pad(piece, jnp.zeros((), flat.dtype),
                      ((0, 0, 0), (max(-lo, 0), max(hi - h * w, 0), 0)))
    return piece.reshape(b, n, w).astype(dtype)

  def left(start, n):
    return jnp.where(first, view[:, start:start + n, w - 1:].astype(dtype),
                     rows(start, n, -1))

  def right(start, n):
    return jnp.where(last, view[:, start:start + n, :1].astype(dtype),
                     rows(start, n, 1))

  return [_stencil_sum(
      stencil, dtype, rows(start, n), rows(u, n), rows(d, n),
      left(start, n), right(start, n),
      lambda u=u, d=d, n=n: (left(u, n), right(u, n), left(d, n),
                             right(d, n)))
          for start, n, u, d in runs]


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _flat_leaf(x: jax.Array, plan: _RowPlan, stencil: str,
               dtype) -> jax.Array:
  """The Laplacian of a leaf by its :class:`_RowPlan` (see module docs).

  Jitted so that an un-jitted ``tx.update`` compiles one program per leaf
  shape instead of dispatching its many slices one by one; inside an outer
  ``jit`` it is inlined and fused like the rest of the update.
  """
  pieces = _run_rows(x.reshape(plan.view), plan.runs, stencil, dtype)
  return jnp.concatenate(pieces, axis=1).reshape(x.shape)


_FIELD_IMPLS = {"conv": _conv_field, "shift": _shift_field}


def leaf_laplacian(x: jax.Array, spec: _layout.FieldSpec | None,
                   stencil: str, impl: str | None = None,
                   dtype=None) -> jax.Array:
  """The Laplacian of one leaf whose field description is ``spec``.

  ``dtype`` (default ``x.dtype``) is the dtype the stencil sums in and
  returns: every neighbour read is converted to it, inside the fused loop
  (converting ``x`` first would be a separate XLA kernel).
  """
  dtype = x.dtype if dtype is None else jnp.dtype(dtype)
  if spec is None or spec.too_small:
    return jnp.zeros(x.shape, dtype)
  impl = default_impl() if impl is None else impl
  if impl == "pallas":
    from ladam_jax import _pallas  # pylint: disable=import-outside-toplevel
    if _pallas.enabled() and _pallas.qualifies(tuple(x.shape), spec, x.dtype,
                                               dtype):
      return _pallas.laplacian_leaf(x, spec, stencil)
    impl = "flat"
  if impl == "flat":
    plan = _row_plan(tuple(x.shape), spec)
    if plan is not None:
      return _flat_leaf(x, plan, stencil, dtype)
    impl = "shift"  # 1-D fields, and layouts whose columns are not minor
  identity = spec.perm == tuple(range(x.ndim))
  xt = x if identity else jnp.transpose(x, spec.perm)
  field = xt.reshape((spec.batch,) + spec.field)
  out = _FIELD_IMPLS[impl](field, stencil, dtype).reshape(xt.shape)
  return out if identity else jnp.transpose(out, np.argsort(spec.perm))


def laplacian(x: jax.Array, stencil: Stencil = "9point",
              layout: _layout.LeafLayout = "flax", *,
              impl: Impl | None = None) -> jax.Array:
  """The periodic discrete Laplacian of one leaf, as the optimizers apply it.

  A 1-D leaf is a periodic line (kernel ``[1, -2, 1]``, zero if shorter than
  4). A leaf of 2 or more dims is seen as a periodic 2-D field (see
  ``layout``) and zero if a side of that field is shorter than 3. 0-d leaves
  give zero.

  Examples:
    >>> import jax.numpy as jnp
    >>> import ladam_jax
    >>> x = jnp.zeros((4, 4)).at[1, 1].set(6.0)
    >>> ladam_jax.laplacian(x)[0:3, 0:3]
    Array([[  1.,   4.,   1.],
           [  4., -20.,   4.],
           [  1.,   4.,   1.]], dtype=float32)

  Args:
    x: the leaf (any shape, floating dtype).
    stencil: ``'9point'`` (isotropic, default) or ``'5point'``.
    layout: ``'flax'`` (default: a Flax kernel ``(*spatial, in, out)`` gets the
      field the reference gives the PyTorch weight ``(out, in, *spatial)``),
      ``'torch'`` (``x.reshape(x.shape[0], -1)``), a
      :class:`ladam_jax.LaplacianLayout`, or None (no smoothing: zeros).
    impl: ``'conv'`` (``lax.conv``, the reference kernel), ``'shift'`` (fused
      slices of a wrap-padded copy), ``'flat'`` (fused slices of the
      flattened field, no padded copy), ``'pallas'`` (a Triton kernel on
      GPU, ``'flat'`` elsewhere) or None for :func:`default_impl`.

  Returns:
    An array of ``x``'s shape and dtype.
  """
  _validation.check_choice("stencil", stencil, STENCILS)
  check_impl(impl)
  _layout.check_leaf_layout(layout)
  x = jnp.asarray(x)
  return _jitted_laplacian(x, stencil, layout, impl)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _jitted_laplacian(x, stencil, layout, impl):
  return leaf_laplacian(x, _layout.field_spec(x.shape, layout), stencil, impl)
