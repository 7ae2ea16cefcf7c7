"""Coupled transforms inside ``jax.shard_map``: the global update on blocks.

Each check runs in a fresh process with 8 forced CPU devices; the checks are
grouped into a few processes to keep the start-up cost low.
"""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import PartitionSpec as P

import ladam_jax
from ladam_jax import _halo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Shared by the subprocesses: the update after a few steps, globally (whole
# leaves on one device) and inside shard_map (one block per device).
HARNESS = r'''
import warnings
import jax, jax.numpy as jnp, numpy as np, optax, ladam_jax
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
assert jax.device_count() == 8, jax.devices()

is_spec = lambda x: x is None or isinstance(x, P)
SHAPES = {"w": (64, 96), "conv": (3, 3, 16, 32), "line": (64,),
          "bias": (32,)}

def mesh_of(shape, names, kind):
  types = {"explicit": AxisType.Explicit, "auto": AxisType.Auto}[kind]
  return jax.make_mesh(shape, names, axis_types=(types,) * len(shape))

def trees(shapes=SHAPES, steps=3):
  rng = np.random.default_rng(0)
  make = lambda: {k: jnp.asarray(rng.normal(size=s), jnp.float32)
                  for k, s in shapes.items()}
  return make(), [make() for _ in range(steps)]

def run_global(tx, params, grads, finish=None):
  state = tx.init(params)
  update = jax.jit(tx.update)
  for g in grads:
    u, state = update(g, state, params)
  return u if finish is None else finish(state)

def put(tree, mesh, specs):
  return jax.tree.map(lambda x, s: jax.device_put(
      x, NamedSharding(mesh, P() if s is None else s)), tree, specs,
      is_leaf=is_spec)

def sharded(tx, params, grads, mesh, specs, finish=None, out_specs=None):
  """The shard_map'd steps, jitted, and its arguments."""
  in_specs = jax.tree.map(lambda s: P() if s is None else s, specs,
                          is_leaf=is_spec)
  def body(p, gs):
    state = tx.init(p)
    for g in gs:
      u, state = tx.update(g, state, p)
    return u if finish is None else finish(state)
  f = jax.jit(jax.shard_map(
      body, mesh=mesh, in_specs=(in_specs, [in_specs] * len(grads)),
      out_specs=in_specs if out_specs is None else out_specs))
  return f, (put(params, mesh, specs), [put(g, mesh, specs) for g in grads])

def run_sharded(*args, **kwargs):
  mesh = args[3]
  with jax.set_mesh(mesh):
    f, a = sharded(*args, **kwargs)
    return f(*a)

def rel(got, want):
  return max(float(jnp.max(jnp.abs(jnp.asarray(a, jnp.float32) - b))
                   / max(float(jnp.max(jnp.abs(b))), 1e-30))
             for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)))

def check(name, tx, mesh, specs, shapes=SHAPES, tol=1e-6, **kw):
  params, grads = trees(shapes)
  want = run_global(tx, params, grads, kw.get("finish"))
  got = run_sharded(tx, params, grads, mesh, specs, **kw)
  err = rel(got, want)
  assert err <= tol, (name, err)
  print(f"ok {name}: {err:.1e}")
  return err

def error_of(fn):
  try:
    fn()
  except ValueError as e:
    return str(e)
  raise AssertionError("no error")

# The Explicit meshes and specs that several scripts below use.
M1 = mesh_of((8,), ("x",), "explicit")
M2 = mesh_of((4, 2), ("data", "model"), "explicit")
BOTH = {"w": P("data", "model"), "conv": P(None, None, "data", "model"),
        "line": P(("data", "model")), "bias": P("model")}
COLS = {"w": P(None, "x"), "conv": P(None, None, None, "x"), "line": P(),
        "bias": P("x")}

import re
def collectives(text):
  return {op: len(re.findall(rf"\b{op}(?:-start)?\(", text))
          for op in ("collective-permute", "all-gather", "all-reduce",
                     "all-to-all", "reduce-scatter")}
'''

EQUAL = r'''
for kind in ("explicit", "auto"):
  m1 = mesh_of((8,), ("x",), kind)
  rows = {"w": P("x", None), "conv": P(None, None, "x", None),
          "line": P("x"), "bias": None}
  cols = {"w": P(None, "x"), "conv": P(None, None, None, "x"),
          "line": P(), "bias": P("x")}
  for name, specs in (("rows", rows), ("cols", cols))[:2 if kind == "explicit" else 1]:
    check(f"ladam {name} {kind}",
          ladam_jax.ladam(1e-2, c2=0.1, partition_specs=specs), m1, specs)
  # A 2-D mesh: rows and columns split at once (corners from the diagonal
  # neighbour), and two mesh axes on one tensor axis.
  m2 = mesh_of((4, 2), ("data", "model"), kind)
  both = {"w": P("data", "model"), "conv": P(None, None, "data", "model"),
          "line": P(("data", "model")), "bias": P("model")}
  check(f"ladam 2-D mesh {kind}",
        ladam_jax.ladam(1e-2, c2=0.1, partition_specs=both), m2, both)

# Two mesh axes on one tensor axis, in the mesh's order and reversed.
m1, m2, both = M1, M2, BOTH
tuple_rows = {"w": P(("data", "model"), None), "conv": P(),
              "line": P(("model", "data")), "bias": P()}
check("ladam ('data', 'model') rows",
      ladam_jax.ladam(1e-2, c2=0.1, partition_specs=tuple_rows), m2,
      tuple_rows)
# The 5-point stencil; a prefix spec (one PartitionSpec for every leaf)
# with a batch axis split.
check("ladam 5point", ladam_jax.ladam(1e-2, c2=0.1, stencil="5point",
                                      partition_specs=both), m2, both)
batch = {"t": P("x", None, None)}  # (heads, rows, cols): heads are batch
check("ladam batch axis", ladam_jax.ladam(
    1e-2, c2=0.1, layout=ladam_jax.LaplacianLayout(rows=(1,), cols=(2,)),
    partition_specs=P("x", None, None)), m1, batch,
    shapes={"t": (8, 16, 24)})
# A split axis that is not the leading axis of the field's rows or columns:
# each block holds runs of consecutive rows, one per index of the axes
# before it.
nonlead = {"dense_general": P("x", None, None),  # flax rows (1, 0): features
           "conv_torch": P(None, None, None, "x")}  # torch cols (1, 2, 3)
check("non-leading: DenseGeneral features, torch conv out",
      ladam_jax.ladam(1e-2, c2=0.1,
                      layout={"dense_general": "flax", "conv_torch": "torch"},
                      partition_specs=nonlead), m1, nonlead,
      shapes={"dense_general": (32, 8, 16), "conv_torch": (3, 3, 16, 32)})
check("non-leading: flax conv kh", ladam_jax.ladam(
    1e-2, c2=0.1, partition_specs=P("x", None, None, None)), m1,
    {"k": P("x", None, None, None)}, shapes={"k": (8, 3, 16, 32)})
line = ladam_jax.LaplacianLayout(rows=(0, 1))
check("non-leading: 1-D field", ladam_jax.ladam(
    1e-2, c2=0.1, layout=line, partition_specs=P(None, "x")), m1,
    {"l": P(None, "x")}, shapes={"l": (4, 32)})
# Axes a layout reads in reverse (flip): the blocks come in reverse order.
flipped = {"r": P("x", None), "c": P(None, "x"), "t": P(None, None, "x", None)}
check("flipped split axes", ladam_jax.ladam(
    1e-2, c2=0.1, layout={
        "r": ladam_jax.LaplacianLayout(rows=(0,), cols=(1,), flip=(0,)),
        "c": ladam_jax.LaplacianLayout(rows=(0,), cols=(1,), flip=(1,)),
        # an Equinox ConvTranspose weight's field, split on a flipped
        # column axis that does not lead the columns
        "t": ladam_jax.LaplacianLayout(rows=(1,), cols=(0, 2, 3),
                                       flip=(2, 3))},
    partition_specs=flipped), m1, flipped,
    shapes={"r": (64, 24), "c": (24, 64), "t": (16, 8, 8, 4)})
grid = ladam_jax.LaplacianLayout(rows=(0, 1), cols=(2, 3))
for stencil in ("9point", "5point"):
  check(f"non-leading rows and columns, 2-D mesh, {stencil}", ladam_jax.ladam(
      1e-2, c2=0.1, stencil=stencil, layout=grid,
      partition_specs=P(None, "data", None, "model")), m2,
      {"g": P(None, "data", None, "model")}, shapes={"g": (4, 16, 6, 24)})
# Blocks of one or two rows or columns: the first and the last field rows
# (columns) of a block are one, or neighbours.
tiny = {"r1": P("x", None), "c1": P(None, "x"), "k1": P(None, None, "x", None)}
for stencil in ("9point", "5point"):
  check(f"one row / column per block, {stencil}", ladam_jax.ladam(
      1e-2, c2=0.1, stencil=stencil, partition_specs=tiny), m1, tiny,
      shapes={"r1": (8, 16), "c1": (16, 8), "k1": (3, 2, 8, 4)})
  corner = {"b2": P("data", "model"), "b1": P("data", "model"),
            "k2": P(None, None, "data", "model")}
  check(f"2 x 2 and 1 x 1 blocks, 2-D mesh, {stencil}", ladam_jax.ladam(
      1e-2, c2=0.1, stencil=stencil, partition_specs=corner), m2, corner,
      shapes={"b2": (8, 4), "b1": (4, 2), "k2": (2, 3, 4, 2)})
# A 2-D mesh where some leaves exchange their columns first (the ring that
# comes first, 'data', splits their columns) and the row halos carry the
# corners: a kernel read in memory order, a flipped one (transposed), and
# a conv kernel split on `in` by 'model' and on `out` by 'data'.
first_cols = {"wt": P("model", "data"), "w": P("data", "model"),
              "fl": P("model", "data"), "kt": P(None, None, "model", "data")}
flip_rows = ladam_jax.LaplacianLayout(rows=(0,), cols=(1,), flip=(0,))
for stencil in ("9point", "5point"):
  check(f"columns first, 2-D mesh, {stencil}", ladam_jax.ladam(
      1e-2, c2=0.1, stencil=stencil, partition_specs=first_cols,
      layout={"wt": "flax", "w": "flax", "fl": flip_rows, "kt": "flax"}),
      m2, first_cols, shapes={"wt": (16, 24), "w": (24, 16), "fl": (16, 24),
                              "kt": (3, 3, 8, 16)})
print("EQUAL OK")
'''

OPTIMIZERS = r'''
m1, m2, both, cols = M1, M2, BOTH, COLS
# The optimizers and modes.
for name, tx in [
    ("lrmsprop", ladam_jax.lrmsprop(1e-2, momentum=0.9, c2=0.1,
                                    partition_specs=both)),
    ("ladagrad", ladam_jax.ladagrad(1e-2, c2=0.1, partition_specs=both)),
    ("laprop", ladam_jax.laprop(1e-3, c2=0.1, partition_specs=both)),
    ("vradam", ladam_jax.vradam(1e-3, c2=0.1, beta3=10.0,
                                partition_specs=both)),
    ("vradam gradient", ladam_jax.vradam(1e-3, c2=0.1, beta3=10.0,
                                         velocity="gradient",
                                         partition_specs=both)),
    ("ladamw update_lap", ladam_jax.ladamw(1e-2, c2=0.1, mode="update_lap",
                                           partition_specs=both)),
    ("ladam weight_lap (add_weight_laplacian)", ladam_jax.ladam(
        1e-2, c2=0.1, mode="weight_lap", partition_specs=both)),
    ("ladam wave_variance", ladam_jax.ladam(1e-2, c2=0.1,
                                            mode="wave_variance",
                                            partition_specs=both)),
    ("scale_by_laplacian_adam min_spatial_size=2000",
     ladam_jax.scale_by_laplacian_adam(c2=0.1, min_spatial_size=2000,
                                       partition_specs=both)),
]:
  check(name, tx, m2, both)
# Hyperparameters injected (traced c2 and min_spatial_size).
inj = optax.inject_hyperparams(ladam_jax.ladam)(
    learning_rate=1e-2, c2=0.1, min_spatial_size=16, partition_specs=both)
check("inject_hyperparams(ladam)", inj, m2, both)
inj = optax.inject_hyperparams(ladam_jax.lrmsprop)(
    learning_rate=1e-2, c2=0.1, partition_specs=cols)
check("inject_hyperparams(lrmsprop)", inj, m1, cols)
# Diagnostics: the step ratio (blocks of the global field) and the
# statistics of whole leaves.
opt = ladam_jax.ladam(1e-2, c2=0.1, partition_specs=both)
check("smoothing_step_ratio", opt, m2, both,
      finish=lambda s: ladam_jax.smoothing_step_ratio(
          s, c2=0.1, partition_specs=both))
stat_specs = jax.tree.map(lambda _: ladam_jax.SmoothingStats(*[P()] * 5),
                          both, is_leaf=is_spec)
check("smoothing_stats", opt, m2, both, tol=1e-5,
      finish=lambda s: ladam_jax.smoothing_stats(
          s, c2=0.1, partition_specs=both), out_specs=stat_specs)
print("OPTIMIZERS OK")
'''

ERRORS = r'''
m1 = mesh_of((8,), ("x",), "explicit")
rows = {"w": P("x", None), "conv": P(None, None, "x", None), "line": P("x"),
        "bias": None}
params, grads = trees()
# Without partition_specs: a leaf that varies over a manual axis is refused,
# naming the argument; with P() (whole leaves claimed) the update is wrong,
# which is what the error prevents.
msg = error_of(lambda: run_sharded(ladam_jax.ladam(1e-2, c2=0.1), params,
                                   grads, m1, rows))
assert "partition_specs" in msg and "['conv']" in msg and "'x'" in msg, msg
wrong = rel(run_sharded(ladam_jax.ladam(1e-2, c2=0.1, partition_specs=P()),
                        params, grads, m1, rows),
            run_global(ladam_jax.ladam(1e-2, c2=0.1), params, grads))
assert wrong > 0.05, wrong
for tx in (ladam_jax.lrmsprop(c2=0.1), ladam_jax.vradam(c2=0.0),
           ladam_jax.add_weight_laplacian(0.1)):
  msg = error_of(lambda: run_sharded(tx, params, grads, m1, rows))
  assert "partition_specs" in msg, msg
# Leaves that are whole on every device (invariant) need no specs; c2=0 and
# layout=None leaves are never smoothed, so may be split without specs.
whole = {k: P() for k in rows}
check("whole leaves, no specs", ladam_jax.ladam(1e-2, c2=0.1), m1, whole)
check("c2=0 split, no specs", ladam_jax.ladam(1e-2, c2=0.0), m1, rows)
check("layout=None split, no specs",
      ladam_jax.ladam(1e-2, c2=0.1, layout=None), m1, rows)
# Two split tensor axes within the field's columns (or rows) are refused,
# naming the leaf and the axes ...
m2 = mesh_of((4, 2), ("data", "model"), "explicit")
two = {"conv": P(None, None, "data", "model")}  # torch: cols (1, 2, 3)
msg = error_of(lambda: run_sharded(
    ladam_jax.ladam(1e-2, c2=0.1, layout="torch", partition_specs=two),
    *trees({"conv": (3, 3, 16, 32)}), m2, two))
assert "['conv']" in msg and "(2, 3)" in msg and "columns" in msg, msg
two_rows = {"conv": P("data", None, "model", None)}  # flax rows (2, 0, 1)
msg = error_of(lambda: run_sharded(
    ladam_jax.ladam(1e-2, c2=0.1, partition_specs=two_rows),
    *trees({"conv": (4, 3, 16, 32)}), m2, two_rows))
assert "(2, 0)" in msg and "rows" in msg, msg
# ... unless that leaf is never smoothed (c2 = 0 for it).
check("two split axes, c2=0 there", ladam_jax.ladam(
    1e-2, c2={"conv": 0.0}, layout="torch", partition_specs=two), m2,
    two, shapes={"conv": (3, 3, 16, 32)})
# Bad specs.
msg = error_of(lambda: run_sharded(
    ladam_jax.ladam(c2=0.1, partition_specs={"w": P("y", None)}),
    *trees({"w": (64, 96)}), m1, {"w": P("x", None)}))
assert "'y'" in msg, msg
msg = error_of(lambda: ladam_jax.ladam(c2=0.1, partition_specs="x"))
assert "partition_specs" in msg, msg
# Laplacian smoothing (a global solve) is refused inside shard_map.
for tx in (ladam_jax.lsadam(1e-3), ladam_jax.lssgd(1e-2),
           ladam_jax.scale_by_laplacian_smoothing(1.0)):
  msg = error_of(lambda: run_sharded(tx, params, grads, m1, rows))
  assert "outside shard_map" in msg and "jit" in msg, msg
# check_vma=False (and pmap): the type cannot tell; whole leaves, a warning.
def body(p, g):
  tx = ladam_jax.ladam(1e-2, c2=0.1)
  return tx.update(g, tx.init(p), p)[0]
with warnings.catch_warnings(record=True) as caught:
  warnings.simplefilter("always")
  jax.jit(jax.shard_map(body, mesh=m1, in_specs=P(), out_specs=P(),
                        check_vma=False))(params, grads[0])
assert any("partition_specs" in str(w.message) for w in caught), caught
# The compiled update exchanges halos with collective-permutes only.
m2 = mesh_of((4, 2), ("data", "model"), "explicit")
both = {"w": P("data", "model"), "conv": P(None, None, "data", "model"),
        "line": P(("data", "model")), "bias": P("model")}
for kind in ("explicit", "auto"):
  mesh = mesh_of((4, 2), ("data", "model"), kind)
  with jax.set_mesh(mesh):
    f, a = sharded(ladam_jax.ladam(1e-2, c2=0.1, partition_specs=both),
                   params, grads[:1], mesh, both)
    ops = collectives(f.lower(*a).compile().as_text())
  assert ops["collective-permute"] >= 6, ops
  assert sum(ops.values()) == ops["collective-permute"], ops
  print("ok collectives", kind, ops)
print("ERRORS OK")
'''


def _run(code: str, marker: str) -> str:
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=8",
             PYTHONPATH=ROOT)
  proc = subprocess.run([sys.executable, "-c", HARNESS + code], env=env,
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert marker in proc.stdout, proc.stdout
  return proc.stdout


@pytest.mark.slow
def test_shard_map_update_equals_global_update():
  """Rows, columns, conv out channels, 1-D leaves, batch axes, split axes
  that do not lead the field's rows or columns, flipped axes; 1-D and 2-D
  meshes, Explicit and Auto; under jit."""
  _run(EQUAL, "EQUAL OK")


@pytest.mark.slow
def test_shard_map_optimizers_equal_global_update():
  """lrmsprop, ladagrad, laprop, vradam (both velocities), ladamw's
  update_lap, weight_lap (add_weight_laplacian), wave_variance, a global
  min_spatial_size; injected hyperparameters; the diagnostics."""
  _run(OPTIMIZERS, "OPTIMIZERS OK")


@pytest.mark.slow
def test_shard_map_errors_and_collectives():
  """Missing or impossible specs fail clearly; smoothing is refused; the
  halo exchange compiles to collective-permutes only."""
  _run(ERRORS, "ERRORS OK")


@pytest.mark.slow
def test_shard_map_example_runs():
  """examples/shard_map.py: the update inside shard_map is the global one."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  env.pop("XLA_FLAGS", None)  # the example forces 8 devices itself
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, "examples", "shard_map.py")],
      env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  line = next(l for l in proc.stdout.splitlines()
              if l.startswith("max relative difference"))
  assert float(line.split(":")[-1]) <= 1e-6, proc.stdout
  assert "'all-gather': 0" in proc.stdout, proc.stdout


def test_no_shard_map_no_context():
  """Outside shard_map (here and under jit) nothing of the halo path runs:
  no manual axes, no Block in the plan, the same jaxpr as without specs."""
  assert _halo.context() is None
  params = {"w": jnp.ones((16, 16))}
  with_specs = ladam_jax.ladam(c2=0.1, partition_specs={"w": P("x", None)})
  without = ladam_jax.ladam(c2=0.1)
  jaxprs = []
  for tx in (with_specs, without):
    state = tx.init(params)
    jaxprs.append(str(jax.make_jaxpr(tx.update)(params, state, params)))
  assert jaxprs[0] == jaxprs[1]
  assert "ppermute" not in jaxprs[0]


def test_partition_specs_validated_at_construction():
  for bad in ("x", 3):
    with pytest.raises(ValueError, match="partition_specs"):
      ladam_jax.ladam(partition_specs=bad)
  with pytest.raises(ValueError, match="partition_specs"):
    ladam_jax.scale_by_velocity_regularization(
        ladam_jax.scale_by_laplacian_adam(), partition_specs="x")
