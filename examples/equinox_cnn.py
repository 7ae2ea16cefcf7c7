"""An Equinox CNN on scikit-learn's digits, trained with LAdamW.

The standard Equinox loop: ``eqx.filter(model, eqx.is_array)`` gives the
parameters, any Optax optimizer takes them. ladam_jax's default
``layout='auto'`` gives each Equinox layer the field the reference
(ladam 0.4.1) gives the PyTorch layer it mirrors (Equinox stores PyTorch's
weight layouts), and ``auto_c2`` reads the layer types.

    python examples/equinox_cnn.py            # 300 steps, ~1 min on 2 CPU cores
    python examples/equinox_cnn.py --steps 20
"""

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import ladam_jax


class CNN(eqx.Module):
  convs: list
  head: eqx.nn.MLP

  def __init__(self, key):
    k1, k2, k3 = jax.random.split(key, 3)
    self.convs = [eqx.nn.Conv2d(1, 16, 3, padding=1, key=k1),
                  eqx.nn.Conv2d(16, 16, 3, padding=1, key=k2)]
    self.head = eqx.nn.MLP(16 * 4 * 4, 10, 64, 1, key=k3)

  def __call__(self, x):  # x: (1, 8, 8)
    x = jax.nn.relu(self.convs[0](x))
    x = jax.nn.relu(self.convs[1](x))
    x = x.reshape(16, 4, 2, 4, 2).mean(axis=(2, 4))  # 2x2 average pooling
    return self.head(x.reshape(-1))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--batch", type=int, default=128)
  args = parser.parse_args()

  digits = load_digits()
  x = (digits.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
  y = digits.target
  x_train, y_train, x_test, y_test = x[:1400], y[:1400], x[1400:], y[1400:]

  model = CNN(jax.random.key(0))
  params, static = eqx.partition(model, eqx.is_array)
  print(ladam_jax.analyze_params(params, {"linear": 1e-4}))

  c2 = ladam_jax.auto_c2({"linear": 1e-4})
  opt = optax.chain(
      optax.clip_by_global_norm(1.0),
      ladam_jax.ladamw(optax.cosine_decay_schedule(3e-3, args.steps),
                       weight_decay=1e-4, c2=c2))
  opt_state = opt.init(params)

  def loss_fn(params, xb, yb):
    logits = jax.vmap(eqx.combine(params, static))(xb)
    return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

  @eqx.filter_jit
  def step(params, opt_state, xb, yb):
    loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
    updates, opt_state = opt.update(grads, opt_state, params)
    stats = ladam_jax.smoothing_stats(opt_state, c2=c2)
    return eqx.apply_updates(params, updates), opt_state, loss, stats

  rng = np.random.default_rng(0)
  for i in range(args.steps):
    idx = rng.choice(len(x_train), args.batch, replace=False)
    params, opt_state, loss, stats = step(params, opt_state, x_train[idx],
                                          y_train[idx])
    if i == 0:
      first = float(loss)
  change = float(stats.head.layers[0].weight.relative_change)
  logits = jax.vmap(eqx.combine(params, static))(x_test)
  accuracy = float(jnp.mean(jnp.argmax(logits, -1) == y_test))
  print(f"loss {first:.3g} -> {float(loss):.3g}, test accuracy "
        f"{accuracy:.3f}; the Laplacian changed the first head layer's "
        f"variance by {100 * change:.2g} % at the last step")


if __name__ == "__main__":
  main()
