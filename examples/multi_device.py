"""LAdam on many devices: pmap data parallelism, sharded parameters, donation,
and a sharded checkpoint restore; prints the collectives XLA chose.

Runs on any machine: without accelerators it forces 8 host CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=8``, set here before JAX
starts)::

    python examples/multi_device.py
"""

from __future__ import annotations

import os

if "--xla_force_host_platform_device_count" not in os.environ.get(
    "XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + " --xla_force_host_platform_device_count=8")

import argparse  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import Mesh  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import ladam_jax  # noqa: E402

COLLECTIVES = ("collective-permute", "all-gather", "all-reduce", "all-to-all",
               "reduce-scatter")


def max_rel_diff(a, b) -> float:
  """max |a − b| / max |b| over all leaves."""
  out = 0.0
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    out = max(out, float(np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1e-30)))
  return out


# --------------------------------------------------------------------------
# Data parallel with pmap
# --------------------------------------------------------------------------


def mlp_init(key, sizes=(8, 64, 64, 1)):
  params = []
  for a, b in zip(sizes[:-1], sizes[1:]):
    key, sub = jax.random.split(key)
    params.append({"kernel": jax.random.normal(sub, (a, b)) / a**0.5,
                   "bias": jnp.zeros(b)})
  return params


def mlp_loss(params, x, y):
  for i, layer in enumerate(params):
    x = x @ layer["kernel"] + layer["bias"]
    if i < len(params) - 1:
      x = jnp.tanh(x)
  return jnp.mean((x[:, 0] - y) ** 2)


def pmap_vs_single(steps=5, c2=1e-3):
  """Max relative difference of params and state: pmap (pmean) vs one device."""
  n = jax.local_device_count()
  tx = ladam_jax.ladam(1e-2, c2=c2)
  params = mlp_init(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (n * 16, 8))
  y = jnp.sin(x.sum(-1))

  @jax.jit
  def single_step(p, s):
    g = jax.grad(mlp_loss)(p, x, y)
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s

  def dp_step(p, s, xb, yb):
    g = jax.lax.pmean(jax.grad(mlp_loss)(p, xb, yb), "batch")
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s

  dp = jax.pmap(dp_step, axis_name="batch")
  p1, s1 = params, tx.init(params)
  replicate = lambda t: jax.tree.map(  # noqa: E731
      lambda a: jnp.broadcast_to(a, (n,) + a.shape), t)
  pn, sn = replicate(params), replicate(tx.init(params))
  xb, yb = x.reshape(n, -1, 8), y.reshape(n, -1)
  for _ in range(steps):
    p1, s1 = single_step(p1, s1)
    pn, sn = dp(pn, sn, xb, yb)
  first = lambda t: jax.tree.map(lambda a: a[0], t)  # noqa: E731
  replicas_equal = all(
      np.array_equal(a[0], a[i]) for a in jax.tree.leaves(pn)
      for i in range(n))
  return max_rel_diff((first(pn), first(sn)), (p1, s1)), replicas_equal


# --------------------------------------------------------------------------
# Sharded parameters (NamedSharding over a Mesh)
# --------------------------------------------------------------------------


def sharded_setup(mesh):
  """A tree whose leaves are sharded four different ways over axis 'x'."""
  key = jax.random.key(0)
  ks = jax.random.split(key, 8)
  params = {
      "rows": jax.random.normal(ks[0], (64, 48)),            # rows over x
      "cols": jax.random.normal(ks[1], (48, 64)),            # columns over x
      "conv": jax.random.normal(ks[2], (3, 3, 16, 32)),      # out channels
      "bias": jax.random.normal(ks[3], (32,)),               # a 1-D leaf
  }
  specs = {"rows": P("x", None), "cols": P(None, "x"),
           "conv": P(None, None, None, "x"), "bias": P("x")}
  grads = {k: jax.random.normal(ks[4 + i], v.shape)
           for i, (k, v) in enumerate(params.items())}
  shard = lambda t: {k: jax.device_put(v, NamedSharding(mesh, specs[k]))  # noqa: E731
                     for k, v in t.items()}
  return params, grads, shard


def collectives(hlo_text: str) -> dict[str, int]:
  """How many of each collective op a compiled HLO module holds."""
  return {op: len(re.findall(rf"\b{op}(?:-start)?\(", hlo_text))
          for op in COLLECTIVES}


