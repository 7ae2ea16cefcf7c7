r"""Pallas (Triton) kernels for GPU: the Laplacian and the fused LAdam update.

On a GPU, XLA computes ``scale_by_laplacian_adam``'s update in two loops per
leaf: the first writes the new moments :math:`m, v`, the second reads
:math:`v` back for the stencil (its neighbours come from other threads) and
writes the update. Adam needs one. The fused kernel here does it in one pass:
each program owns a tile of field rows × columns, loads :math:`g, v` at the
tile's 9 (or 5) stencil offsets (the neighbours' loads hit L1/L2), recomputes
:math:`v_t = \beta_2 v + (1-\beta_2) g^2` there, and writes :math:`m_t, v_t`
and :math:`u = \hat m_t / (\sqrt{\tilde v} + \epsilon)`: the bytes Adam moves.

A leaf qualifies where :func:`ladam_jax._stencil.row_neighbours` applies
(each field row a contiguous memory row: Flax dense and conv kernels, PyTorch
layouts), in float32. Field rows above and below come from small static
tables, so any row order (a Flax conv kernel's) costs the same. Others use
``impl='flat'``.

Used with ``impl='pallas'`` on a GPU backend only: by
``scale_by_laplacian_adam(mode='variance_lap')`` (and the aliases built on
it) for its qualifying leaves of more than 1024 elements, and by
``ladam_jax.laplacian``. Everything else with ``impl='pallas'``, and every
non-GPU backend, is ``'flat'``; ``impl='pallas_interpret'`` runs the same
kernels in Pallas' interpreter on any backend (slow: for tests, and for
checking the kernels without a GPU). Meant for one device: XLA's SPMD
partitioner cannot split a Triton custom call, so sharded leaves would be
gathered for it (the multi-device default, ``'shift'``, only exchanges
halos).

``'pallas'`` is not a default: see ``benchmarks/RESULTS.md`` for where the
kernels stand (tests: ``tests/test_pallas.py``).
"""


import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ladam_jax import _stencil

__all__ = ["on_gpu", "qualifies", "laplacian_kernel", "fused_adam_leaf",
           "TILE_ROWS", "TILE_COLS"]

# Tile of one program: rows × columns (powers of two, as Triton requires).
TILE_ROWS = 16
TILE_COLS = 128
_NUM_WARPS = 4

_GPU_BACKENDS = ("gpu", "cuda", "rocm")


def on_gpu() -> bool:
  """Whether the default backend is a GPU, where ``impl='pallas'`` runs the
  kernels (``impl='pallas_interpret'`` runs them anywhere, interpreted)."""
  return jax.default_backend() in _GPU_BACKENDS


def qualifies(shape: tuple[int, ...], spec, *dtypes) -> bool:
  """Whether a leaf of this shape, field ``spec`` and dtypes has a kernel."""
  return (spec is not None and not spec.too_small and not spec.flip and
          all(jnp.dtype(d) == jnp.float32 for d in dtypes) and
          _stencil.row_neighbours(shape, spec) is not None)


def _pallas_modules():
  """``jax.experimental.pallas`` and its Triton module, or a clear error."""
  # pylint: disable=import-outside-toplevel
  try:
    from jax.experimental import pallas as pl
    from jax.experimental.pallas import triton as pl_triton
    pl_triton.CompilerParams  # pylint: disable=pointless-statement
  except (ImportError, AttributeError) as e:
    raise RuntimeError(
        "impl='pallas' needs jax.experimental.pallas.triton.CompilerParams "
        f"(JAX {jax.__version__} lacks it: {e}); upgrade JAX or use "
        "impl='flat'.") from e
  return pl, pl_triton


def _next_pow2(n: int) -> int:
  return 1 << max(0, int(n) - 1).bit_length()


@functools.lru_cache(maxsize=None)
def _tables(shape: tuple[int, ...], spec) -> tuple[int, int, np.ndarray,
                                                  np.ndarray]:
  """``(N, w, up, down)``: the leaf as ``N`` rows of ``w`` and row tables."""
  (b, h, w), up, down = _stencil.row_neighbours(shape, spec)
  base = (np.arange(b) * h)[:, None]
  up = (base + up[None]).reshape(-1).astype(np.int32)
  down = (base + down[None]).reshape(-1).astype(np.int32)
  return b * h, w, up, down


