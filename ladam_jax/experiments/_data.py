"""The data sources of ``ladam-bench``: generated, or shipped on every machine.

Nothing is downloaded: the reference's synthetic signals are generated here,
scikit-learn ships its 8×8 digits, the mnist1d package generates MNIST-1D
offline, and the Python standard library's own source is a text corpus.
"""

from __future__ import annotations

import functools
import os
import random

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["sinusoid_signals", "digits_arrays", "mnist1d_arrays",
           "CORPUS_FILES", "stdlib_corpus"]


def sinusoid_signals(key, n, length, noise):
  """``generate_signals`` of ``_cnn_test.py``: (noisy, clean), (n, length, 1).

  t = linspace(0, 2π, length); five terms amp·sin(freq·t + phase) with
  integer freq ∈ {1, …, 9}, phase ~ U(0, 2π), amp ~ U(0.2, 0.7); plus
  Gaussian noise of std ``noise``.
  """
  kf, kp, ka, kn = jax.random.split(key, 4)
  t = jnp.linspace(0.0, 2 * jnp.pi, length)
  freq = jax.random.randint(kf, (5, n, 1), 1, 10).astype(jnp.float32)
  phase = jax.random.uniform(kp, (5, n, 1)) * 2 * jnp.pi
  amp = jax.random.uniform(ka, (5, n, 1)) * 0.5 + 0.2
  clean = jnp.sum(amp * jnp.sin(freq * t + phase), axis=0)
  noisy = clean + noise * jax.random.normal(kn, clean.shape)
  return noisy[..., None], clean[..., None]


def _sklearn_dataset(loader: str, needed_by: str):
  """``sklearn.datasets.<loader>()``, or an ImportError naming what needs it."""
  try:
    from sklearn import datasets  # pylint: disable=import-outside-toplevel
  except ImportError as e:  # pragma: no cover
    raise ImportError(
        f"scikit-learn is needed for {needed_by} (its bundled data set): "
        "pip install 'ladam-jax[bench]'") from e
  return getattr(datasets, loader)()


@functools.lru_cache(maxsize=1)
def digits_arrays():
  """scikit-learn's bundled 8×8 digits: images in [0, 1] and labels (NumPy).

  NumPy, not JAX arrays: the result is cached, and the tasks call this
  inside ``jit`` (a cached JAX array made there would be a leaked tracer).
  """
  digits = _sklearn_dataset("load_digits", "the digits tasks")
  return ((digits.images / 16.0).astype(np.float32),
          digits.target.astype(np.int32))


@functools.lru_cache(maxsize=1)
def diabetes_arrays():
  """scikit-learn's bundled diabetes regression data: 442 × 10 features and
  the disease-progression target (NumPy, float32; see digits_arrays)."""
  data = _sklearn_dataset("load_diabetes", "wavenorm-regression")
  return data.data.astype(np.float32), data.target.astype(np.float32)


@functools.lru_cache(maxsize=1)
def mnist1d_arrays():
  """MNIST-1D (Greydanus 2020), generated offline by its ``make_dataset``.

  The generator's own default arguments (seed 42): 4000 training and 1000
  test signals of length 40, 10 classes. It seeds NumPy's global RNG, whose
  state is restored afterwards.
  """
  try:
    from mnist1d.data import get_dataset_args, make_dataset  # pylint: disable=import-outside-toplevel
  except ImportError as e:  # pragma: no cover
    raise ImportError("image-mlp needs mnist1d (its offline generator): "
                      "pip install 'ladam-jax[bench]'") from e
  state, py_state = np.random.get_state(), random.getstate()
  try:
    d = make_dataset(get_dataset_args())
  finally:
    np.random.set_state(state)
    random.setstate(py_state)
  return tuple(np.asarray(a, dtype) for a, dtype in (
      (d["x"], np.float32), (d["y"], np.int32), (d["x_test"], np.float32),
      (d["y_test"], np.int32)))


CORPUS_FILES = ("argparse.py", "collections/__init__.py", "dataclasses.py",
                "enum.py", "functools.py", "inspect.py", "pathlib.py",
                "textwrap.py", "typing.py", "os.py", "random.py", "string.py")


@functools.lru_cache(maxsize=4)
def stdlib_corpus(n_bytes: int) -> np.ndarray:
  """The first ``n_bytes`` bytes of :data:`CORPUS_FILES`, as uint8 tokens."""
  root = os.path.dirname(os.__file__)
  chunks = []
  for name in CORPUS_FILES:
    path = os.path.join(root, name)
    if os.path.exists(path):
      with open(path, "rb") as f:
        chunks.append(f.read())
  data = np.frombuffer(b"\n".join(chunks), np.uint8)
  if data.size < n_bytes:
    raise ValueError(f"the standard-library corpus has {data.size} bytes, "
                     f"fewer than the {n_bytes} char-lm asks for")
  return data[:n_bytes].astype(np.int32)

