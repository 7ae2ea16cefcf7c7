"""Helpers shared by the tests: float64 mode and the NumPy stencil."""

from __future__ import annotations

import pathlib
import sys

import jax
import numpy as np

# The speed benchmarks' helpers (benchmarks/timing.py): xla_kernels.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] /
                       "benchmarks"))
from timing import xla_kernels  # pylint: disable=g-import-not-at-top,wrong-import-position

__all__ = ["enable_x64", "numpy_laplacian_2d", "impls_here", "xla_kernels",
           "built_with", "laplacian", "scale_by_laplacian_adam", "scale_by_mode"]


def enable_x64(on: bool = True):
  """``jax.enable_x64`` (JAX >= 0.7), else ``jax.experimental.enable_x64``
  (the floor versions in pyproject.toml)."""
  if hasattr(jax, "enable_x64"):
    return jax.enable_x64(on)
  from jax.experimental import enable_x64 as context  # pylint: disable=g-import-not-at-top
  return context(on)


def numpy_laplacian_2d(x, stencil="9point"):
  """Direct transcription of the reference's periodic stencils (float64)."""
  if stencil == "9point":
    weights = {(0, 0): -20 / 6}
    for di in (-1, 0, 1):
      for dj in (-1, 0, 1):
        if di or dj:
          weights[(di, dj)] = 1 / 6 if (di and dj) else 4 / 6
  else:
    weights = {(0, 0): -4.0, (1, 0): 1.0, (-1, 0): 1.0, (0, 1): 1.0,
               (0, -1): 1.0}
  out = np.zeros_like(x)
  for (di, dj), w in weights.items():
    out += w * np.roll(np.roll(x, -di, 0), -dj, 1)
  return out


def impls_here() -> tuple[str, ...]:
  """The Laplacian implementations that are distinct on this backend:
  'pallas' is 'flat' off GPU, and its kernels are tested in Pallas'
  interpreter ('pallas_interpret') in test_pallas.py, not here."""
  from ladam_jax import _laplacian  # pylint: disable=g-import-not-at-top
  on_gpu = jax.default_backend() in ("gpu", "cuda", "rocm")
  return tuple(i for i in _laplacian.IMPLS
               if i != "pallas_interpret" and (i != "pallas" or on_gpu))


def built_with(impl, factory, *args, **kwargs):
  """``factory(*args, **kwargs)`` built to compute L with ``impl`` (None:
  the library's choice), as the tests compare the implementations."""
  from ladam_jax import _laplacian  # pylint: disable=g-import-not-at-top
  with _laplacian.using_impl(impl):
    return factory(*args, **kwargs)


def laplacian(x, *args, impl=None, **kwargs):
  """``ladam_jax.laplacian`` with the implementation ``impl``."""
  import ladam_jax  # pylint: disable=g-import-not-at-top
  return built_with(impl, ladam_jax.laplacian, x, *args, **kwargs)


def scale_by_laplacian_adam(*args, impl=None, **kwargs):
  """``ladam_jax.scale_by_laplacian_adam`` built with ``impl``."""
  import ladam_jax  # pylint: disable=g-import-not-at-top
  return built_with(impl, ladam_jax.scale_by_laplacian_adam, *args, **kwargs)


COUPLING_ARGS = ("stencil", "min_spatial_size", "layout", "allow_unstable_c2",
                 "partition_specs")


def scale_by_mode(mode, c2, **kwargs):
  """The reference's ``mode`` as a scale-by transform (what
  ``ladam_jax.ladam`` chains before the learning rate; not ``weight_lap``).
  The moments are ``optax.tree.get(state, 'nu')`` etc."""
  import ladam_jax  # pylint: disable=g-import-not-at-top
  if mode == "variance_lap":
    return ladam_jax.scale_by_laplacian_adam(c2=c2, **kwargs)
  if mode == "wave_variance":
    return ladam_jax.scale_by_wave_variance(c2=c2, **kwargs)
  assert mode == "update_lap", mode
  import optax  # pylint: disable=g-import-not-at-top
  coupling = {k: v for k, v in kwargs.items() if k in COUPLING_ARGS}
  return optax.chain(ladam_jax.scale_by_laplacian_adam(c2=0.0, **kwargs),
                     ladam_jax.add_update_laplacian(c2, **coupling))