def _stencil_call(pre: Callable, post: Callable, n_field_inputs: int,
                  stencil: str, shape: tuple[int, ...], spec,
                  coefs: jax.Array, inputs: Sequence[jax.Array],
                  out_dtypes: Sequence[Any], name: str,
                  interpret: bool) -> list[jax.Array]:
  """One pass over a leaf: ``post(c, f, L(f), *inputs)`` at every element.

  ``f = pre(c, *inputs[:n_field_inputs])`` is the field smoothed, computed
  pointwise at each stencil offset from the inputs there; ``c`` is the list of
  scalars in ``coefs``. Returns the outputs of ``post`` (leaf shape).
  """
  pl, pl_triton = _pallas_modules()
  n, w, up_np, down_np = _tables(shape, spec)
  br = min(TILE_ROWS, _next_pow2(n))
  bc = min(TILE_COLS, _next_pow2(w))
  n_coefs = coefs.shape[0]
  dtype = inputs[0].dtype

  def kernel(coef_ref, up_ref, down_ref, *refs):
    in_refs, out_refs = refs[:len(inputs)], refs[len(inputs):]
    i, j = pl.program_id(0), pl.program_id(1)
    # Rows / columns past the end are clamped: those lanes recompute and
    # rewrite the last row / column with the same values, so no masks. Where
    # the tiles divide the leaf (static) there is no clamp, so Triton can see
    # that a tile's columns are contiguous and vectorise its loads.
    rows = i * br + jnp.arange(br, dtype=jnp.int32)
    cols = j * bc + jnp.arange(bc, dtype=jnp.int32)
    rows = rows if n % br == 0 else jnp.minimum(rows, n - 1)
    cols = cols if w % bc == 0 else jnp.minimum(cols, w - 1)
    left = jnp.where(cols == 0, w - 1, cols - 1)
    right = jnp.where(cols == w - 1, 0, cols + 1)
    up, down = up_ref[rows], down_ref[rows]
    c = [coef_ref[k] for k in range(n_coefs)]

    def load(r, cc, refs_):
      return [ref[r[:, None], cc[None, :]] for ref in refs_]

    def field(r, cc):
      return pre(c, *load(r, cc, in_refs[:n_field_inputs]))

    centre_inputs = load(rows, cols, in_refs)
    centre = pre(c, *centre_inputs[:n_field_inputs])
    lap = _stencil.stencil_sum(
        stencil, dtype, centre, field(up, cols), field(down, cols),
        field(rows, left), field(rows, right),
        lambda: (field(up, left), field(up, right), field(down, left),
                 field(down, right)))
    for ref, out in zip(out_refs, post(c, centre, lap, *centre_inputs)):
      ref[rows[:, None], cols[None, :]] = out.astype(ref.dtype)

  views = [x.reshape(n, w) for x in inputs]
  call = pl.pallas_call(
      kernel,
      out_shape=[jax.ShapeDtypeStruct((n, w), d) for d in out_dtypes],
      grid=(pl.cdiv(n, br), pl.cdiv(w, bc)),
      interpret=interpret,
      compiler_params=pl_triton.CompilerParams(num_warps=_NUM_WARPS),
      name=name)
  outs = call(coefs, jnp.asarray(up_np), jnp.asarray(down_np), *views)
  return [o.reshape(shape) for o in outs]


def laplacian_kernel(x: jax.Array, spec, stencil: str, *,
                     interpret: bool = False) -> jax.Array:
  """The Laplacian of one qualifying leaf (see :func:`qualifies`)."""
  (out,) = _stencil_call(
      lambda c, f: f, lambda c, f, lap, x: (lap,), 1, stencil,
      tuple(x.shape), spec, jnp.zeros((1,), x.dtype), [x], [x.dtype],
      "ladam_laplacian", interpret)
  return out


def fused_adam_leaf(g: jax.Array, m: jax.Array, v: jax.Array, spec, *,
                    c2, use_lap, b1, b2, eps, floor, bc1, bc2,
                    stencil: str, interpret: bool = False
                    ) -> tuple[jax.Array, jax.Array, jax.Array]:
  r"""One leaf of ``scale_by_laplacian_adam(mode='variance_lap')`` fused.

  Returns ``(u, m_t, v_t)`` as the unfused update computes them:
  :math:`m_t = (1-\beta_1) g + \beta_1 m`, :math:`v_t = (1-\beta_2) g^2 +
  \beta_2 v`, :math:`s = \max((v_t + c_2 L(v_t)) / bc_2, \text{floor})` where
  ``use_lap`` else :math:`v_t / bc_2`, :math:`u = (m_t / bc_1) / (\sqrt{s} +
  \epsilon)`. ``spec`` is the leaf's field, ``c2`` and ``use_lap`` its
  coupling (possibly traced); ``bc1``, ``bc2`` are the bias correction
  divisors. Entries where :math:`v_t + c_2 L(v_t)` is not finite
  are left unsmoothed, as :func:`ladam_jax._coupling.smoothed` does.
  """
  dtype = g.dtype
  coefs = jnp.stack([jnp.asarray(x).astype(dtype) for x in (
      1 - b1, b1, 1 - b2, b2, bc1, bc2, c2, floor, eps, use_lap)])

  def pre(c, g, v):
    return c[2] * (g ** 2) + c[3] * v

  def post(c, v_t, lap, g, v, m):
    del v
    m_t = c[0] * g + c[1] * m
    coupled = v_t + c[6] * lap  # v_t where not finite (_coupling.smoothed;
    # |x| < inf is isfinite, which Triton lowering lacks in older JAX)
    coupled = jnp.where(jnp.abs(coupled) < jnp.inf, coupled, v_t)
    smoothed = jnp.maximum(coupled / c[5], c[7])
    s = jnp.where(c[9] > 0, smoothed, v_t / c[5])
    return (m_t / c[4]) / (jnp.sqrt(s) + c[8]), m_t, v_t

  u, m_t, v_t = _stencil_call(pre, post, 2, stencil, tuple(g.shape),
                              spec, coefs, [g, v, m],
                              [dtype, m.dtype, v.dtype], "ladam_fused_adam",
                              interpret)
  return u, m_t, v_t
