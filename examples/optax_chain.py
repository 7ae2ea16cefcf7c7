"""LAdamW inside an Optax chain: gradient clipping, a warmup-cosine schedule,
per-subtree c2 by path rules, and hyperparameters injected as state.

The model is a Flax linen 1-D CNN denoiser (the reference's CNN-denoising task)::

    python examples/optax_chain.py
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import ladam_jax


class Denoiser(nn.Module):
  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(32, (7,))(x))
    x = nn.relu(nn.Conv(32, (5,))(x))
    return nn.Conv(1, (3,))(x)


def make_data(key, n, length=128, noise=0.3):
  k1, k2, k3 = jax.random.split(key, 3)
  t = jnp.linspace(0.0, 1.0, length)
  freq = jax.random.uniform(k1, (n, 5, 1), minval=1.0, maxval=10.0)
  phase = jax.random.uniform(k2, (n, 5, 1), maxval=2 * jnp.pi)
  clean = jnp.sum(jnp.sin(2 * jnp.pi * freq * t + phase), axis=1) / 2
  noisy = clean + noise * jax.random.normal(k3, clean.shape)
  return noisy[..., None], clean[..., None]


def make_optimizer(steps, peak_lr=3e-3):
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, peak_lr, warmup_steps=max(steps // 10, 1), decay_steps=steps)
  # Conv kernels coupled strongly, everything else (biases) not at all.
  c2 = ladam_jax.c2_by_path({r"Conv_\d+/kernel": 1e-3}, default=0.0)
  return optax.chain(
      optax.clip_by_global_norm(1.0),
      # inject_hyperparams: c2 and weight_decay live in the state and can be
      # read or changed between steps (they are traced, not Python floats).
      optax.inject_hyperparams(ladam_jax.ladamw)(
          learning_rate=schedule, weight_decay=1e-4, c2=c2),
  )


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=300)
  args = parser.parse_args(argv)
  x, y = make_data(jax.random.key(0), 256)
  xt, yt = make_data(jax.random.key(1), 64)
  model = Denoiser()
  params = model.init(jax.random.key(2), x[:1])["params"]
  tx = make_optimizer(args.steps)
  opt_state = tx.init(params)

  def loss_fn(params, x, y):
    return jnp.mean((model.apply({"params": params}, x) - y) ** 2)

  @jax.jit
  def step(params, opt_state, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  rng = np.random.default_rng(0)
  losses = []
  for i in range(args.steps):
    idx = rng.choice(x.shape[0], 32, replace=False)
    params, opt_state, loss = step(params, opt_state, x[idx], y[idx])
    losses.append(float(loss))
    if (i + 1) % max(args.steps // 5, 1) == 0:
      lr = opt_state[1].hyperparams["learning_rate"]
      print(f"step {i + 1:4d}  loss {np.mean(losses[-20:]):.4f}  "
            f"lr {float(lr):.2e}")
  test = float(loss_fn(params, xt, yt))
  print(f"test MSE {test:.4f}")
  return losses, test


if __name__ == "__main__":
  main()
