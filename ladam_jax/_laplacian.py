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
- ``'shift'`` (the default with several devices and no mesh in context,
  and on TPU): weighted sums of shifted slices of the wrap-padded field,
  which XLA fuses with the optimizer's elementwise maths; much faster than
  ``'conv'`` on CPU, where single-channel convolutions are slow, and under
  sharding without a mesh in context XLA's partitioner derives halo
  exchanges from its periodic pad (leaves sharded over a mesh in context,
  Explicit or Auto, take :mod:`ladam_jax._sharded_laplacian`'s halo path
  instead);
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
- ``'pallas'`` (GPU, opt-in; ``'pallas_interpret'`` runs it in Pallas'
  interpreter anywhere, for tests): a Pallas/Triton kernel over tiles of field
  rows (see :mod:`ladam_jax._pallas`), for float32 leaves whose field rows
  are contiguous memory rows. ``scale_by_laplacian_adam`` (``variance_lap``)
  runs its whole update in it; :func:`laplacian` runs the stencil alone;
  the other transforms and modes, other leaves and non-GPU backends use
  ``'flat'`` (a standalone kernel would only cut XLA's fusion).
"""


import contextlib
import contextvars
import functools
import math

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from ladam_jax import _halo
from ladam_jax import _layout
from ladam_jax import _pallas
from ladam_jax import _stencil
from ladam_jax import _validation

__all__ = ["leaf_laplacian", "resolve_impl", "IMPLS",
           "default_impl", "using_impl", "forced_impl", "explicit_sharding",
           "explicit_field_layout",
           "unsharded"]



IMPLS = ("conv", "shift", "flat", "pallas", "pallas_interpret")
PALLAS_IMPLS = ("pallas", "pallas_interpret")


def default_impl() -> str:
  """The implementation the library picks for the visible devices.

  ``'flat'`` when one CPU or GPU device is visible, else ``'shift'``.
  ``'flat'`` is the fastest on CPU (``benchmarks/bench_update.py``, see
  ``benchmarks/RESULTS.md``), but it flattens each field's rows: XLA's SPMD
  partitioner gathers a leaf whose columns are sharded before it can do
  that, where ``'shift'`` only exchanges halos; and on TPU, whose arrays are
  tiled over their two minor dimensions, flattening them is a relayout copy
  (GPU and CPU figures in ``benchmarks/RESULTS.md``; TPU is not measured).
  Every implementation gives the same numbers to float rounding.
  """
  if jax.device_count() == 1 and jax.default_backend() in ("cpu", "gpu",
                                                          "cuda", "rocm"):
    return "flat"
  return "shift"


_FORCED_IMPL: contextvars.ContextVar = contextvars.ContextVar(
    "ladam_jax_forced_impl", default=None)


@contextlib.contextmanager
def using_impl(impl: str | None):
  """Transforms built in this context compute L with ``impl``.

  For tests and benchmarks that compare the implementations (all equal to
  float rounding); not part of the public API, where the library picks
  (:func:`default_impl`). Read when a transform is constructed, so a jitted
  update keeps the implementation it was built with. ``None`` restores the
  library's choice.
  """
  if impl is not None:
    _validation.check_choice("impl", impl, IMPLS)
  token = _FORCED_IMPL.set(impl)
  try:
    yield
  finally:
    _FORCED_IMPL.reset(token)


def forced_impl() -> str | None:
  """The implementation forced by :func:`using_impl`, or None."""
  return _FORCED_IMPL.get()


def _conv_field(f: jax.Array, stencil: str, dtype) -> jax.Array:
  """Periodic Laplacian of a batch of fields ``(B, n)`` or ``(B, h, w)``."""
  f = f.astype(dtype)
  if f.ndim == 2:  # 1-D fields
    fp = jnp.pad(f, ((0, 0), (1, 1)), mode="wrap")[:, None, :]
    k = jnp.asarray(np.array([1.0, -2.0, 1.0]), f.dtype)[None, None, :]
    dn = ("NCH", "OIH", "NCH")
  else:
    fp = jnp.pad(f, ((0, 0), (1, 1), (1, 1)), mode="wrap")[:, None]
    k = _stencil.kernel_2d(stencil, f.dtype)[None, None]
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
  return _stencil.stencil_sum(
      stencil, dtype, f.astype(dtype), s(0, 1), s(2, 1), s(1, 0), s(1, 2),
      lambda: (s(0, 0), s(0, 2), s(2, 0), s(2, 2)))


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _flat_leaf(x: jax.Array, plan: _stencil.RowPlan, stencil: str,
               dtype) -> jax.Array:
  """The Laplacian of a leaf by its :class:`_stencil.RowPlan` (see module docs).

  Jitted so that an un-jitted ``tx.update`` compiles one program per leaf
  shape instead of dispatching its many slices one by one; inside an outer
  ``jit`` it is inlined and fused like the rest of the update.
  """
  return _stencil.run_rows(x.reshape(plan.view), plan.runs, stencil,
                           dtype).reshape(x.shape)


_FIELD_IMPLS = {"conv": _conv_field, "shift": _shift_field}


def resolve_impl(impl: str | None, shape: tuple[int, ...],
                 spec: _layout.FieldSpec | None, dtypes=(), *,
                 in_fused_maths: bool = False) -> str | None:
  """Which implementation computes L of one leaf: the single place it is
  decided.

  Returns ``'conv'``, ``'shift'``, ``'flat'``, ``'pallas'`` /
  ``'pallas_interpret'`` (the Pallas Laplacian kernel, compiled /
  interpreted) or None (the leaf's field is too small: L is zero).
  ``impl=None`` is :func:`default_impl`. ``'pallas'`` runs the kernel only
  on a GPU backend (``'pallas_interpret'`` on any) and where the leaf
  qualifies
  (:func:`ladam_jax._pallas.qualifies` for its ``dtypes``, those of the
  leaf and of the sums), and never inside a transform's XLA
  maths (``in_fused_maths``), where a standalone kernel would only cut XLA's
  fusion of the stencil with the update (the transform runs the fused LAdam
  kernel itself); otherwise it is ``'flat'``. ``'flat'`` is ``'shift'``
  where the field's rows are not contiguous memory rows (1-D fields,
  columns that are not the minor axes).
  """
  if spec is None or spec.too_small:
    return None
  impl = default_impl() if impl is None else impl
  if impl in PALLAS_IMPLS:
    runs_kernel = (not in_fused_maths
                   and (impl == "pallas_interpret" or _pallas.on_gpu())
                   and _pallas.qualifies(shape, spec, *dtypes))
    impl = impl if runs_kernel else "flat"
  if impl == "flat" and _stencil.row_plan(shape, spec) is None:
    impl = "shift"
  return impl


def leaf_laplacian(x: jax.Array, spec: _layout.FieldSpec | None,
                   stencil: str, impl: str | None = None, dtype=None, *,
                   in_fused_maths: bool = False) -> jax.Array:
  """The Laplacian of one leaf whose field description is ``spec``.

  ``impl`` as :func:`resolve_impl` resolves it. ``dtype`` (default
  ``x.dtype``) is the dtype the stencil sums in and returns: every
  neighbour read is converted to it, inside the fused loop (converting
  ``x`` first would be a separate XLA kernel).
  """
  if spec is not None and spec.flip:  # read the field from the flipped leaf
    return _layout.with_flips(
        lambda y, s: leaf_laplacian(y, s, stencil, impl, dtype,
                                    in_fused_maths=in_fused_maths), x, spec)
  dtype = x.dtype if dtype is None else jnp.dtype(dtype)
  impl = resolve_impl(impl, tuple(x.shape), spec, (x.dtype, dtype),
                      in_fused_maths=in_fused_maths)
  if impl is None:
    return jnp.zeros_like(x, dtype=dtype)  # keeps a typed sharding
  return _leaf_laplacian(x, spec, stencil, impl, dtype)


def _groups_of_axes(shape: tuple[int, ...],
                    merged: tuple[int, ...]) -> list[list[int]]:
  """Which consecutive axes of ``shape`` each axis of ``merged`` (its
  reshape that merges neighbouring axes) is made of."""
  groups, axis = [], 0
  for size in merged:
    group, prod = [], 1
    while axis < len(shape) and prod < size:
      prod *= shape[axis]
      group.append(axis)
      axis += 1
    groups.append(group)
  groups[-1].extend(range(axis, len(shape)))  # trailing size-1 axes
  return groups


def explicit_field_layout(x: jax.Array, spec: _layout.FieldSpec):
  """On an Explicit mesh, ``(mesh, transposed leaf spec, field spec)``, else
  None.

  The leaf transposed to ``(*batch, *rows, *cols)`` is reshaped to
  ``(batch, *field)``; each field axis is split as the leading (non-unit)
  leaf axis of those it merges. A split of another axis of a merged group
  would interleave blocks: it moves onto the leading axis first (an
  all-to-all) where that axis divides, else it is dropped (that axis is
  gathered).
  """
  sharding = explicit_sharding(x)
  if sharding is None:
    return None
  mesh = sharding.mesh
  leaf_spec = tuple(sharding.spec) + (None,) * (x.ndim - len(sharding.spec))
  sizes = dict(zip(mesh.axis_names, mesh.axis_sizes))
  xt_shape = tuple(x.shape[p] for p in spec.perm)
  entries = [leaf_spec[p] for p in spec.perm]
  out = []
  for group in _groups_of_axes(xt_shape, (spec.batch,) + spec.field):
    split = [a for a in group if entries[a] is not None]
    lead = next((a for a in group if xt_shape[a] > 1), None)
    if split and split != [lead]:
      axes = tuple(m for a in split
                   for m in _halo.mesh_axes(entries[a]))
      for a in split:
        entries[a] = None
      if xt_shape[lead] % math.prod(sizes[m] for m in axes) == 0:
        entries[lead] = axes if len(axes) > 1 else axes[0]
    out.append(entries[lead] if lead is not None else None)
  P = jax.sharding.PartitionSpec  # pylint: disable=invalid-name
  return mesh, P(*entries), P(*out)


def explicit_sharding(x) -> jax.sharding.NamedSharding | None:
  """The sharding in ``x``'s type where a mesh axis of Explicit type shards
  it (inside ``jax.set_mesh`` on such a mesh), else None.

  Where the mesh's axes are Auto (or there is no mesh), the type carries no
  sharding and XLA's SPMD partitioner chooses it: then None.
  """
  try:
    sharding = jax.typeof(x).sharding
  except (AttributeError, TypeError):  # not an array, or an older JAX
    return None
  mesh = getattr(sharding, "mesh", None)
  spec = getattr(sharding, "spec", None)
  if mesh is None or spec is None or mesh.empty:
    return None
  axis_type = getattr(jax.sharding, "AxisType", None)
  explicit = {name for name, kind in zip(mesh.axis_names,
                                         getattr(mesh, "axis_types", ()))
              if axis_type is not None and kind == axis_type.Explicit}
  used = set()
  for entry in spec:
    if entry is not None:
      used.update(entry if isinstance(entry, tuple) else (entry,))
  return sharding if used & explicit else None


def unsharded(x: jax.Array) -> jax.Array:
  """``x`` whole on every device where an Explicit mesh axis shards it (an
  all-gather: for statistics that need every entry, such as a median),
  else ``x`` unchanged (on Auto meshes XLA's partitioner gathers what it
  needs)."""
  if explicit_sharding(x) is None:
    return x
  return jax.sharding.reshard(x, jax.sharding.PartitionSpec())


def _leaf_laplacian(x, spec, stencil, impl, dtype):
  """:func:`leaf_laplacian` once ``impl`` is resolved (not None)."""
  if impl in PALLAS_IMPLS:
    return _pallas.laplacian_kernel(x, spec, stencil,
                                    interpret=impl == "pallas_interpret")
  if impl == "flat":
    return _flat_leaf(x, _stencil.row_plan(tuple(x.shape), spec), stencil,
                      dtype)
  identity = spec.perm == tuple(range(x.ndim))
  xt = x if identity else jnp.transpose(x, spec.perm)
  field = xt.reshape((spec.batch,) + spec.field)
  out = _FIELD_IMPLS[impl](field, stencil, dtype).reshape(xt.shape)
  return out if identity else jnp.transpose(out, np.argsort(spec.perm))
