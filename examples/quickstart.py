"""Quick start: train a small 1-D CNN denoiser with ladam_jax.ladam and optax.adam.

Plain JAX + Optax (no Flax needed): the same initialisation and batches for both
optimizers, a few random seeds, test RMSE printed side by side. Small by default
(about a minute on 2 CPU cores):

    python examples/quickstart.py
    python examples/quickstart.py --steps 300 --seeds 5 --c2 1e-3
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import ladam_jax


def make_data(key, n, length=256, noise=0.3):
  """Noisy sums of five sinusoids, as the reference's ``_cnn_test.py``.

  t in [0, 2π], integer frequencies 1-9, amplitudes U(0.2, 0.7).
  """
  k1, k2, k3, k4 = jax.random.split(key, 4)
  t = jnp.linspace(0.0, 2 * jnp.pi, length)
  freq = jax.random.randint(k1, (n, 5, 1), 1, 10).astype(jnp.float32)
  phase = jax.random.uniform(k2, (n, 5, 1), maxval=2 * jnp.pi)
  amp = jax.random.uniform(k3, (n, 5, 1), minval=0.2, maxval=0.7)
  clean = jnp.sum(amp * jnp.sin(freq * t + phase), axis=1)
  noisy = clean + noise * jax.random.normal(k4, clean.shape)
  return noisy[..., None], clean[..., None]  # (n, length, 1) NWC


LAYERS = [(7, 1, 32), (5, 32, 32), (5, 32, 32), (3, 32, 1)]  # (k, in, out)


def init_params(key):
  params = {}
  for i, (k, cin, cout) in enumerate(LAYERS):
    key, kw, kb = jax.random.split(key, 3)
    bound = (k * cin) ** -0.5  # PyTorch's default Conv1d init
    params[f"conv_{i}"] = {
        "kernel": jax.random.uniform(kw, (k, cin, cout), minval=-bound,
                                     maxval=bound),  # Flax layout
        "bias": jax.random.uniform(kb, (cout,), minval=-bound, maxval=bound),
    }
  return params


def model(params, x):
  for i in range(len(LAYERS)):
    p = params[f"conv_{i}"]
    x = jax.lax.conv_general_dilated(
        x, p["kernel"], (1,), "SAME",
        dimension_numbers=("NWC", "WIO", "NWC")) + p["bias"]
    if i < len(LAYERS) - 1:
      x = jax.nn.relu(x)
  return x


def loss_fn(params, x, y):
  return jnp.mean((model(params, x) - y) ** 2)


def make_train(opt, steps, batch):
  """``train(params, data, key)``: ``steps`` Adam-style steps of ``opt``.

  The step is compiled once per optimizer and reused for every random seed
  (the data are arguments, not constants baked into the program).
  """

  @jax.jit
  def step(params, state, key, x_train, y_train):
    idx = jax.random.randint(key, (batch,), 0, x_train.shape[0])
    grads = jax.grad(loss_fn)(params, x_train[idx], y_train[idx])
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  def train(params, data, key):
    state = opt.init(params)
    for k in jax.random.split(key, steps):
      params, state = step(params, state, k, *data)
    return params

  return train


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=150)
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--c2", type=float, default=1e-3)
  parser.add_argument("--lr", type=float, default=1e-3)
  args = parser.parse_args(argv)
  optimizers = {
      "optax.adam": optax.adam(args.lr),
      "ladam (floor eps)": ladam_jax.ladam(args.lr, c2=args.c2),
      "ladam (floor 0)": ladam_jax.ladam(args.lr, c2=args.c2,
                                         variance_floor=0.0),
  }
  trainers = {name: make_train(opt, args.steps, 32)
              for name, opt in optimizers.items()}
  results = {name: [] for name in optimizers}
  t0 = time.time()
  for seed in range(args.seeds):
    key = jax.random.key(seed)
    kd, kt, ki, kb = jax.random.split(key, 4)
    train_data = make_data(kd, 200)
    x_test, y_test = make_data(kt, 100)
    params0 = init_params(ki)
    for name, train in trainers.items():
      params = train(params0, train_data, kb)
      rmse = float(jnp.sqrt(loss_fn(params, x_test, y_test)))
      results[name].append(rmse)
  print(f"1-D CNN denoising, {args.seeds} random seeds x {args.steps} steps, "
        f"c2={args.c2}, lr={args.lr} ({time.time() - t0:.0f} s)")
  print("| optimizer | test RMSE mean ± std |")
  print("|---|---|")
  for name, values in results.items():
    v = np.asarray(values)
    std = v.std(ddof=1) if v.size > 1 else 0.0
    # Significant digits, not decimals: a small RMSE still shows.
    print(f"| {name} | {v.mean():.4g} ± {std:.2g} |")


if __name__ == "__main__":
  main()
