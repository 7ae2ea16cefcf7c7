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

__all__ = ["enable_x64", "numpy_laplacian_2d", "impls_here", "xla_kernels"]


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
