"""LAdam on several devices with today's JAX sharding API.

``jax.make_mesh`` (Explicit axes, or Auto), ``jax.set_mesh``, parameters as
``NamedSharding`` arrays, a 2-D ``('data', 'model')`` mesh (FSDP on one axis,
tensor parallel on the other), a donated training step and a sharded
checkpoint restore; each check compares with the same computation on one
device and prints the collectives XLA chose.

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
import functools  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import AxisType  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import ladam_jax  # noqa: E402

COLLECTIVES = ("collective-permute", "all-gather", "all-reduce", "all-to-all",
               "reduce-scatter")


def collectives(hlo_text: str) -> dict[str, int]:
  """How many of each collective op a compiled HLO module holds."""
  return {op: len(re.findall(rf"\b{op}(?:-start)?\(", hlo_text))
          for op in COLLECTIVES}


def max_rel_diff(a, b) -> float:
  """max |a − b| / max |b| over all leaves."""
  out = 0.0
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    out = max(out, float(np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1e-30)))
  return out


# --------------------------------------------------------------------------
# A mesh and sharded parameters
# --------------------------------------------------------------------------


def make_mesh(two_d: bool = False, explicit: bool = True) -> jax.sharding.Mesh:
  """8 devices as ('x',), or as ('data', 'model') = (2, 4).

  Axes are Explicit by default in ``jax.make_mesh``: every array's type
  carries its sharding. With Auto axes XLA's partitioner chooses the
  shardings of intermediates.
  """
  kind = AxisType.Explicit if explicit else AxisType.Auto
  if two_d:
    return jax.make_mesh((2, 4), ("data", "model"), axis_types=(kind, kind))
  return jax.make_mesh((8,), ("x",), axis_types=(kind,))


def param_specs(mesh: jax.sharding.Mesh) -> dict[str, P]:
  """Each leaf sharded a different way (on a 2-D mesh: FSDP over 'data',
  tensor parallel over 'model')."""
  if mesh.axis_names == ("x",):
    return {"rows": P("x", None),              # dense kernel, rows
            "cols": P(None, "x"),              # dense kernel, columns
            "conv": P(None, None, None, "x"),  # conv kernel, out channels
            "bias": P("x")}
  return {"rows": P("data", "model"), "cols": P("model", "data"),
          "conv": P(None, None, "data", "model"), "bias": P("model")}


def make_tree():
  """Params and grads: dense kernels (64, 48) and (48, 64), a conv kernel
  (3, 3, 16, 32), a bias (128,)."""
  ks = jax.random.split(jax.random.key(0), 8)
  params = {"rows": jax.random.normal(ks[0], (64, 48)),
            "cols": jax.random.normal(ks[1], (48, 64)),
            "conv": jax.random.normal(ks[2], (3, 3, 16, 32)),
            "bias": jax.random.normal(ks[3], (128,))}
  grads = {k: jax.random.normal(ks[4 + i], v.shape)
           for i, (k, v) in enumerate(params.items())}
  return params, grads


def shardings_kept(tree, mesh) -> bool:
  """Whether every leaf of ``tree`` keyed like a param (the params, the
  moments in an optimizer state) has that param's sharding."""
  specs = param_specs(mesh)
  return all(
      x.sharding.is_equivalent_to(NamedSharding(mesh, specs[key]), x.ndim)
      for path, x in jax.tree_util.tree_leaves_with_path(tree)
      for key in [getattr(path[-1], "key", None)]
      if key in specs and x.ndim)


def shard(tree, mesh):
  """``jax.device_put`` of every leaf to its ``NamedSharding``."""
  specs = param_specs(mesh)
  return {k: jax.device_put(v, NamedSharding(mesh, specs[k]))
          for k, v in tree.items()}


# --------------------------------------------------------------------------
# The optimizer on sharded parameters
# --------------------------------------------------------------------------


