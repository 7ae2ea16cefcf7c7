r"""Laplacian smoothing's exact solve on sharded fields, kept sharded.

:func:`ladam_jax.scale_by_laplacian_smoothing` solves
:math:`(I - \sigma L) u = g` on each field with a 2-D (or 1-D) discrete
Fourier transform. XLA partitions an FFT only along axes it does not
transform, so a field sharded along one of its own axes would be gathered
whole onto every device. Here the 2-D transform is taken one axis at a
time, each while that axis is local, and the data moves between the two
with all-to-alls, the distributed FFT's usual transpose:

1. transform along the local axis (a real FFT: ``w // 2 + 1`` frequencies,
   padded with zeros to a multiple of the shard count);
2. all-to-all: the other axis becomes local and the frequencies sharded;
3. transform along it, divide by :math:`1 - \sigma\lambda_k`, transform back;
4. all-to-all back, drop the padding, inverse real FFT.

A field sharded along both axes (a 2-D mesh) first moves one mesh axis onto
the other field axis (an all-to-all), where the sizes divide. A 1-D line
sharded over :math:`P` devices uses the four-step FFT (length
:math:`n = P \cdot n_2`, :math:`n_2` a multiple of :math:`P`): a
:math:`P`-point transform across the shards between two all-to-alls, a
twiddle factor, and :math:`n_2`-point transforms on each device. Where the
sizes leave no such all-to-all (a line whose local length is not a multiple
of the shard count; both field axes sharded and neither divisible by the
other's shard count) the one offending mesh axis is gathered (all-gather of
that axis only), the rest stays sharded. Every 1-D transform runs along the
minor (last) axis of a row-major array.

How the sharding is known: on an Explicit mesh it is the field's type and the
solve is a ``jax.shard_map``; on an Auto mesh XLA's partitioner chooses it,
and the solve is a ``custom_partitioning`` op whose partitioning rule reads
it (and keeps the field's sharding for the result).
"""


import functools
import math
from typing import Callable

import jax
from jax import lax
from jax.experimental.custom_partitioning import custom_partitioning
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from ladam_jax import _halo
from ladam_jax import _laplacian
from ladam_jax import _stencil

__all__ = ["solve", "solve_fields", "laplacian_symbol", "field_type_spec"]

_HIGHEST = lax.Precision.HIGHEST


@functools.lru_cache(maxsize=None)
def laplacian_symbol(field: tuple[int, ...], stencil: str) -> np.ndarray:
  r"""The eigenvalues :math:`\lambda_k \le 0` of the periodic Laplacian.

  On a field of shape ``field`` (``(n,)``: the 1-D kernel ``[1, -2, 1]``;
  ``(h, w)``: the 9- or 5-point stencil), on the whole frequency grid of
  ``jnp.fft.fftn`` over the field's axes, in float64 (``jnp.fft.rfftn``'s
  half grid is its first ``w // 2 + 1`` columns). For weights (centre
  :math:`c`, face :math:`f`, corner :math:`d`) and frequency
  :math:`k = (k_1, k_2)`:

  .. math::
    \lambda_k = c + 2f(\cos\theta_1 + \cos\theta_2)
      + 4d\cos\theta_1\cos\theta_2, \qquad \theta_i = 2\pi k_i / n_i ;

  a line of length :math:`n` has :math:`\lambda_k = -2 + 2\cos(2\pi k / n)`.

  Args:
    field: the field's shape, ``(n,)`` or ``(h, w)``.
    stencil: ``'9point'`` or ``'5point'`` (unused for a line).

  Returns:
    A float64 array of shape ``field``.

  Examples:
    >>> from ladam_jax import _sharded_fft
    >>> _sharded_fft.laplacian_symbol((4,), '9point').round(6).tolist()
    [0.0, -2.0, -4.0, -2.0]
  """
  angles = [2 * np.pi * np.arange(n) / n for n in field]
  if len(field) == 1:
    symbol = -2.0 + 2.0 * np.cos(angles[0])
  else:
    centre, face, corner = _stencil.WEIGHTS[stencil]
    c1, c2 = np.cos(angles[0])[:, None], np.cos(angles[1])[None, :]
    symbol = centre + 2 * face * (c1 + c2) + 4 * corner * c1 * c2
  symbol.setflags(write=False)  # cached: shared by every caller
  return symbol


def _complex(dtype):
  return jnp.complex128 if dtype == jnp.float64 else jnp.complex64


