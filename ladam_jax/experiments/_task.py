"""The task framework of ``ladam-bench``: sizes, tasks, random streams, batches.

A task is a set of pure functions of one random seed (see :class:`Task`), so
that the runner can ``jax.vmap`` them over random seeds. Random streams follow
the reference scripts' seeding structure: a script that calls
``torch.manual_seed(seed)`` before its data and again before its model gets
``stream_key(seed, DATA)`` and ``stream_key(seed, INIT)``; one that seeds its
test set with ``seed + 10000`` gets ``stream_key(seed + 10000, DATA)``. The
draws themselves are JAX's, not torch's: the same distributions, different
numbers.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

__all__ = ["Task", "Size", "smoke_size", "epoch_size", "stream_key",
           "batch_indices", "init_scheme", "mse", "classification",
           "SAMPLINGS", "INITS", "NORMS", "DATA", "INIT", "BATCH"]

DATA, INIT, BATCH = 0, 1, 2

# How a step's minibatch is drawn: 'randint' (``batch`` indices with
# replacement, as ``torch.randint``), 'epochs' (a fresh permutation per epoch,
# the last partial batch dropped, as a shuffling DataLoader with
# drop_last=True) or 'full' (the whole training set every step).
SAMPLINGS = ("randint", "epochs", "full")

# Initialisations: PyTorch's defaults (as the reference's scripts) or Flax's.
INITS = ("torch", "flax")

# The normalization layers of the model variants (wavenorm-regression).
NORMS = ("batchnorm", "wavenorm", "wavenorm-damped", "layernorm", "chinorm",
         "none")


@dataclasses.dataclass(frozen=True)
class Size:
  """The sizes of one run: random seeds, steps and the model/data sizes."""
  seeds: int
  steps: int
  eval_every: int
  options: dict = dataclasses.field(default_factory=dict)


def smoke_size(options: dict, **smaller) -> Size:
  """The seconds-long ``--tiny`` size: 2 random seeds of 4 steps, evaluated
  every 2, on ``options`` with the ``smaller`` sizes."""
  return Size(seeds=2, steps=4, eval_every=2, options=dict(options, **smaller))


def epoch_size(seeds: int, epochs: int, options: dict,
               eval_epochs: int = 1) -> Size:
  """``epochs`` epochs of ``options['n_train'] // options['batch']`` steps
  (sampling 'epochs'), evaluated every ``eval_epochs`` epochs."""
  steps = options["n_train"] // options["batch"]
  return Size(seeds=seeds, steps=epochs * steps,
              eval_every=eval_epochs * steps, options=options)


@dataclasses.dataclass(frozen=True)
class Task:
  """One benchmark task (see the module docstring)."""
  name: str
  description: str
  metrics: tuple         # every key of evaluate's dict, the primary first
  higher_is_better: bool
  learning_rate: float
  c2: float
  sampling: str
  setup: Callable[[jax.Array, Size], tuple[Any, Any]]
  loss: Callable[[Any, Any, Optional[jax.Array], Size], jax.Array]
  evaluate: Callable[[Any, Any, Size], dict]
  default: Size
  full: Size
  tiny: Size
  summary: str = ""      # one short line for ``ladam-bench --list``
  reference: str = ""    # the reference script / row this task mirrors
  claim: str = ""        # what the reference's results table says
  seed_batching: str = "vmap"  # or 'loop' (see _train: which is faster)
  optimizers: tuple = ()  # default --optimizers (empty: the bench default)
  # Run once per random seed after ``setup``, outside jit (NumPy work such as
  # neuron reordering): ``post_setup(params, data, size) -> params``.
  post_setup: Optional[Callable[[Any, Any, Size], Any]] = None
  # Stateful models (BatchNorm, ChiNorm): ``setup`` returns Flax variables
  # {'params': ..., other collections}; ``loss(variables, data, idx, size)``
  # returns (loss, {collection: new value}); only 'params' is optimized.
  stateful: bool = False
  # Model variants compared beside the optimizers (e.g. normalization
  # layers): ``size.options['variant']`` picks one; the first is the
  # baseline of the others, optimizer by optimizer.
  variants: tuple = ()

  @property
  def metric(self) -> str:
    """The primary metric (the first of ``metrics``)."""
    return self.metrics[0]


def stream_key(seed, stream: int) -> jax.Array:
  """The key of one random stream (DATA, INIT, BATCH) of a random seed."""
  return jax.random.fold_in(jax.random.key(seed), stream)


def batch_indices(task: Task, size: Size, key, step) -> Optional[jax.Array]:
  """Indices of the training minibatch of ``step`` (None: full batch)."""
  o = size.options
  if task.sampling == "full":
    return None
  n, batch = o["n_train"], o["batch"]
  if task.sampling == "randint":
    return jax.random.randint(jax.random.fold_in(key, step), (batch,), 0, n)
  per_epoch = n // batch
  epoch, pos = step // per_epoch, step % per_epoch
  perm = jax.random.permutation(jax.random.fold_in(key, epoch), n)
  return jax.lax.dynamic_slice(perm, (pos * batch,), (batch,))


def init_scheme(size):
  """The size's initialisation: 'torch' (default) or 'flax'."""
  return size.options.get("init", "torch")


def mse(a, b):
  return jnp.mean((a - b) ** 2)


def classification(model_fn):
  """(loss, evaluate) of a classifier on data {'train': (x, y), 'test': …}."""
  def loss(params, data, idx, size):
    x, y = data["train"]
    logits = model_fn(size).apply(params, x[idx])
    return jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(logits),
                                         y[idx][:, None], -1))

  def evaluate(params, data, size):
    x, y = data["test"]
    logits = model_fn(size).apply(params, x)
    return {"test accuracy %": 100.0 * jnp.mean(jnp.argmax(logits, -1) == y)}
  return loss, evaluate