def sharded_vs_unsharded(c2=1e-2, steps=3, *, two_d=False, explicit=True,
                         tx=None):
  """(max rel diff, shardings kept, collectives in the compiled update).

  ``steps`` updates of ``tx`` (default: LAdam) on the sharded tree inside
  ``jax.set_mesh``, against the same updates on one device.
  """
  tx = tx or ladam_jax.ladam(1e-2, c2=c2)
  params, grads = make_tree()

  def step(p, s, g):
    updates, s = tx.update(g, s, p)
    return optax.apply_updates(p, updates), s

  p1, s1 = params, tx.init(params)
  for _ in range(steps):
    p1, s1 = jax.jit(step)(p1, s1, grads)

  mesh = make_mesh(two_d, explicit)
  with jax.set_mesh(mesh):
    ps, gs = shard(params, mesh), shard(grads, mesh)
    ss = tx.init(ps)  # the moments get the params' shardings
    compiled = jax.jit(step).lower(ps, ss, gs).compile()
    for _ in range(steps):
      ps, ss = compiled(ps, ss, gs)
  kept = shardings_kept((ps, ss), mesh)
  return (max_rel_diff((ps, ss), (p1, s1)), kept,
          collectives(compiled.as_text()))


def smoothing_sharded(two_d=False, explicit=True):
  """LS-Adam (Laplacian smoothing of the gradient) on the sharded tree."""
  return sharded_vs_unsharded(
      steps=2, two_d=two_d, explicit=explicit,
      tx=ladam_jax.lsadam(1e-2, sigma=2.0))


# --------------------------------------------------------------------------
# Training on a 2-D mesh: batch over 'data', FSDP + tensor parallel
# --------------------------------------------------------------------------


def mlp_params(key, sizes=(16, 64, 64, 8)):
  params = {}
  for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
    key, kw, kb = jax.random.split(key, 3)
    params[f"w{i}"] = jax.random.normal(kw, (a, b)) / a**0.5
    params[f"b{i}"] = 0.1 * jax.random.normal(kb, (b,))
  return params


# How each layer computes (tensor parallel, Megatron style): w0 and w2 split
# their output columns over 'model', w1 its input rows.
COMPUTE_SPECS = {"w0": P(None, "model"), "w1": P("model", None),
                 "w2": P(None, "model")}


def mlp_specs(params):
  """How each leaf is stored: the kernels' other axis also split over
  'data' (FSDP: gathered when used); biases as their layer's output."""
  return {"w0": P("data", "model"), "w1": P("model", "data"),
          "w2": P("data", "model"), "b0": P("model"), "b1": P(),
          "b2": P("model")}


def mlp_loss(params, x, y, sharded=False):
  """A 3-layer MLP; ``sharded``: on the ('data', 'model') Explicit mesh."""
  def kernel(name):  # FSDP: gather the 'data' split, keep the 'model' one
    w = params[name]
    return jax.sharding.reshard(w, COMPUTE_SPECS[name]) if sharded else w

  h = jnp.tanh(x @ kernel("w0") + params["b0"])
  # Contracting the 'model'-split axis: the sum over devices is this
  # matmul's out_sharding (batch over 'data', features whole).
  h = jnp.matmul(h, kernel("w1"),
                 out_sharding=P("data", None) if sharded else None)
  h = jnp.tanh(h + params["b1"])
  out = h @ kernel("w2") + params["b2"]
  return jnp.mean((out - y) ** 2)


def train_2d(steps=5):
  """(max rel diff to one device, params sharded as asked) after ``steps``
  donated LAdam steps on a ('data', 'model') Explicit mesh."""
  tx = ladam_jax.ladam(1e-2, c2=1e-3)
  params = mlp_params(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (64, 16))
  y = jnp.sin(x[:, :8])

  def train_step(params, state, x, y, sharded=False):
    grads = jax.grad(mlp_loss)(params, x, y, sharded)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  p1, s1 = params, tx.init(params)
  for _ in range(steps):
    p1, s1 = jax.jit(train_step)(p1, s1, x, y)

  mesh = make_mesh(two_d=True)
  specs = mlp_specs(params)
  with jax.set_mesh(mesh):
    ps = {k: jax.device_put(v, NamedSharding(mesh, specs[k]))
          for k, v in params.items()}
    state = tx.init(ps)
    xs = jax.device_put(x, NamedSharding(mesh, P("data", None)))
    ys = jax.device_put(y, NamedSharding(mesh, P("data", None)))
    # Donation: XLA writes the new params and state over the old buffers.
    step = jax.jit(functools.partial(train_step, sharded=True),
                   donate_argnums=(0, 1))
    for _ in range(steps):
      ps, state = step(ps, state, xs, ys)
  kept = all(ps[k].sharding.is_equivalent_to(
      NamedSharding(mesh, specs[k]), ps[k].ndim) for k in ps)
  return max_rel_diff((ps, state), (p1, s1)), kept