def _dft(n: int, cdtype, inverse: bool = False) -> np.ndarray:
  """The n-point DFT matrix ``exp(-2πi jk / n)``, or its inverse (with the
  1/n), as ``cdtype``."""
  k = np.arange(n)
  sign = 1 if inverse else -1
  mat = np.exp(sign * 2j * np.pi * np.outer(k, k) / n)
  return (mat / n if inverse else mat).astype(cdtype)


def solve_fields(f: jax.Array, sigma: jax.Array, field: tuple[int, ...],
                 stencil: str, method: str) -> jax.Array:
  r"""Solves :math:`(I - \sigma L) u = f` exactly on whole fields.

  In the Fourier basis :math:`\hat u_k = \hat f_k / (1 - \sigma \lambda_k)`,
  :math:`\lambda_k` from :func:`laplacian_symbol`.

  Args:
    f: the fields, shape ``(B, *field)``.
    sigma: the smoothing strengths, shape ``(B,)``, one per field.
    field: the field's shape, ``(n,)`` or ``(h, w)``.
    stencil: ``'9point'`` or ``'5point'``.
    method: ``'fft'`` (``jnp.fft``, O(n log n) per field) or ``'dft'`` (the
      same transform as dense matrix products, O(n·(h + w)) per field).

  Returns:
    ``u``, of ``f``'s shape and dtype.
  """
  dtype = f.dtype
  axes = tuple(range(1, 1 + len(field)))
  sigma = sigma.reshape((-1,) + (1,) * len(field)).astype(dtype)
  symbol = laplacian_symbol(field, stencil)
  if method == "fft":
    half = jnp.asarray(symbol[..., :field[-1] // 2 + 1], dtype)
    return jnp.fft.irfftn(jnp.fft.rfftn(f, axes=axes) / (1.0 - sigma * half),
                          s=field, axes=axes)
  cdtype = _complex(dtype)
  multiplier = 1.0 / (1.0 - sigma * jnp.asarray(symbol, dtype))
  mats = [jnp.asarray(_dft(n, cdtype)) for n in field]
  if len(field) == 1:
    g = jnp.einsum("jk,bk->bj", mats[0], f.astype(cdtype), precision=_HIGHEST)
    u = jnp.einsum("jk,bk->bj", jnp.conj(mats[0]), g * multiplier,
                   precision=_HIGHEST)
  else:
    g = jnp.einsum("ij,bjk,lk->bil", mats[0], f.astype(cdtype), mats[1],
                   precision=_HIGHEST)
    u = jnp.einsum("ij,bjk,lk->bil", jnp.conj(mats[0]), g * multiplier,
                   jnp.conj(mats[1]), precision=_HIGHEST)
  return jnp.real(u) / math.prod(field)


# --------------------------------------------------------------------------
# 1-D transforms along the last axis: jnp.fft, or dense DFT matrices
# --------------------------------------------------------------------------


def _along(x: jax.Array, axis: int, fn: Callable) -> jax.Array:
  """``fn`` along ``axis`` of ``x``, with that axis moved to the minor end.

  XLA:CPU's FFT requires a row-major operand; a transpose that makes the
  transformed axis the minor one, and the FFT's own output, are row-major.
  """
  if axis in (-1, x.ndim - 1):
    return fn(x)
  return jnp.moveaxis(fn(jnp.moveaxis(x, axis, -1)), -1, axis)


def _rft(x: jax.Array, method: str) -> jax.Array:
  """Real → the ``n // 2 + 1`` non-negative frequencies, last axis."""
  if method == "fft":
    return jnp.fft.rfft(x, axis=-1)
  n = x.shape[-1]
  cd = _complex(x.dtype)
  mat = jnp.asarray(_dft(n, cd)[: n // 2 + 1])
  return jnp.einsum("...j,kj->...k", x.astype(cd), mat, precision=_HIGHEST)


def _irft(x: jax.Array, n: int, method: str, dtype) -> jax.Array:
  """Inverse of :func:`_rft` (length ``n``), last axis."""
  if method == "fft":
    return jnp.fft.irfft(x, n=n, axis=-1).astype(dtype)
  half = n // 2 + 1
  weights = np.full(half, 2.0)
  weights[0] = 1.0
  if n % 2 == 0:
    weights[-1] = 1.0
  mat = (_dft(n, x.dtype, inverse=True)[:half] * weights[:, None]).astype(
      x.dtype)
  return jnp.real(jnp.einsum("...k,kj->...j", x, jnp.asarray(mat),
                             precision=_HIGHEST)).astype(dtype)


def _cft(x: jax.Array, inverse: bool, method: str) -> jax.Array:
  """Complex DFT (or its inverse, with the 1/n), last axis."""
  if method == "fft":
    return jnp.fft.ifft(x, axis=-1) if inverse else jnp.fft.fft(x, axis=-1)
  mat = jnp.asarray(_dft(x.shape[-1], x.dtype, inverse))
  return jnp.einsum("...j,kj->...k", x, mat, precision=_HIGHEST)


# --------------------------------------------------------------------------
# The per-device solves (inside shard_map or a custom_partitioning op)
# --------------------------------------------------------------------------


def _multiplier(sigma: jax.Array, symbol: jax.Array, ndim: int) -> jax.Array:
  sigma = sigma.reshape((-1,) + (1,) * (ndim - 1)).astype(symbol.dtype)
  return 1.0 / (1.0 - sigma * symbol)


def _rows_sharded(f, sigma, field, group, n_group, stencil, method):
  """Fields ``(B, h / n, w)`` whose rows are split over ``group`` (n
  devices), columns local: the solve with two all-to-alls."""
  dtype = f.dtype
  h, w = field
  half = w // 2 + 1
  padded = -(-half // n_group) * n_group
  x = _along(f, 2, lambda t: _rft(t, method))
  x = jnp.pad(x, ((0, 0), (0, 0), (0, padded - half)))
  x = lax.all_to_all(x, group, 2, 1, tiled=True)  # (B, h, padded / n)
  x = _along(x, 1, lambda t: _cft(t, False, method))
  symbol = np.zeros((h, padded))
  symbol[:, :half] = laplacian_symbol(field, stencil)[:, :half]
  cols = padded // n_group
  symbol = lax.dynamic_slice_in_dim(jnp.asarray(symbol, dtype),
                                    lax.axis_index(group) * cols, cols, axis=1)
  x = x * _multiplier(sigma, symbol, 3)
  x = _along(x, 1, lambda t: _cft(t, True, method))
  x = lax.all_to_all(x, group, 1, 2, tiled=True)  # (B, h / n, padded)
  return _along(x[:, :, :half], 2, lambda t: _irft(t, w, method, dtype))


def _swap(x):
  return jnp.swapaxes(x, 1, 2)


def _line_sharded(f, sigma, n, group, n_group, stencil, method):
  """Lines ``(B, n / P)`` split over ``group`` (P devices): the four-step
  FFT, :math:`n = P n_2` with :math:`n_2` a multiple of P."""
  dtype = f.dtype
  b, n2 = f.shape
  m = n2 // n_group
  index = lax.axis_index(group)
  x = f.astype(_complex(dtype)).reshape(b, 1, n2)
  x = lax.all_to_all(x, group, 2, 1, tiled=True)  # (B, P, m): [j1, j2]
  x = _along(x, 1, lambda t: _cft(t, False, method))  # [k1, j2]
  # Twiddle exp(-2πi·j2·k1 / n), the exponent reduced mod n in integers.
  k1 = jnp.arange(n_group, dtype=jnp.int32)[:, None]
  j2 = (index * m + jnp.arange(m, dtype=jnp.int32))[None, :]
  angle = (2 * np.pi / n) * ((k1 * j2) % n).astype(dtype)
  twiddle = lax.complex(jnp.cos(angle), -jnp.sin(angle))
  x = lax.all_to_all(x * twiddle, group, 1, 2, tiled=True)  # (B, 1, n2)
  x = _cft(x, False, method)  # [k1 = index, k2]: frequency k1 + P·k2
  symbol = jnp.take(jnp.asarray(laplacian_symbol((n,), stencil), dtype),
                    index + n_group * jnp.arange(n2, dtype=jnp.int32))
  x = _cft(x * _multiplier(sigma, symbol[None, None, :], 3), True, method)
  x = lax.all_to_all(x, group, 2, 1, tiled=True)  # (B, P, m): [k1, j2]
  x = _along(x * jnp.conj(twiddle), 1, lambda t: _cft(t, True, method))
  x = lax.all_to_all(x, group, 1, 2, tiled=True)  # (B, 1, n2)
  return jnp.real(x).reshape(b, n2).astype(dtype)


def _gathered(f, sigma, axis, group, n_group, solve_rest):
  """Gathers ``axis`` over ``group``, solves, keeps this device's block."""
  size = f.shape[axis]
  x = lax.all_gather(f, group, axis=axis, tiled=True)
  u = solve_rest(x, sigma)
  return lax.dynamic_slice_in_dim(u, lax.axis_index(group) * size, size,
                                  axis=axis)


def _block_solve(f, sigma, *, field, stencil, method, groups, sizes,
                 local_solve):
  """The solve of one device's block ``f`` of fields ``(B, *field)``.

  ``groups``: the mesh axes that split each field axis (batch axes need no
  exchange); ``sizes``: the mesh's axis sizes.
  """
  count = lambda g: math.prod(sizes[a] for a in g)  # noqa: E731
  if len(field) == 1:
    (group,) = groups
    if not group:
      return local_solve(f, sigma)
    n, p = field[0], count(group)
    if (n // p) % p == 0:
      return _line_sharded(f, sigma, n, group, p, stencil, method)
    return _gathered(f, sigma, 1, group, p, local_solve)
  (h, w), (gh, gw) = field, groups
  rows = functools.partial(_rows_sharded, stencil=stencil, method=method)
  if not gh and not gw:
    return local_solve(f, sigma)
  if not gw:
    return rows(f, sigma, (h, w), gh, count(gh))
  if not gh:
    return _swap(rows(_swap(f), sigma, (w, h), gw, count(gw)))
  nh, nw = count(gh), count(gw)
  if (h // nh) % nw == 0:  # move the column axes onto the rows
    x = lax.all_to_all(f, gw, 1, 2, tiled=True)
    x = rows(x, sigma, (h, w), gh + gw, nh * nw)
    return lax.all_to_all(x, gw, 2, 1, tiled=True)
  if (w // nw) % nh == 0:  # move the row axes onto the columns
    x = lax.all_to_all(f, gh, 2, 1, tiled=True)
    x = _swap(rows(_swap(x), sigma, (w, h), gw + gh, nh * nw))
    return lax.all_to_all(x, gh, 1, 2, tiled=True)
  return _gathered(f, sigma, 2, gw, nw,
                   lambda x, s: rows(x, s, (h, w), gh, nh))


def _groups(spec, ndim, shape, sizes):
  """Per field axis, the mesh axes that split it; entries that do not divide
  the axis are dropped (the partitioner then gathers that axis)."""
  entries = tuple(spec) + (None,) * (ndim - len(spec))
  out = []
  for dim, entry in zip(shape, entries):
    group = _halo.mesh_axes(entry)
    out.append(group if dim % max(math.prod(sizes[a] for a in group), 1) == 0
               else ())
  return tuple(out)


# --------------------------------------------------------------------------
# Explicit meshes: the field's type gives its sharding
# --------------------------------------------------------------------------


def _block_body(field, stencil, method, groups, sizes) -> Callable:
  """:func:`_block_solve` for one sharding, whole fields by
  :func:`solve_fields`."""
  return functools.partial(
      _block_solve, field=field, stencil=stencil, method=method,
      groups=groups, sizes=sizes,
      local_solve=functools.partial(solve_fields, field=field,
                                    stencil=stencil, method=method))


def field_type_spec(x: jax.Array):
  """(mesh, spec) of ``x``'s type where an Explicit mesh axis shards it,
  else None."""
  sharding = _laplacian.explicit_sharding(x)
  if sharding is None:
    return None
  return sharding.mesh, _halo.padded_spec(sharding.spec, x.ndim)


def _explicit_solve(f, sigma, mesh, spec, field, stencil, method):
  sizes = dict(zip(mesh.axis_names, mesh.axis_sizes))
  groups = _groups(spec[1:], len(field), field, sizes)
  body = _block_body(field, stencil, method, groups, sizes)
  batch = P(spec[0])
  sigma = jax.sharding.reshard(sigma, batch)
  return jax.shard_map(body, mesh=mesh, in_specs=(spec, batch),
                       out_specs=spec)(f, sigma)


# --------------------------------------------------------------------------
# Auto meshes: a custom_partitioning op reads the partitioner's choice
# --------------------------------------------------------------------------


def _named(sharding, ndim):
  """The PartitionSpec of a NamedSharding, padded to ``ndim``, else None."""
  spec = getattr(sharding, "spec", None)
  return None if spec is None else _halo.padded_spec(spec, ndim)


def _cp_partition(field, stencil, method, mesh, arg_shapes, result_shape):
  del result_shape
  f_shape = arg_shapes[0]
  ndim = len(f_shape.shape)
  spec = _named(f_shape.sharding, ndim)
  if spec is None:  # no mesh names: compute on whole fields
    spec = P(*(None,) * ndim)
  sizes = dict(zip(mesh.axis_names, mesh.axis_sizes))
  batch = _halo.mesh_axes(spec[0])
  if f_shape.shape[0] % max(math.prod(sizes[a] for a in batch), 1):
    batch = ()
  groups = _groups(spec[1:], len(field), field, sizes)
  spec = P(batch or None, *(g or None for g in groups))
  body = _block_body(field, stencil, method, groups, sizes)
  out = NamedSharding(mesh, spec)
  return mesh, body, out, (out, NamedSharding(mesh, P(batch or None)))


def _cp_infer(field, stencil, method, mesh, arg_shapes, result_shape):
  del field, stencil, method, result_shape
  f_shape = arg_shapes[0]
  spec = _named(f_shape.sharding, len(f_shape.shape))
  return f_shape.sharding if spec is None else NamedSharding(mesh, spec)


def _cp_rule(field, stencil, method, mesh, operand_types, result_types):
  del stencil, method, mesh, operand_types, result_types
  return "b h w, b -> b h w" if len(field) == 2 else "b n, b -> b n"


_jit_solve_fields = jax.jit(solve_fields,
                            static_argnames=("field", "stencil", "method"))


@functools.partial(custom_partitioning, static_argnums=(2, 3, 4))
def _solve_op(f, sigma, field, stencil, method):
  """:func:`solve_fields` as an op whose partitioning rule keeps the
  fields' sharding."""
  # Under jit, the solve's constants (symbol, DFT matrices) stay inside its
  # own jaxpr: custom_partitioning takes no closed-over constants.
  return _jit_solve_fields(f, sigma, field=field, stencil=stencil,
                           method=method)


_solve_op.def_partition(partition=_cp_partition,
                        infer_sharding_from_operands=_cp_infer,
                        propagate_user_sharding=None,
                        sharding_rule=_cp_rule)


def _auto_solve(f, sigma, field, stencil, method):
  """The solve as the custom_partitioning op; ``jax.vmap`` folds the mapped
  axis into the fields' batch (the op has no batching rule of its own)."""

  @jax.custom_batching.custom_vmap
  def call(f, sigma):
    return _solve_op(f, sigma, field, stencil, method)

  @call.def_vmap
  def _(axis_size, in_batched, f, sigma):  # fields of a vmapped call
    f_b, s_b = in_batched
    f = f if f_b else jnp.broadcast_to(f, (axis_size,) + f.shape)
    sigma = sigma if s_b else jnp.broadcast_to(sigma,
                                               (axis_size,) + sigma.shape)
    shape = f.shape
    u = call(f.reshape((-1,) + shape[2:]), sigma.reshape(-1))
    return u.reshape(shape), True

  return call(f, sigma)


def solve(f: jax.Array, sigma: jax.Array, field: tuple[int, ...],
          stencil: str, method: str) -> jax.Array:
  r"""Solves :math:`(I - \sigma L) u = f` on fields, sharded or not.

  On an Explicit mesh the fields' type gives their sharding (a
  ``jax.shard_map``); with several devices otherwise a
  ``custom_partitioning`` op gets it from the partitioner; on one device
  this is :func:`solve_fields`. The result has ``f``'s sharding.

  Args:
    f: the fields, shape ``(B, *field)``.
    sigma: the smoothing strengths, shape ``(B,)``, one per field.
    field: the field's shape, ``(n,)`` or ``(h, w)``.
    stencil: ``'9point'`` or ``'5point'``.
    method: ``'fft'`` or ``'dft'`` (see :func:`solve_fields`).

  Returns:
    ``u``, of ``f``'s shape, dtype and sharding.

  Examples:
    >>> import jax.numpy as jnp
    >>> from ladam_jax import _sharded_fft
    >>> f = jnp.zeros((1, 8, 8)).at[0, 3, 3].set(1.0)
    >>> u = _sharded_fft.solve(f, jnp.ones(1), (8, 8), '9point', 'fft')
    >>> round(float(u.sum()), 6)  # the mean is kept
    1.0
  """
  typed = field_type_spec(f)
  if typed is not None:
    mesh, spec = typed
    return _explicit_solve(f, sigma, mesh, spec, field, stencil, method)
  if jax.device_count() > 1:
    return _auto_solve(f, sigma, field, stencil, method)
  return solve_fields(f, sigma, field, stencil, method)
