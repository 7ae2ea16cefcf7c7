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

Two implementations give the same numbers (to rounding):

- ``'conv'``: ``jax.lax.conv_general_dilated`` on a wrap-padded field, exactly
  the reference's ``F.pad(mode='circular')`` + ``F.conv2d``;
- ``'shift'``: weighted sums of shifted slices of the wrap-padded field, which
  XLA fuses with the optimizer's elementwise maths; much faster on CPU, where
  single-channel convolutions are slow.
"""

from __future__ import annotations

import functools
from typing import Literal

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from ladam_jax import _layout
from ladam_jax import _validation

__all__ = ["laplacian", "leaf_laplacian", "STENCILS", "IMPLS", "default_impl"]

Stencil = Literal["9point", "5point"]
Impl = Literal["conv", "shift"]
STENCILS = ("9point", "5point")
IMPLS = ("conv", "shift")

# Stencil weights as the reference builds them (Python doubles rounded to the
# leaf dtype): centre, face, corner.
_WEIGHTS = {
    "9point": (-20 / 6, 4 / 6, 1 / 6),
    "5point": (-4.0, 1.0, 0.0),
}


def default_impl() -> str:
  """The implementation used when ``impl=None``: ``'shift'`` on every backend.

  ``benchmarks/bench_update.py`` measures both; see ``benchmarks/RESULTS.md``.
  """
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


def _conv_field(f: jax.Array, stencil: str) -> jax.Array:
  """Periodic Laplacian of a batch of fields ``(B, n)`` or ``(B, h, w)``."""
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


def _shift_field(f: jax.Array, stencil: str) -> jax.Array:
  """Same as :func:`_conv_field`, from shifted slices of a wrap-padded field.

  XLA fuses the pad, the slices and the weighted sum with the optimizer's
  elementwise maths; on CPU this is many times faster than a single-channel
  convolution.
  """
  dtype = f.dtype
  if f.ndim == 2:
    n = f.shape[1]
    p = jnp.pad(f, ((0, 0), (1, 1)), mode="wrap")
    return p[:, :n] + p[:, 2:] - 2 * f
  h, w = f.shape[1:]
  centre, face, corner = (jnp.asarray(c, dtype) for c in _WEIGHTS[stencil])
  p = jnp.pad(f, ((0, 0), (1, 1), (1, 1)), mode="wrap")
  s = lambda i, j: p[:, i:i + h, j:j + w]
  out = centre * f + face * ((s(0, 1) + s(2, 1)) + (s(1, 0) + s(1, 2)))
  if stencil == "9point":
    out = out + corner * ((s(0, 0) + s(0, 2)) + (s(2, 0) + s(2, 2)))
  return out


_FIELD_IMPLS = {"conv": _conv_field, "shift": _shift_field}


def leaf_laplacian(x: jax.Array, spec: _layout.FieldSpec | None,
                   stencil: str, impl: str | None = None) -> jax.Array:
  """The Laplacian of one leaf whose field description is ``spec``."""
  if spec is None or spec.too_small:
    return jnp.zeros_like(x)
  impl = default_impl() if impl is None else impl
  identity = spec.perm == tuple(range(x.ndim))
  xt = x if identity else jnp.transpose(x, spec.perm)
  field = xt.reshape((spec.batch,) + spec.field)
  out = _FIELD_IMPLS[impl](field, stencil).reshape(xt.shape)
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
      periodic shifts) or None for :func:`default_impl`.

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