def data_parallel_vs_single(steps=5, c2=1e-3):
  """(max rel diff, params replicated): the batch split over every device,
  the params replicated, against one device."""
  tx = ladam_jax.ladam(1e-2, c2=c2)
  params = mlp_params(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (8 * 16, 16))
  y = jnp.sin(x[:, :8])

  def train_step(params, state, x, y):
    grads = jax.grad(mlp_loss)(params, x, y)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  p1, s1 = params, tx.init(params)
  for _ in range(steps):
    p1, s1 = jax.jit(train_step)(p1, s1, x, y)
  mesh = make_mesh()
  with jax.set_mesh(mesh):
    pn = jax.device_put(params, NamedSharding(mesh, P()))
    sn = tx.init(pn)
    xs = jax.device_put(x, NamedSharding(mesh, P("x", None)))
    ys = jax.device_put(y, NamedSharding(mesh, P("x", None)))
    for _ in range(steps):
      pn, sn = jax.jit(train_step)(pn, sn, xs, ys)
  replicated = all(a.sharding.is_fully_replicated for a in jax.tree.leaves(pn))
  return max_rel_diff((pn, sn), (p1, s1)), replicated


# The data-parallel check under the name other scripts call it by.
pmap_vs_single = data_parallel_vs_single


def donated_step_works(c2=1e-2):
  """(max diff donated vs not, inputs donated) on sharded params and state."""
  mesh = make_mesh()
  tx = ladam_jax.ladam(1e-2, c2=c2)
  params, grads = make_tree()

  def step(p, s, g):
    updates, s = tx.update(g, s, p)
    return optax.apply_updates(p, updates), s

  with jax.set_mesh(mesh):
    ps, gs = shard(params, mesh), shard(grads, mesh)
    ss = tx.init(ps)
    expected = jax.jit(step)(ps, ss, gs)
    new_p, new_s = jax.jit(step, donate_argnums=(0, 1))(ps, ss, gs)
  # On CPU XLA may decline to alias some buffers; deleted inputs show the
  # donation happened, and the result must not change either way.
  deleted = all(a.is_deleted() for a in jax.tree.leaves(ps))
  return max_rel_diff((new_p, new_s), expected), deleted


def sharded_restore_matches(tmp_dir, c2=1e-2):
  """Save the (unsharded) state with Orbax, restore it sharded; compare."""
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  mesh = make_mesh()
  tx = ladam_jax.ladam(1e-2, c2=c2)
  params, grads = make_tree()
  state = tx.update(grads, tx.init(params), params)[1]
  with ocp.StandardCheckpointer() as ckpt:
    ckpt.save(f"{tmp_dir}/state", state)
  with jax.set_mesh(mesh):
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                          tx.init(shard(params, mesh)))
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
  for two_d in (False, True):
    for explicit in (True, False):
      mesh = "('data', 'model')" if two_d else "('x',)"
      axes = "Explicit" if explicit else "Auto"
      for name, fn in (("ladam", sharded_vs_unsharded),
                       ("lsadam", smoothing_sharded)):
        diff, kept, ops = fn(two_d=two_d, explicit=explicit)
        ops = {k: v for k, v in ops.items() if v}
        print(f"{mesh} {axes} {name}: max rel diff {diff:.1e}, shardings "
              f"kept: {kept}, collectives: {ops}")
  diff, kept = train_2d()
  print(f"training on ('data', 'model'), donated: max rel diff {diff:.1e}, "
        f"shardings kept: {kept}")
  diff, replicated = data_parallel_vs_single()
  print(f"data parallel: max rel diff {diff:.1e}, params replicated: "
        f"{replicated}")
  diff, deleted = donated_step_works()
  print(f"donate_argnums: max rel diff {diff:.1e}, inputs donated: {deleted}")
  with tempfile.TemporaryDirectory() as tmp:
    same, kept = sharded_restore_matches(tmp)
  print(f"orbax restore into the sharded layout: bit-identical {same}, "
        f"shardings as requested {kept}")


if __name__ == "__main__":
  main()
