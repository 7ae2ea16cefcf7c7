"""The benchmark tasks of ``ladam-bench``: models, data, losses and metrics.

Every task is a set of pure functions of one seed, so that the runner can
``jax.vmap`` them over seeds:

- ``setup(key, size) -> (params, data)``: the initial Flax parameters and the
  seed's data set (training and test arrays);
- ``loss(params, data, key) -> scalar``: the training loss on the minibatch
  drawn with ``key`` (the same keys for every optimizer, so the batches match);
- ``evaluate(params, data) -> scalar``: the test metric.

The tasks follow the experiments of the seed page (``ladam`` 0.4.1 on PyPI);
where the page does not pin a detail, the choice is written in the task's
docstring.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Task", "Size", "TASKS", "get_task", "sample_indices"]


@dataclasses.dataclass(frozen=True)
class Size:
  """The sizes of one run: seeds, steps and the model/data sizes."""
  seeds: int
  steps: int
  eval_every: int
  options: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Task:
  """One benchmark task (see the module docstring)."""
  name: str
  description: str
  metric: str
  higher_is_better: bool
  learning_rate: float
  c2: float
  setup: Callable[[jax.Array, Size], tuple[Any, Any]]
  loss: Callable[[Any, Any, jax.Array, Size], jax.Array]
  evaluate: Callable[[Any, Any, Size], jax.Array]
  default: Size
  full: Size
  tiny: Size
  seed_claim: str = ""
  seed_batching: str = "vmap"  # or 'loop' (see _train: which is faster)


def sample_indices(key, n_total, batch):
  """The minibatch of one step: ``batch`` distinct indices of ``n_total``."""
  return jax.random.choice(key, n_total, (batch,), replace=False)


def _minibatch(data, key, size):
  """``(x, y)`` of the training minibatch drawn with ``key``."""
  x, y = data["train"]
  idx = sample_indices(key, x.shape[0], size.options["batch"])
  return x[idx], y[idx]


# ----------------------------------------------------------------------------
# cnn-denoise
# ----------------------------------------------------------------------------


class DenoiseCNN(nn.Module):
  """1-D CNN 1→32 (k7) → 32 (k5) → 32 (k5) → 1 (k3), ReLU, 'SAME' padding."""
  channels: int = 32

  @nn.compact
  def __call__(self, x):
    for features, k in ((self.channels, 7), (self.channels, 5),
                        (self.channels, 5)):
      x = nn.relu(nn.Conv(features, (k,), padding="SAME")(x))
    return nn.Conv(1, (3,), padding="SAME")(x)


def _sinusoids(key, n, length, noise):
  """Sums of five random sinusoids (the seed's signals) plus Gaussian noise."""
  k1, k2, k3, k4 = jax.random.split(key, 4)
  t = jnp.linspace(0.0, 1.0, length)
  freq = jax.random.uniform(k1, (n, 5, 1), minval=1.0, maxval=10.0)
  phase = jax.random.uniform(k2, (n, 5, 1), maxval=2 * jnp.pi)
  amp = jax.random.uniform(k3, (n, 5, 1), minval=0.2, maxval=1.0)
  clean = jnp.sum(amp * jnp.sin(2 * jnp.pi * freq * t + phase), axis=1)
  noisy = clean + noise * jax.random.normal(k4, clean.shape)
  return noisy[..., None], clean[..., None]


def _denoise_setup(key, size):
  o = size.options
  kt, ke, ki = jax.random.split(key, 3)
  train = _sinusoids(kt, o["n_train"], o["length"], o["noise"])
  test = _sinusoids(ke, o["n_test"], o["length"], o["noise"])
  params = DenoiseCNN(o["channels"]).init(ki, train[0][:1])
  return params, {"train": train, "test": test}


def _denoise_loss(params, data, key, size):
  x, y = _minibatch(data, key, size)
  pred = DenoiseCNN(size.options["channels"]).apply(params, x)
  return jnp.mean((pred - y) ** 2)


def _denoise_eval(params, data, size):
  x, y = data["test"]
  pred = DenoiseCNN(size.options["channels"]).apply(params, x)
  return jnp.mean((pred - y) ** 2)


_DENOISE = dict(n_train=200, n_test=100, length=256, noise=0.3, batch=32,
                channels=32)

CNN_DENOISE = Task(
    name="cnn-denoise",
    description=("1-D CNN denoiser (1→32 k7, 32→32 k5, 32→32 k5, 32→1 k3, "
                 "ReLU) on sums of five random sinusoids, length 256, "
                 "Gaussian noise 0.3; 200 train / 100 test signals per seed, "
                 "batch 32, lr 1e-3"),
    metric="test MSE",
    higher_is_better=False,
    learning_rate=1e-3,
    c2=1e-3,
    setup=_denoise_setup,
    loss=_denoise_loss,
    evaluate=_denoise_eval,
    default=Size(seeds=8, steps=300, eval_every=25, options=_DENOISE),
    full=Size(seeds=20, steps=300, eval_every=10, options=_DENOISE),
    tiny=Size(seeds=2, steps=4, eval_every=2,
              options=dict(_DENOISE, n_train=16, n_test=8, length=32,
                           batch=8, channels=4)),
    seed_claim="test MSE 0.0138 → 0.0135 (−2.2 %, 80 % win rate, 20 seeds)",
    seed_batching="loop",
)


# ----------------------------------------------------------------------------
# pinn-wave
# ----------------------------------------------------------------------------


class TanhMLP(nn.Module):
  """``in → width × depth (tanh) → out``."""
  width: int
  depth: int
  out: int = 1

  @nn.compact
  def __call__(self, x):
    for _ in range(self.depth):
      x = jnp.tanh(nn.Dense(self.width)(x))
    return nn.Dense(self.out)(x)


def _wave_model(size):
  return TanhMLP(size.options["width"], size.options["depth"])


def _wave_setup(key, size):
  o = size.options
  kf, kb, kc, ki = jax.random.split(key, 4)
  interior = jax.random.uniform(kf, (o["n_interior"], 2))  # (x, t)
  nb = o["n_boundary"]
  tb = jax.random.uniform(kb, (nb,))
  boundary = jnp.concatenate([
      jnp.stack([jnp.zeros(nb // 2), tb[:nb // 2]], -1),
      jnp.stack([jnp.ones(nb - nb // 2), tb[nb // 2:]], -1)])
  initial = jnp.stack([jax.random.uniform(kc, (o["n_initial"],)),
                       jnp.zeros(o["n_initial"])], -1)
  g = jnp.linspace(0.0, 1.0, o["grid"])
  xx, tt = jnp.meshgrid(g, g, indexing="ij")
  grid = jnp.stack([xx.ravel(), tt.ravel()], -1)
  params = _wave_model(size).init(ki, interior[:1])
  return params, {"interior": interior, "boundary": boundary,
                  "initial": initial, "grid": grid}


def _wave_loss(params, data, key, size):
  del key  # full batch
  model = _wave_model(size)

  def u(z):
    return model.apply(params, z[None])[0, 0]

  def residual(z):
    hess = jax.hessian(u)(z)
    return hess[1, 1] - hess[0, 0]  # u_tt − u_xx

  pde = jnp.mean(jax.vmap(residual)(data["interior"]) ** 2)
  bc = jnp.mean(model.apply(params, data["boundary"]) ** 2)
  x0 = data["initial"]
  ic_u = model.apply(params, x0)[:, 0] - jnp.sin(jnp.pi * x0[:, 0])
  ic_ut = jax.vmap(lambda z: jax.grad(u)(z)[1])(x0)
  ic = jnp.mean(ic_u ** 2) + jnp.mean(ic_ut ** 2)
  return pde + 10.0 * bc + 10.0 * ic


def _wave_eval(params, data, size):
  z = data["grid"]
  exact = jnp.sin(jnp.pi * z[:, 0]) * jnp.cos(jnp.pi * z[:, 1])
  pred = _wave_model(size).apply(params, z)[:, 0]
  return jnp.sqrt(jnp.sum((pred - exact) ** 2) / jnp.sum(exact ** 2))


_WAVE = dict(width=128, depth=4, n_interior=1000, n_boundary=100,
             n_initial=100, grid=50)

PINN_WAVE = Task(
    name="pinn-wave",
    description=("PINN for u_tt = u_xx on [0,1]², u(0,t)=u(1,t)=0, "
                 "u(x,0)=sin(πx), u_t(x,0)=0 (exact sin(πx)cos(πt)); tanh MLP "
                 "2→128×4→1; loss PDE + 10·BC + 10·IC on fixed random "
                 "collocation points (1000 interior, 100 boundary, 100 initial "
                 "per seed), full batch, lr 1e-3; metric: relative L2 error "
                 "on a 50×50 grid"),
    metric="relative L2 error",
    higher_is_better=False,
    learning_rate=1e-3,
    c2=1e-5,
    setup=_wave_setup,
    loss=_wave_loss,
    evaluate=_wave_eval,
    default=Size(seeds=4, steps=300, eval_every=50,
                 options=dict(_WAVE, n_interior=256, n_boundary=64,
                              n_initial=64)),
    full=Size(seeds=20, steps=5000, eval_every=250, options=_WAVE),
    tiny=Size(seeds=2, steps=4, eval_every=2,
              options=dict(_WAVE, width=8, depth=2, n_interior=16,
                           n_boundary=8, n_initial=8, grid=5)),
    seed_claim=("MSE 0.00105 → 0.000387 (−63 %, 70 % win rate, 20 seeds); "
                "later on the page: L2 0.0067 ± 0.0015 → 0.0066 ± 0.0010 "
                "(3 seeds, 5000 steps, best L2 per seed)"),
)


# ----------------------------------------------------------------------------
# transformer-digits
# ----------------------------------------------------------------------------


class Block(nn.Module):
  """Pre-norm transformer block; q, k, v, out are separate Dense kernels."""
  dim: int
  heads: int

  @nn.compact
  def __call__(self, x):
    b, n, d = x.shape
    hd = self.dim // self.heads
    h = nn.LayerNorm(name="norm1")(x)
    q, k, v = (nn.Dense(self.dim, name=name)(h).reshape(b, n, self.heads, hd)
               for name in ("query", "key", "value"))
    att = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd))
    o = jnp.einsum("bhqk,bkhd->bqhd", att, v).reshape(b, n, d)
    x = x + nn.Dense(self.dim, name="out")(o)
    h = nn.LayerNorm(name="norm2")(x)
    h = nn.Dense(2 * self.dim, name="mlp_in")(h)
    return x + nn.Dense(self.dim, name="mlp_out")(nn.gelu(h))


class DigitsTransformer(nn.Module):
  """8×8 digit images as 16 patches of 2×2 pixels → transformer → 10 classes."""
  dim: int
  heads: int
  layers: int

  @nn.compact
  def __call__(self, images):
    b = images.shape[0]
    patches = images.reshape(b, 4, 2, 4, 2).transpose(0, 1, 3, 2, 4)
    x = nn.Dense(self.dim, name="patch_embed")(patches.reshape(b, 16, 4))
    pos = self.param("pos_embed", nn.initializers.normal(0.02), (16, self.dim))
    x = x + pos
    for i in range(self.layers):
      x = Block(self.dim, self.heads, name=f"block_{i}")(x)
    x = nn.LayerNorm(name="norm_out")(x).mean(axis=1)
    return nn.Dense(10, name="head")(x)


def _digits_arrays():
  try:
    from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  except ImportError as e:  # pragma: no cover
    raise ImportError(
        "transformer-digits needs scikit-learn (its bundled digits data set): "
        "pip install 'ladam-jax[examples]'") from e
  digits = load_digits()
  images = (digits.images / 16.0).astype(np.float32)
  return jnp.asarray(images), jnp.asarray(digits.target.astype(np.int32))


def _digits_model(size):
  o = size.options
  return DigitsTransformer(o["dim"], o["heads"], o["layers"])


def _digits_setup(key, size):
  images, labels = _digits_arrays()
  images = images[:size.options["n_total"]]
  labels = labels[:size.options["n_total"]]
  kp, ki = jax.random.split(key)
  perm = jax.random.permutation(kp, images.shape[0])
  n_test = images.shape[0] // 5
  test, train = perm[:n_test], perm[n_test:]
  params = _digits_model(size).init(ki, images[:1])
  return params, {"train": (images[train], labels[train]),
                  "test": (images[test], labels[test])}


def _digits_loss(params, data, key, size):
  x, y = _minibatch(data, key, size)
  logits = _digits_model(size).apply(params, x)
  return jnp.mean(
      -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], -1))


def _digits_eval(params, data, size):
  x, y = data["test"]
  logits = _digits_model(size).apply(params, x)
  return 100.0 * jnp.mean(jnp.argmax(logits, -1) == y)


_DIGITS = dict(dim=64, heads=4, layers=2, batch=64, n_total=1797)

TRANSFORMER_DIGITS = Task(
    name="transformer-digits",
    description=("transformer classifier (16 patches of 2×2 pixels, 4 heads, "
                 "2 pre-norm layers, separate q/k/v/out Dense kernels) on "
                 "scikit-learn's bundled 8×8 digits (1797 images, a random "
                 "80/20 split per seed), batch 64, lr 1e-3. The seed used "
                 "FashionMNIST, which cannot be downloaded here"),
    metric="test accuracy %",
    higher_is_better=True,
    learning_rate=1e-3,
    c2=1e-4,
    setup=_digits_setup,
    loss=_digits_loss,
    evaluate=_digits_eval,
    default=Size(seeds=5, steps=400, eval_every=50, options=_DIGITS),
    full=Size(seeds=20, steps=680, eval_every=34,  # 30 epochs of 1437
              options=dict(_DIGITS, dim=128)),
    tiny=Size(seeds=2, steps=4, eval_every=2,
              options=dict(_DIGITS, dim=8, heads=2, layers=1, batch=8,
                           n_total=60)),
    seed_claim=("FashionMNIST (4 heads, 128-dim, 2 layers, 30 epochs, 5 "
                "seeds): accuracy 89.46 ± 0.10 % → 89.66 ± 0.06 %, p = 0.0005"),
    seed_batching="loop",
)


# ----------------------------------------------------------------------------
# noisy-regression
# ----------------------------------------------------------------------------


class WideMLP(nn.Module):
  width: int

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Dense(self.width)(x))
    x = nn.relu(nn.Dense(self.width)(x))
    return nn.Dense(1)(x)[:, 0]


def _target(x):
  """A smooth function of 8 inputs (the clean target)."""
  return (jnp.sin(2.0 * x[:, 0]) + jnp.cos(3.0 * x[:, 1]) * x[:, 2]
          + 0.5 * x[:, 3] ** 2 - x[:, 4] * x[:, 5] + 0.3 * x[:, 6]
          + jnp.tanh(2.0 * x[:, 7]))


def _regression_setup(key, size):
  o = size.options
  kx, kn, ke, ki = jax.random.split(key, 4)
  x_train = jax.random.uniform(kx, (o["n_train"], 8), minval=-1.0, maxval=1.0)
  y_train = _target(x_train) + o["noise"] * jax.random.normal(
      kn, (o["n_train"],))
  x_test = jax.random.uniform(ke, (o["n_test"], 8), minval=-1.0, maxval=1.0)
  params = WideMLP(o["width"]).init(ki, x_train[:1])
  return params, {"train": (x_train, y_train),
                  "test": (x_test, _target(x_test))}


def _regression_loss(params, data, key, size):
  x, y = _minibatch(data, key, size)
  return jnp.mean((WideMLP(size.options["width"]).apply(params, x) - y) ** 2)


def _regression_eval(params, data, size):
  x, y = data["test"]
  return jnp.mean((WideMLP(size.options["width"]).apply(params, x) - y) ** 2)


_REGRESSION = dict(width=512, n_train=512, n_test=1024, noise=1.0, batch=64)

NOISY_REGRESSION = Task(
    name="noisy-regression",
    description=("wide MLP 8→512→512→1 (ReLU) fitted to 512 noisy samples "
                 "(a smooth function of 8 inputs plus Gaussian noise σ=1), "
                 "batch 64, lr 1e-3; metric: MSE against the clean targets on "
                 "1024 test points"),
    metric="clean test MSE",
    higher_is_better=False,
    learning_rate=1e-3,
    c2=5e-4,
    setup=_regression_setup,
    loss=_regression_loss,
    evaluate=_regression_eval,
    default=Size(seeds=12, steps=400, eval_every=25, options=_REGRESSION),
    full=Size(seeds=20, steps=500, eval_every=25,
              options=dict(_REGRESSION, width=1024)),
    tiny=Size(seeds=2, steps=4, eval_every=2,
              options=dict(_REGRESSION, width=8, n_train=16, n_test=8,
                           batch=8)),
    seed_claim="MSE 0.446 → 0.441 (−1.1 %, single run)",
)


TASKS = {t.name: t for t in (CNN_DENOISE, PINN_WAVE, TRANSFORMER_DIGITS,
                             NOISY_REGRESSION)}


def get_task(name: str) -> Task:
  if name not in TASKS:
    raise ValueError(f"Unknown task {name!r}: choose one of {tuple(TASKS)}.")
  return TASKS[name]
