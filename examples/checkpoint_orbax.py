"""Checkpoint LAdam's optimizer state with Orbax mid-training and resume.

Trains a small MLP regression for N steps without interruption, then again
with a save at N/2, a restore (from disk, into freshly initialised
structures) and N/2 more steps; prints whether the two runs are bit-identical::

    python examples/checkpoint_orbax.py
"""

from __future__ import annotations

import argparse
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

import ladam_jax


def init(key, sizes=(4, 64, 64, 1)):
  params = {}
  for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
    key, sub = jax.random.split(key)
    params[f"dense_{i}"] = {"kernel": jax.random.normal(sub, (a, b)) / a**0.5,
                            "bias": jnp.zeros(b)}
  return params


def forward(params, x):
  n = len(params)
  for i in range(n):
    x = x @ params[f"dense_{i}"]["kernel"] + params[f"dense_{i}"]["bias"]
    if i < n - 1:
      x = jnp.tanh(x)
  return x[:, 0]


def make_tx(steps):
  return optax.chain(
      optax.clip_by_global_norm(1.0),
      ladam_jax.ladamw(optax.cosine_decay_schedule(3e-3, steps),
                       c2=1e-3, weight_decay=1e-4))


def make_step(tx, x, y):
  @jax.jit
  def step(params, opt_state, i):
    idx = jax.random.choice(jax.random.key(i), x.shape[0], (32,),
                            replace=False)
    loss, grads = jax.value_and_grad(
        lambda p: jnp.mean((forward(p, x[idx]) - y[idx]) ** 2))(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss
  return step


def train(step, params, opt_state, start, stop):
  for i in range(start, stop):
    params, opt_state, _ = step(params, opt_state, i)
  return params, opt_state


def save(directory, params, opt_state):
  with ocp.StandardCheckpointer() as ckpt:
    ckpt.save(directory, {"params": params, "opt_state": opt_state})


def restore(directory, like_params, like_opt_state):
  """Restores into the structure (and shardings) of ``like_*``."""
  target = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                        {"params": like_params, "opt_state": like_opt_state})
  with ocp.StandardCheckpointer() as ckpt:
    out = ckpt.restore(directory, target)
  return out["params"], out["opt_state"]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=200)
  args = parser.parse_args(argv)
  kx, kp = jax.random.split(jax.random.key(0))
  x = jax.random.uniform(kx, (512, 4), minval=-1, maxval=1)
  y = jnp.sin(3 * x[:, 0]) * x[:, 1] + x[:, 2] ** 2 - x[:, 3]
  tx = make_tx(args.steps)
  step = make_step(tx, x, y)
  params0 = init(kp)
  half = args.steps // 2

  p_ref, s_ref = train(step, params0, tx.init(params0), 0, args.steps)

  p_half, s_half = train(step, params0, tx.init(params0), 0, half)
  with tempfile.TemporaryDirectory() as tmp:
    save(f"{tmp}/step_{half}", p_half, s_half)
    fresh = init(jax.random.key(123))  # any values: only the structure counts
    p_res, s_res = restore(f"{tmp}/step_{half}", fresh, tx.init(fresh))
  p_end, s_end = train(step, p_res, s_res, half, args.steps)

  same = all(np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves((p_ref, s_ref)), jax.tree.leaves((p_end, s_end))))
  print(f"resumed at step {half} of {args.steps}: bit-identical to the "
        f"uninterrupted run: {same}")
  return same


if __name__ == "__main__":
  main()
