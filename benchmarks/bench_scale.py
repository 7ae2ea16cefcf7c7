"""Scale check: LAdam's update on a ~100M-parameter tree, time and memory.

Builds a tree of ``--leaves`` Dense kernels of ``--side``² (default 24 ×
2048² + biases ≈ 100.7M parameters, 403 MB in float32), jits the update of
``ladam_jax.ladam`` and ``optax.adam`` with params and state donated, and
prints, interleaved over ``--rounds``, the median time of each, the compiled
``memory_analysis()`` (arguments, outputs, temporaries) and the process peak
RSS::

    python benchmarks/bench_scale.py
    python benchmarks/bench_scale.py --leaves 4 --side 1024 --rounds 3  # quick
"""

from __future__ import annotations

import argparse
import functools
import resource
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import ladam_jax
import _impl  # benchmarks/_impl.py (this script's folder is on sys.path)
import timing  # benchmarks/timing.py (this script's folder is on sys.path)


def make_tree(leaves, side):
  key = jax.random.key(0)
  tree = {}
  for i in range(leaves):
    key, k1 = jax.random.split(key)
    tree[f"dense_{i}"] = {"kernel": jax.random.normal(k1, (side, side)),
                          "bias": jnp.zeros((side,))}
  return tree


def compiled_step(tx, params, grads):
  state = tx.init(params)
  compiled = timing.donated_step(tx).lower(params, state, grads).compile()
  return compiled, state


def mb(n):
  return f"{n / 2**20:,.0f} MiB"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--leaves", type=int, default=24)
  parser.add_argument("--side", type=int, default=2048)
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--c2", type=float, default=1e-4)
  _impl.add_argument(parser)
  args = parser.parse_args(argv)

  params = make_tree(args.leaves, args.side)
  n_params = sum(x.size for x in jax.tree.leaves(params))
  largest = max(x.nbytes for x in jax.tree.leaves(params))
  grads = jax.tree.map(lambda p: 1e-3 * p + 1e-4, params)
  with _impl.using(args.impl):
    contenders = {"optax.adam": optax.adam(1e-3),
                  "ladam_jax.ladam": ladam_jax.ladam(1e-3, c2=args.c2)}
  print(f"{n_params / 1e6:.1f}M parameters ({mb(4 * n_params)} float32), "
        f"{len(jax.tree.leaves(params))} leaves, largest leaf {mb(largest)}; "
        f"JAX {jax.__version__} on {jax.default_backend()}")
  runs = {}
  for name, tx in contenders.items():
    t0 = time.perf_counter()
    compiled, state = compiled_step(tx, params, grads)
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    copies = (jax.tree.map(jnp.copy, params), state)
    runs[name] = [compiled, copies]
    print(f"{name:>16}: compile {compile_s:.1f} s; memory_analysis: args "
          f"{mb(mem.argument_size_in_bytes)}, outputs "
          f"{mb(mem.output_size_in_bytes)}, temporaries "
          f"{mb(mem.temp_size_in_bytes)}, aliased "
          f"{mb(mem.alias_size_in_bytes)}")
  def step(run):  # params and state are donated: keep the new ones
    compiled, (p, s) = run
    run[1] = jax.block_until_ready(compiled(p, s, grads))

  times = timing.time_interleaved(
      {name: functools.partial(step, run) for name, run in runs.items()},
      args.rounds)
  base = statistics.median(times["optax.adam"])
  for name, ts in times.items():
    med = statistics.median(ts)
    print(f"{name:>16}: median update {1e3 * med:8.1f} ms "
          f"({med / base:.2f}x optax.adam) over {args.rounds} rounds")
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  print(f"process peak RSS {mb(peak)}")
  return times


if __name__ == "__main__":
  main()
