"""Compile time of the jitted update on a tree with many leaves.

``--leaves`` leaves (half (32, 32) kernels, half (32,) biases), c2 = 1e-4;
``optax.adam`` and ``ladam_jax.ladam`` lowered and compiled afresh
``--rounds`` times, interleaved; medians and their ratio::

    python benchmarks/bench_compile.py              # 1000 leaves
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import ladam_jax
import _impl  # benchmarks/_impl.py (this script's folder is on sys.path)


def compile_seconds(tx, params):
  def step(p, s, g):
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s
  state = jax.eval_shape(tx.init, params)
  t0 = time.perf_counter()
  jax.jit(step).lower(params, state, params).compile()
  return time.perf_counter() - t0


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--leaves", type=int, default=1000)
  parser.add_argument("--rounds", type=int, default=3)
  _impl.add_argument(parser)
  args = parser.parse_args(argv)
  params = {f"layer_{i}": {"kernel": jax.ShapeDtypeStruct((32, 32), jnp.float32),
                           "bias": jax.ShapeDtypeStruct((32,), jnp.float32)}
            for i in range(args.leaves // 2)}
  # Fresh transformations each round, so nothing is cached between rounds.
  makers = {"optax.adam": lambda: optax.adam(1e-3),
            "ladam_jax.ladam": lambda: ladam_jax.ladam(1e-3, c2=1e-4)}
  times = {name: [] for name in makers}
  for _ in range(args.rounds):
    for name, make in makers.items():
      with _impl.using(args.impl):
        tx = make()
      times[name].append(compile_seconds(tx, params))
  base = statistics.median(times["optax.adam"])
  print(f"{args.leaves} leaves, JAX {jax.__version__} on "
        f"{jax.default_backend()}: median compile (trace + lower + XLA)")
  for name, ts in times.items():
    med = statistics.median(ts)
    print(f"{name:>16}: {med:6.2f} s ({med / base:.2f}x optax.adam)")
  return times


if __name__ == "__main__":
  main()
