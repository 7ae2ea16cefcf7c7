"""Flax linen + ``TrainState``: a small CNN on scikit-learn's digits with LAdam.

``train_state.TrainState.create(..., tx=ladam_jax.ladam(...))`` is all it
takes; c2 per subtree comes from :func:`ladam_jax.auto_c2` (the reference's
per-layer-type recommendation) with the conv kernels set to 1e-3 here, and
:func:`ladam_jax.analyze_params` prints what it decided::

    python examples/flax_linen_trainstate.py
    python examples/flax_linen_trainstate.py --steps 20   # a quick look
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state
from sklearn.datasets import load_digits

import ladam_jax


class CNN(nn.Module):
  """8×8 digits → conv 3×3 (16) → conv 3×3 (32) → mean pool → Dense(10)."""

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(16, (3, 3))(x))
    x = nn.relu(nn.Conv(32, (3, 3))(x))
    x = x.mean(axis=(1, 2))
    x = nn.relu(nn.Dense(64)(x))
    return nn.Dense(10)(x)


def load(seed=0):
  digits = load_digits()
  x = (digits.images / 16.0).astype(np.float32)[..., None]  # NHWC
  y = digits.target.astype(np.int32)
  perm = np.random.default_rng(seed).permutation(len(x))
  n_test = len(x) // 5
  return ((x[perm[n_test:]], y[perm[n_test:]]),
          (x[perm[:n_test]], y[perm[:n_test]]))


def create_state(key, lr, c2_conv):
  model = CNN()
  params = model.init(key, jnp.zeros((1, 8, 8, 1)))["params"]
  print(ladam_jax.analyze_params(params, {"conv": c2_conv}))
  tx = ladam_jax.ladam(lr, c2=ladam_jax.auto_c2({"conv": c2_conv}))
  return train_state.TrainState.create(apply_fn=model.apply, params=params,
                                       tx=tx)


@jax.jit
def train_step(state, x, y):
  def loss_fn(params):
    logits = state.apply_fn({"params": params}, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  return state.apply_gradients(grads=grads), loss


@jax.jit
def accuracy(state, x, y):
  logits = state.apply_fn({"params": state.params}, x)
  return jnp.mean(jnp.argmax(logits, -1) == y)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--lr", type=float, default=3e-3)
  parser.add_argument("--c2-conv", type=float, default=1e-3)
  args = parser.parse_args(argv)
  (x, y), (xt, yt) = load()
  state = create_state(jax.random.key(0), args.lr, args.c2_conv)
  rng = np.random.default_rng(0)
  losses = []
  for step in range(args.steps):
    idx = rng.choice(len(x), args.batch, replace=False)
    state, loss = train_step(state, x[idx], y[idx])
    losses.append(float(loss))
    if (step + 1) % max(args.steps // 5, 1) == 0:
      print(f"step {step + 1:4d}  loss {np.mean(losses[-20:]):.4f}")
  acc = float(accuracy(state, xt, yt))
  print(f"test accuracy {100 * acc:.2f} %")
  return losses, acc


if __name__ == "__main__":
  main()
