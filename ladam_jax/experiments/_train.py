"""Training many random seeds with one compiled step per optimizer.

Random seeds are batched in one of two ways, with the same results up to
float rounding: ``'vmap'`` (``jax.vmap`` over random seeds: one call trains
every seed) or ``'loop'`` (the single-seed step compiled once and called seed
after seed). Steps are a Python loop around the jitted step, not
``lax.scan`` (a convolution inside a ``while`` loop is far slower on XLA:CPU;
see ``benchmarks/RESULTS.md``). Which batching is faster depends on the task;
each task's ``Task.seed_batching`` holds the faster one on CPU.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ladam_jax.experiments import _tasks

__all__ = ["RunResult", "Prepared", "prepare", "train_seeds", "eval_schedule",
           "SEED_BATCHING"]


@dataclasses.dataclass
class RunResult:
  """Learning curves of one optimizer over all random seeds."""
  name: str
  steps: np.ndarray        # (n_evals,) step numbers of the evaluations
  curves: np.ndarray       # (n_seeds, n_evals) the task's primary metric
  losses: np.ndarray       # (n_seeds, n_steps) training loss
  seconds: float           # wall time, compile included
  # Every metric of the task, the primary one included: (n_seeds, n_evals).
  metric_curves: dict = dataclasses.field(default_factory=dict)
  # ``diagnose(state)`` after every evaluated step but 0: one pytree per
  # step, each leaf with a leading random-seed axis (see ``train_seeds``).
  diagnostics: Optional[list] = None

  @property
  def final(self) -> np.ndarray:
    return self.curves[:, -1]

  def at_step(self, step: int, metric: Optional[str] = None) -> np.ndarray:
    """Per-seed ``metric`` (default: the primary) after ``step`` steps."""
    where = np.flatnonzero(self.steps == step)
    if where.size == 0:
      raise ValueError(f"step {step} was not evaluated; evaluated steps: "
                       f"{self.steps.tolist()}")
    curves = self.curves if metric is None else self.metric_curves[metric]
    return curves[:, where[0]]


SEED_BATCHING = ("vmap", "loop")


def eval_schedule(size: _tasks.Size, extra: Sequence[int] = ()) -> list[int]:
  """Steps after which metrics are recorded: 0, every k, ``extra``, the last."""
  steps = set(range(0, size.steps + 1, size.eval_every)) | {size.steps}
  steps |= {int(s) for s in extra if 0 < s <= size.steps}
  return sorted(steps)


@dataclasses.dataclass
class Prepared:
  """Initial params, data and batch keys of every random seed (shared)."""
  seeds: np.ndarray  # the random seeds: base_seed, base_seed + 1, ...
  params: Any
  data: Any
  batch_keys: jax.Array


def prepare(task: _tasks.Task, size: _tasks.Size,
            base_seed: int = 0) -> Prepared:
  """Sets up every random seed once; every optimizer starts from that state."""
  seeds = np.arange(base_seed, base_seed + size.seeds, dtype=np.int32)
  params, data = jax.jit(jax.vmap(lambda s: task.setup(s, size)))(seeds)
  if task.post_setup is not None:
    per_seed = [task.post_setup(jax.tree.map(lambda x, i=i: x[i], params),
                                jax.tree.map(lambda x, i=i: x[i], data), size)
                for i in range(size.seeds)]
    params = jax.tree.map(lambda *xs: jnp.stack(xs), *per_seed)
  batch_keys = jax.vmap(lambda s: _tasks.stream_key(s, _tasks.BATCH))(seeds)
  return Prepared(seeds, params, data, batch_keys)


def _set_hyperparams(state, values: dict):
  """``state`` (an ``optax.InjectHyperparamsState``) with ``values`` set."""
  if not hasattr(state, "hyperparams"):
    raise ValueError("`hyperparams` needs an optimizer made by "
                     "optax.inject_hyperparams.")
  unknown = set(values) - set(state.hyperparams)
  if unknown:
    raise ValueError(f"Unknown hyperparameters {sorted(unknown)}: the "
                     f"optimizer has {sorted(state.hyperparams)}.")
  new = dict(state.hyperparams)
  for n, v in values.items():
    new[n] = jnp.broadcast_to(jnp.asarray(v, new[n].dtype), new[n].shape)
  return state._replace(hyperparams=new)


def train_seeds(task: _tasks.Task, size: _tasks.Size,
                tx: optax.GradientTransformation, *, name: str = "",
                base_seed: int = 0, seed_batching: Optional[str] = None,
                prepared: Optional[Prepared] = None,
                progress: Optional[Callable[[int], Any]] = None,
                eval_steps: Sequence[int] = (),
                hyperparams: Optional[dict] = None,
                diagnose: Optional[Callable[[Any], Any]] = None
                ) -> RunResult:
  """Trains ``size.seeds`` random seeds with ``tx``, evaluating every few steps.

  Args:
    task: the task.
    size: random seeds, steps, evaluation interval and the task's sizes.
    tx: the optimizer.
    name: a label for the result.
    base_seed: the random seeds are ``base_seed, base_seed + 1, ...``.
    seed_batching: ``'vmap'``, ``'loop'`` or None (the task's choice).
    prepared: the set-up from :func:`prepare` (made here if None).
    progress: called with the number of seed-steps done after each chunk.
    eval_steps: steps to evaluate at besides :func:`eval_schedule`'s.
    hyperparams: for a ``tx`` made by ``optax.inject_hyperparams``: name →
      one value per random seed, set in its state after ``init`` (so that
      one compiled step trains many settings at once; see ``_tune``).
    diagnose: a JAX function of the optimizer state, evaluated (jitted) with
      the metrics at every evaluated step but 0 (see ``_diagnose``).

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
  if hyperparams:  # checked on shapes only, before anything is compiled
    one = jax.tree.map(lambda x: x[0], params)
    _set_hyperparams(jax.eval_shape(
        tx.init, one["params"] if task.stateful else one),
                     {n: 0.0 for n in hyperparams})
  loss_and_grad = jax.value_and_grad(task.loss)

  def step(p, s, d, key, i):
    idx = _tasks.batch_indices(task, size, key, i)
    if task.stateful:  # p: Flax variables; only p['params'] is optimized
      (loss, new_state), grads = jax.value_and_grad(
          lambda q: task.loss({**p, "params": q}, d, idx, size),
          has_aux=True)(p["params"])
      updates, s = tx.update(grads, s, p["params"])
      return ({**p, **new_state,
               "params": optax.apply_updates(p["params"], updates)}, s, loss)
    loss, grads = loss_and_grad(p, d, idx, size)
    updates, s = tx.update(grads, s, p)
    return optax.apply_updates(p, updates), s, loss

  def evaluate(p, d):
    metrics = task.evaluate(p, d, size)
    return jnp.stack([metrics[m] for m in task.metrics], -1)

  init = (lambda p: tx.init(p["params"])) if task.stateful else tx.init
  if seed_batching == "vmap":
    step = jax.vmap(step, in_axes=(0, 0, 0, 0, None))
    evaluate, init = jax.vmap(evaluate), jax.vmap(init)
    if diagnose is not None:
      diagnose = jax.vmap(diagnose)
    # A copy: the step donates its params, and `prepared` is shared.
    groups = [(jax.tree.map(jnp.copy, params), data, batch_keys)]
  else:
    groups = [jax.tree.map(lambda x, i=i: x[i], (params, data, batch_keys))
              for i in range(size.seeds)]
  step = jax.jit(step, donate_argnums=(0, 1))
  evaluate, init = jax.jit(evaluate), jax.jit(init)
  if diagnose is not None:
    diagnose = jax.jit(diagnose)

  all_curves, all_losses, all_diags = [], [], []
  schedule = eval_schedule(size, eval_steps)
  for g, (p, d, k) in enumerate(groups):
    n_seeds = size.seeds if seed_batching == "vmap" else 1
    s = init(p)
    if hyperparams:
      s = _set_hyperparams(s, {
          n: v if seed_batching == "vmap" else v[g]
          for n, v in hyperparams.items()})
    curves, losses, diags = [evaluate(p, d)], [], []
    for i in range(size.steps):
      p, s, loss = step(p, s, d, k, i)
      losses.append(loss)
      if i + 1 in schedule:
        curves.append(evaluate(p, d))
        if diagnose is not None:
          diags.append(jax.device_get(diagnose(s)))
        if progress is not None:
          progress(n_seeds * (schedule[len(curves) - 1]
                              - schedule[len(curves) - 2]))
    # (n_seeds, n_evals, n_metrics)
    all_curves.append(np.asarray(jnp.stack(curves, -2)).reshape(
        n_seeds, len(schedule), len(task.metrics)))
    all_losses.append(np.asarray(jnp.stack(losses, -1)).reshape(n_seeds, -1))
    all_diags.append(diags if seed_batching == "vmap" else [
        jax.tree.map(lambda x: np.asarray(x)[None], t) for t in diags])
  curves = np.concatenate(all_curves, 0)
  diagnostics = None
  if diagnose is not None:  # per step: the groups' random seeds together
    diagnostics = [jax.tree.map(lambda *xs: np.concatenate(xs, 0), *per_step)
                   for per_step in zip(*all_diags)]
  return RunResult(name=name, steps=np.asarray(schedule),
                   curves=curves[..., 0],
                   losses=np.concatenate(all_losses, 0),
                   seconds=time.perf_counter() - t0,
                   metric_curves={m: curves[..., i]
                                  for i, m in enumerate(task.metrics)},
                   diagnostics=diagnostics)
