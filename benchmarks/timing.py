"""Interleaved timing for the speed benchmarks under ``benchmarks/``.

The machines these run on are shared and noisy, so contenders are timed in
the same process, in turn within each round, and compared by their medians.
"""

from __future__ import annotations

import re
import statistics
import time
from typing import Callable

import jax
import optax

__all__ = ["time_interleaved", "medians", "donated_step", "xla_kernels"]


def time_interleaved(fns: dict[str, Callable[[], object]], rounds: int,
                     inner: int = 1) -> dict[str, list[float]]:
  """Seconds per call of each ``fn``, one sample per round and contender.

  Each round calls every contender ``inner`` times in turn (in ``fns``'
  order); a sample is the mean over those calls. ``fn`` must block until
  its work is done (``jax.block_until_ready``).
  """
  times: dict[str, list[float]] = {name: [] for name in fns}
  for _ in range(rounds):
    for name, fn in fns.items():
      t0 = time.perf_counter()
      for _ in range(inner):
        fn()
      times[name].append((time.perf_counter() - t0) / inner)
  return times


def medians(times: dict[str, list[float]]) -> dict[str, float]:
  """The median of each contender's samples."""
  return {name: statistics.median(ts) for name, ts in times.items()}


def donated_step(tx: optax.GradientTransformation):
  """``tx``'s update and ``optax.apply_updates`` as one jitted step.

  ``step(params, state, grads) -> (params, state)`` donates params and state,
  so XLA updates them in place, as PyTorch's ``optimizer.step()`` does.
  """
  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state
  return jax.jit(step, donate_argnums=(0, 1))


def xla_kernels(compiled) -> int:
  """The number of fusions (one kernel each) in a compiled JAX computation.

  On CPU, a tree of many small leaves costs a few microseconds per kernel
  whatever its size, so this count, not bytes moved, sets its update time.
  """
  return len(re.findall(r"^\s*(?:ROOT )?\S+ = \S+ fusion\(",
                        compiled.as_text(), re.M))
