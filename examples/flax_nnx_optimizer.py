"""Flax NNX: ``nnx.Optimizer(model, ladam_jax.ladam(...), wrt=nnx.Param)``.

A small transformer (``nnx.MultiHeadAttention``) classifies scikit-learn's
8×8 digits as 16 patches of 2×2 pixels. c2 per subtree from the layer
classes of :func:`ladam_jax.auto_c2`: attention kernels uncoupled (the
reference's advice), the MLP and patch-embedding kernels 1e-4, norms, biases
and the position embedding 0::

    python examples/flax_nnx_optimizer.py
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from sklearn.datasets import load_digits

import ladam_jax


class Block(nnx.Module):
  def __init__(self, dim, heads, *, rngs):
    self.norm1 = nnx.LayerNorm(dim, rngs=rngs)
    self.attn = nnx.MultiHeadAttention(heads, dim, decode=False, rngs=rngs)
    self.norm2 = nnx.LayerNorm(dim, rngs=rngs)
    self.mlp_in = nnx.Linear(dim, 2 * dim, rngs=rngs)
    self.mlp_out = nnx.Linear(2 * dim, dim, rngs=rngs)

  def __call__(self, x):
    x = x + self.attn(self.norm1(x))
    return x + self.mlp_out(nnx.gelu(self.mlp_in(self.norm2(x))))


class Transformer(nnx.Module):
  def __init__(self, dim=64, heads=4, layers=2, *, rngs):
    self.patch_embed = nnx.Linear(4, dim, rngs=rngs)
    self.pos_embed = nnx.Param(0.02 * jax.random.normal(rngs.params(),
                                                        (16, dim)))
    self.blocks = nnx.List([Block(dim, heads, rngs=rngs)
                            for _ in range(layers)])
    self.norm = nnx.LayerNorm(dim, rngs=rngs)
    self.head = nnx.Linear(dim, 10, rngs=rngs)

  def __call__(self, images):
    b = images.shape[0]
    p = images.reshape(b, 4, 2, 4, 2).transpose(0, 1, 3, 2, 4).reshape(b, 16, 4)
    x = self.patch_embed(p) + self.pos_embed[...]
    for block in self.blocks:
      x = block(x)
    return self.head(self.norm(x).mean(axis=1))


C2_MAP = {"linear": 1e-4}  # the other classes keep the reference's 0


def make_optimizer(model, lr):
  params = nnx.state(model, nnx.Param)
  print(ladam_jax.analyze_params(params, C2_MAP))
  tx = ladam_jax.ladam(lr, c2=ladam_jax.auto_c2(C2_MAP))
  return nnx.Optimizer(model, tx, wrt=nnx.Param)


@nnx.jit
def train_step(model, optimizer, x, y):
  def loss_fn(model):
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()
  loss, grads = nnx.value_and_grad(loss_fn)(model)
  optimizer.update(model, grads)
  return loss


@nnx.jit
def accuracy(model, x, y):
  return jnp.mean(jnp.argmax(model(x), -1) == y)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--lr", type=float, default=1e-3)
  parser.add_argument("--dim", type=int, default=64)
  args = parser.parse_args(argv)
  digits = load_digits()
  x = (digits.images / 16.0).astype(np.float32)
  y = digits.target.astype(np.int32)
  perm = np.random.default_rng(0).permutation(len(x))
  test, train = perm[:len(x) // 5], perm[len(x) // 5:]
  model = Transformer(dim=args.dim, rngs=nnx.Rngs(0))
  optimizer = make_optimizer(model, args.lr)
  rng = np.random.default_rng(0)
  losses = []
  for step in range(args.steps):
    idx = rng.choice(train, args.batch, replace=False)
    losses.append(float(train_step(model, optimizer, x[idx], y[idx])))
    if (step + 1) % max(args.steps // 5, 1) == 0:
      print(f"step {step + 1:4d}  loss {np.mean(losses[-20:]):.4f}")
  acc = float(accuracy(model, x[test], y[test]))
  print(f"test accuracy {100 * acc:.2f} %")
  return losses, acc


if __name__ == "__main__":
  main()
