"""LAdam inside ``jax.shard_map``: each device updates its block of the params.

Hand-written FSDP and tensor-parallel loops run the optimizer inside
``jax.shard_map``, where each device sees only its block of every leaf. The
Laplacian couples neighbouring entries, so LAdam needs to know how the
leaves are split: ``partition_specs`` takes the same PartitionSpecs as
``shard_map``'s ``in_specs``, and each block then exchanges its edge rows
and columns with its mesh neighbours (``jax.lax.ppermute``). This script
checks the update inside ``shard_map`` against the global one and prints the
largest relative difference, and what XLA compiled for the exchange.

Runs on any machine: without accelerators it forces 8 host CPU devices
(set here before JAX starts)::

    python examples/shard_map.py
"""

from __future__ import annotations

import os

if "--xla_force_host_platform_device_count" not in os.environ.get(
    "XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + " --xla_force_host_platform_device_count=8")

import re  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import ladam_jax  # noqa: E402

COLLECTIVES = ("collective-permute", "all-gather", "all-reduce", "all-to-all",
               "reduce-scatter")


def collectives(hlo_text: str) -> dict[str, int]:
  """How many of each collective op a compiled HLO module holds."""
  return {op: len(re.findall(rf"\b{op}(?:-start)?\(", hlo_text))
          for op in COLLECTIVES}


def main(steps: int = 3) -> float:
  mesh = jax.make_mesh((4, 2), ("data", "model"))
  rng = np.random.default_rng(0)
  shapes = {"dense": (64, 96),  # rows over 'data', columns over 'model'
            "conv": (3, 3, 16, 32),  # Flax conv kernel: out channels split
            "bias": (96,)}
  # As given to shard_map's in_specs; the optimizer takes the same tree.
  specs = {"dense": P("data", "model"), "conv": P(None, None, None, "model"),
           "bias": P("model")}
  params = {k: jnp.asarray(rng.normal(size=s), jnp.float32)
            for k, s in shapes.items()}
  grads = [{k: jnp.asarray(rng.normal(size=s), jnp.float32)
            for k, s in shapes.items()} for _ in range(steps)]
  opt = ladam_jax.ladam(1e-2, c2=0.1, partition_specs=specs)

  # The global update: the whole leaves on one device.
  state = opt.init(params)
  for g in grads:
    want, state = jax.jit(opt.update)(g, state, params)

  # The same steps inside shard_map: every device holds one block per leaf.
  def local_steps(p, gs):
    s = opt.init(p)
    for g in gs:
      u, s = opt.update(g, s, p)
    return u

  with jax.set_mesh(mesh):
    put = lambda t: {k: jax.device_put(v, NamedSharding(mesh, specs[k]))
                     for k, v in t.items()}
    step = jax.jit(jax.shard_map(local_steps, in_specs=(specs, [specs] * steps),
                                 out_specs=specs))
    args = (put(params), [put(g) for g in grads])
    got = step(*args)
    ops = collectives(step.lower(*args).compile().as_text())

  diff = max(float(jnp.max(jnp.abs(got[k] - want[k])) / jnp.max(jnp.abs(want[k])))
             for k in shapes)
  print(f"devices: {jax.device_count()}, mesh {dict(mesh.shape)}")
  print(f"max relative difference, shard_map vs global update: {diff:.2e}")
  print("collectives in the compiled step:", ops)
  return diff


if __name__ == "__main__":
  main()
