"""The README's recommended configuration trains what Adam trains.

``ladam_jax.ladam(lr, c2=ladam_jax.auto_c2())`` on three peers' models, with
only the optimizer line changed: Equinox's own ``train_rnn`` example (a GRU
cell on clockwise / anticlockwise spirals), the same GRU in Flax linen, and a
small Flax CNN on scikit-learn's digits. Each must reach Adam's accuracy
within ``MARGIN`` on every random seed. With the package's clamp
(``variance_floor='eps'``, the default before 0.3.0) the GRU stalls: it is
run too, to show that the test can fail.
"""

import math

import jax
import jax.numpy as jnp
import optax
import pytest

import ladam_jax

pytestmark = pytest.mark.slow
MARGIN = 0.05  # accuracy
SEEDS = (0, 1, 2)


def _spirals(n, key):
  """Equinox's train_rnn data: 16 steps of a spiral, label = direction."""
  t = jnp.linspace(0, 2 * math.pi, 16)
  offset = jax.random.uniform(key, (n, 1), minval=0, maxval=2 * math.pi)
  x1 = jnp.sin(t + offset) / (1 + t)
  x2 = jnp.cos(t + offset) / (1 + t)
  half = n // 2
  x1 = x1.at[:half].multiply(-1)
  y = jnp.ones((n,)).at[:half].set(0)
  return jnp.stack([x1, x2], axis=-1), y


def _train(loss_fn, predict, params, opt, x, y, steps, batch, key):
  """``steps`` minibatch steps in one jitted scan; accuracy on (x, y)."""
  state = opt.init(params)

  def step(carry, k):
    p, s = carry
    idx = jax.random.randint(k, (batch,), 0, x.shape[0])
    grads = jax.grad(loss_fn)(p, x[idx], y[idx])
    u, s = opt.update(grads, s, p)
    return (optax.apply_updates(p, u), s), None

  (params, _), _ = jax.jit(lambda c, ks: jax.lax.scan(step, c, ks))(
      (params, state), jax.random.split(key, steps))
  return float(jnp.mean((predict(params, x) > 0.5) == (y > 0.5))) \
      if y.ndim == 1 else float(jnp.mean(
          jnp.argmax(predict(params, x), -1) == jnp.argmax(y, -1)))


def _bce(p, y):
  p = jnp.clip(p, 1e-7, 1 - 1e-7)
  return -jnp.mean(y * jnp.log(p) + (1 - y) * jnp.log(1 - p))


OPTS = {
    "adam": lambda: optax.adam(3e-3),
    "ladam auto_c2": lambda: ladam_jax.ladam(3e-3, c2=ladam_jax.auto_c2()),
    "ladam auto_c2, floor eps": lambda: ladam_jax.ladam(
        3e-3, c2=ladam_jax.auto_c2(), variance_floor="eps"),
}


def _check(accuracies):
  for seed in SEEDS:
    adam = accuracies["adam"][seed]
    assert adam > 0.9, accuracies  # the task is learnable in these steps
    assert accuracies["ladam auto_c2"][seed] >= adam - MARGIN, accuracies


def test_equinox_gru_trains_with_the_recommended_config():
  eqx = pytest.importorskip("equinox")

  class RNN(eqx.Module):  # Equinox's examples/train_rnn.ipynb
    cell: eqx.Module
    linear: eqx.nn.Linear
    bias: jax.Array

    def __init__(self, key):
      ckey, lkey = jax.random.split(key)
      self.cell = eqx.nn.GRUCell(2, 16, key=ckey)
      self.linear = eqx.nn.Linear(16, 1, use_bias=False, key=lkey)
      self.bias = jnp.zeros(1)

    def __call__(self, xs):
      out, _ = jax.lax.scan(lambda h, x: (self.cell(x, h), None),
                            jnp.zeros(16), xs)
      return jax.nn.sigmoid(self.linear(out) + self.bias)[0]

  accuracies = {name: {} for name in OPTS}
  for seed in SEEDS:
    dkey, mkey, tkey = jax.random.split(jax.random.key(5678 + seed), 3)
    x, y = _spirals(10_000, dkey)
    model = RNN(mkey)
    params, static = eqx.partition(model, eqx.is_array)

    def predict(p, xs):
      return jax.vmap(eqx.combine(p, static))(xs)

    def loss_fn(p, xs, ys):
      return _bce(predict(p, xs), ys)

    for name, make in OPTS.items():
      accuracies[name][seed] = _train(loss_fn, predict, params, make(), x, y,
                                      200, 32, tkey)
  _check(accuracies)
  # The old default (the package's eps clamp) stalls on at least one seed.
  assert min(accuracies["ladam auto_c2, floor eps"].values()) < 0.9, \
      accuracies


def test_flax_gru_trains_with_the_recommended_config():
  nn = pytest.importorskip("flax.linen")

  class RNN(nn.Module):
    @nn.compact
    def __call__(self, xs):
      h = nn.RNN(nn.GRUCell(16))(xs)[:, -1]
      return jax.nn.sigmoid(nn.Dense(1)(h))[:, 0]

  model = RNN()
  accuracies = {name: {} for name in OPTS}
  for seed in SEEDS:
    dkey, mkey, tkey = jax.random.split(jax.random.key(5678 + seed), 3)
    x, y = _spirals(10_000, dkey)
    params = model.init(mkey, x[:2])["params"]
    predict = lambda p, xs: model.apply({"params": p}, xs)  # noqa: E731

    def loss_fn(p, xs, ys):
      return _bce(predict(p, xs), ys)

    for name, make in list(OPTS.items())[:2]:
      accuracies[name][seed] = _train(loss_fn, predict, params, make(), x, y,
                                      200, 32, tkey)
  _check(accuracies)


def test_flax_cnn_trains_with_the_recommended_config():
  nn = pytest.importorskip("flax.linen")
  datasets = pytest.importorskip("sklearn.datasets")
  digits = datasets.load_digits()
  x = jnp.asarray(digits.images[..., None] / 16.0, jnp.float32)
  y = jax.nn.one_hot(jnp.asarray(digits.target), 10)

  class CNN(nn.Module):
    @nn.compact
    def __call__(self, x):
      x = nn.relu(nn.Conv(16, (3, 3))(x))
      x = nn.relu(nn.Conv(16, (3, 3), strides=2)(x))
      return jax.nn.softmax(nn.Dense(10)(x.reshape(x.shape[0], -1)))

  model = CNN()
  accuracies = {name: {} for name in OPTS}
  for seed in SEEDS:
    mkey, tkey = jax.random.split(jax.random.key(seed))
    params = model.init(mkey, x[:2])["params"]
    predict = lambda p, xs: model.apply({"params": p}, xs)  # noqa: E731

    def loss_fn(p, xs, ys):
      return -jnp.mean(jnp.sum(ys * jnp.log(predict(p, xs) + 1e-7), -1))

    for name, make in list(OPTS.items())[:2]:
      accuracies[name][seed] = _train(loss_fn, predict, params, make(), x, y,
                                      300, 64, tkey)
  _check(accuracies)
