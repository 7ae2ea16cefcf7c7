"""Training many seeds with one compiled step per optimizer.

Seeds are batched in one of two ways, with the same results up to float
rounding: ``'vmap'`` (``jax.vmap`` over seeds: one call trains every seed) or
``'loop'`` (the single-seed step compiled once and called seed after seed).
Steps are a Python loop around the jitted step, not ``lax.scan``: on XLA:CPU
a convolution inside a ``while`` loop ran 33x slower (0.23 s vs 6.9 ms per
step of cnn-denoise, JAX 0.10.2). Which batching is faster depends on the
task (measured on 2 CPU cores, 8 seeds, ms per step for all seeds: cnn-denoise
vmap 110 / loop 55, transformer-digits 119 / 67, pinn-wave 223 / 289,
noisy-regression 15 / 23); each task's ``Task.seed_batching`` holds the
faster one.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ladam_jax.bench import _tasks

__all__ = ["RunResult", "Prepared", "prepare", "seed_keys", "train_seeds",
           "eval_schedule"]


@dataclasses.dataclass
class RunResult:
  """Learning curves of one optimizer over all seeds."""
  name: str
  steps: np.ndarray        # (n_evals,) step numbers of the evaluations
  curves: np.ndarray       # (n_seeds, n_evals) test metric
  losses: np.ndarray       # (n_seeds, n_steps) training loss
  seconds: float           # wall time, compile included

  @property
  def final(self) -> np.ndarray:
    return self.curves[:, -1]


def seed_keys(n_seeds: int, base_seed: int = 0):
  """Per-seed (setup, batch) keys; identical for every optimizer."""
  keys = jax.vmap(lambda s: jax.random.split(jax.random.key(s), 2))(
      jnp.arange(base_seed, base_seed + n_seeds))
  return keys[:, 0], keys[:, 1]


SEED_BATCHING = ("vmap", "loop")


def eval_schedule(size: _tasks.Size) -> list[int]:
  """Steps after which the test metric is recorded: 0, every k, and the last."""
  return [0] + [min(s, size.steps) for s in
                range(size.eval_every, size.steps + size.eval_every,
                      size.eval_every)]


@dataclasses.dataclass
class Prepared:
  """Initial params, data and batch keys of every seed (shared by all runs)."""
  params: Any
  data: Any
  batch_keys: jax.Array


def prepare(task: _tasks.Task, size: _tasks.Size,
            base_seed: int = 0) -> Prepared:
  """Sets up every seed once; every optimizer then starts from the same state."""
  setup_keys, batch_keys = seed_keys(size.seeds, base_seed)
  params, data = jax.jit(jax.vmap(lambda k: task.setup(k, size)))(setup_keys)
  return Prepared(params, data, batch_keys)


def train_seeds(task: _tasks.Task, size: _tasks.Size,
                tx: optax.GradientTransformation, *, name: str = "",
                base_seed: int = 0, seed_batching: Optional[str] = None,
                prepared: Optional[Prepared] = None,
                progress: Optional[Callable[[int], Any]] = None) -> RunResult:
  """Trains ``size.seeds`` seeds with ``tx``; the test metric every few steps.

  Args:
    task: the task.
    size: seeds, steps, evaluation interval and the task's sizes.
    tx: the optimizer.
    name: a label for the result.
    base_seed: seeds are ``base_seed, base_seed + 1, ...``.
    seed_batching: ``'vmap'``, ``'loop'`` or None (the task's choice).
    prepared: the seeds' set-up from :func:`prepare` (made here if None).
    progress: called with the number of seed-steps done after each chunk.

  Returns:
    A :class:`RunResult`.
  """
  seed_batching = seed_batching or task.seed_batching
  if seed_batching not in SEED_BATCHING:
    raise ValueError(f"`seed_batching` must be one of {SEED_BATCHING}, got "
                     f"{seed_batching!r}.")
  t0 = time.perf_counter()
  prepared = prepared or prepare(task, size, base_seed)
  params, data, batch_keys = prepared.params, prepared.data, prepared.batch_keys
  loss_and_grad = jax.value_and_grad(task.loss)

  def step(p, s, d, key, i):
    loss, grads = loss_and_grad(p, d, jax.random.fold_in(key, i), size)
    updates, s = tx.update(grads, s, p)
    return optax.apply_updates(p, updates), s, loss

  def evaluate(p, d):
    return task.evaluate(p, d, size)

  init = tx.init
  if seed_batching == "vmap":
    step = jax.vmap(step, in_axes=(0, 0, 0, 0, None))
    evaluate, init = jax.vmap(evaluate), jax.vmap(init)
    # A copy: the step donates its params, and `prepared` is shared.
    groups = [(jax.tree.map(jnp.copy, params), data, batch_keys)]
  else:
    groups = [jax.tree.map(lambda x, i=i: x[i], (params, data, batch_keys))
              for i in range(size.seeds)]
  step = jax.jit(step, donate_argnums=(0, 1))
  evaluate, init = jax.jit(evaluate), jax.jit(init)

  all_curves, all_losses = [], []
  eval_steps = eval_schedule(size)
  for p, d, k in groups:
    n_seeds = size.seeds if seed_batching == "vmap" else 1
    s = init(p)
    curves, losses = [evaluate(p, d)], []
    for i in range(size.steps):
      p, s, loss = step(p, s, d, k, i)
      losses.append(loss)
      if i + 1 in eval_steps:
        curves.append(evaluate(p, d))
        if progress is not None:
          done = eval_steps[len(curves) - 1] - eval_steps[len(curves) - 2]
          progress(n_seeds * done)
    all_curves.append(np.asarray(jnp.stack(curves, -1)).reshape(n_seeds, -1))
    all_losses.append(np.asarray(jnp.stack(losses, -1)).reshape(n_seeds, -1))
  return RunResult(name=name, steps=np.asarray(eval_steps),
                   curves=np.concatenate(all_curves, 0),
                   losses=np.concatenate(all_losses, 0),
                   seconds=time.perf_counter() - t0)