def sharded_vs_unsharded(c2=1e-2, steps=3, impl=None):
  """(max rel diff, shardings kept, collectives in the compiled update)."""
  mesh = Mesh(np.array(jax.devices()[:8]), ("x",))
  params, grads, shard = sharded_setup(mesh)
  tx = ladam_jax.ladam(1e-2, c2=c2, impl=impl)

  def step(p, s, g):
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s

  p1, s1 = params, tx.init(params)
  ps, gs = shard(params), shard(grads)
  ss = tx.init(ps)
  jstep = jax.jit(step)
  sharded_step = jstep.lower(ps, ss, gs).compile()  # its HLO is inspected
  for _ in range(steps):
    p1, s1 = jstep(p1, s1, grads)
    ps, ss = sharded_step(ps, ss, gs)
  adam_state = ss[0]
  kept = all(ps[k].sharding.is_equivalent_to(params_sharding, ps[k].ndim)
             and adam_state.mu[k].sharding.is_equivalent_to(
                 params_sharding, ps[k].ndim)
             and adam_state.nu[k].sharding.is_equivalent_to(
                 params_sharding, ps[k].ndim)
             for k, params_sharding in
             ((k, shard(params)[k].sharding) for k in params))
  return (max_rel_diff((ps, ss), (p1, s1)), kept,
          collectives(sharded_step.as_text()))


def donated_step_works(c2=1e-2):
  """jit with donate_argnums on sharded params and state: runs, frees inputs."""
  mesh = Mesh(np.array(jax.devices()[:8]), ("x",))
  params, grads, shard = sharded_setup(mesh)
  tx = ladam_jax.ladam(1e-2, c2=c2)

  @jax.jit
  def ref(p, s, g):
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s

  donated = jax.jit(ref.__wrapped__, donate_argnums=(0, 1))
  ps, gs = shard(params), shard(grads)
  ss = tx.init(ps)
  expected = ref(ps, ss, gs)
  new_p, new_s = donated(ps, ss, gs)
  # On CPU XLA may decline to alias some buffers; deleted inputs show the
  # donation happened, and the result must not change either way.
  deleted = all(a.is_deleted() for a in jax.tree.leaves(ps))
  return max_rel_diff((new_p, new_s), expected), deleted


def sharded_restore_matches(tmp_dir, c2=1e-2):
  """Save the (unsharded) state with Orbax, restore it sharded; compare."""
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  mesh = Mesh(np.array(jax.devices()[:8]), ("x",))
  params, grads, shard = sharded_setup(mesh)
  tx = ladam_jax.ladam(1e-2, c2=c2)
  state = tx.update(grads, tx.init(params), params)[1]
  with ocp.StandardCheckpointer() as ckpt:
    ckpt.save(f"{tmp_dir}/state", state)
  target = jax.tree.map(ocp.utils.to_shape_dtype_struct, tx.init(shard(params)))
  with ocp.StandardCheckpointer() as ckpt:
    restored = ckpt.restore(f"{tmp_dir}/state", target)
  same = all(np.array_equal(a, b) for a, b in
             zip(jax.tree.leaves(restored), jax.tree.leaves(state)))
  kept = all(a.sharding == t.sharding for a, t in
             zip(jax.tree.leaves(restored), jax.tree.leaves(target)))
  return same, kept


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.parse_args(argv)
  print(f"{jax.device_count()} devices: {jax.devices()[0].platform}")
  diff, replicas = pmap_vs_single()
  print(f"pmap (grads pmean'ed) vs one device: max rel diff {diff:.2e}, "
        f"replicas identical: {replicas}")
  for impl in ("shift", "conv"):
    diff, kept, ops = sharded_vs_unsharded(impl=impl)
    print(f"NamedSharding impl={impl}: max rel diff {diff:.2e}, shardings "
          f"kept: {kept}, collectives in the update: {ops}")
  diff, deleted = donated_step_works()
  print(f"donate_argnums: max rel diff {diff:.2e}, inputs donated: {deleted}")
  with tempfile.TemporaryDirectory() as tmp:
    same, kept = sharded_restore_matches(tmp)
  print(f"orbax restore into the sharded layout: bit-identical {same}, "
        f"shardings as requested {kept}")


if __name__ == "__main__":
  main()
