"""Sharded parameters on 8 forced CPU devices: Explicit, Auto and 2-D meshes.

Each test runs a group of checks in a fresh process (the device count is
fixed when JAX starts): ``python tests/test_sharding.py GROUP`` runs one
group by hand. A check compares the sharded update with the unsharded one,
asserts that the updates and the state carry the parameters' shardings, and
counts the collectives in the compiled update's HLO: LAdam's stencil
exchanges halos only (collective-permutes), Laplacian smoothing keeps the
leaf sharded through its FFTs (all-to-alls); an all-gather fails the check.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIVES = ("all-gather", "all-reduce", "all-to-all", "collective-permute",
               "reduce-scatter")


# --------------------------------------------------------------------------
# Helpers (run inside the 8-device process)
# --------------------------------------------------------------------------


def collectives(hlo_text: str) -> dict[str, int]:
  """How many of each collective a compiled HLO module holds."""
  return {op: len(re.findall(rf"\b{op}(?:-start)?\(", hlo_text))
          for op in COLLECTIVES}


def non_row_major_fft_operands(hlo_text: str) -> list[str]:
  """FFT instructions whose operand's layout is not row-major (XLA:CPU's
  FFT thunk refuses those at run time)."""
  shapes = dict(re.findall(r"%(\S+) = (\S+\[[^\]]*\]\{[^}]*\})", hlo_text))
  bad = []
  for name, operand in re.findall(r"%(\S+) = \S+ fft\(%([^),]+)\)",
                                  hlo_text):
    layout = re.search(r"\{([\d,]*)", shapes.get(operand, "{"))
    dims = [int(v) for v in layout.group(1).split(",") if v]
    if dims != sorted(dims, reverse=True):
      bad.append(f"{name}: {shapes.get(operand)}")
  return bad


def _tree(specs_kind: str):
  """Params, grads and PartitionSpecs: a row-sharded and a column-sharded
  dense kernel, an output-channel-sharded conv kernel, a sharded bias."""
  import jax  # pylint: disable=g-import-not-at-top
  from jax.sharding import PartitionSpec as P  # pylint: disable=g-import-not-at-top
  ks = jax.random.split(jax.random.key(0), 8)
  params = {"rows": jax.random.normal(ks[0], (64, 48)),
            "cols": jax.random.normal(ks[1], (48, 64)),
            "conv": jax.random.normal(ks[2], (3, 3, 16, 32)),
            "bias": jax.random.normal(ks[3], (128,))}
  grads = {k: jax.random.normal(ks[4 + i], v.shape)
           for i, (k, v) in enumerate(params.items())}
  if specs_kind == "1d":
    specs = {"rows": P("x", None), "cols": P(None, "x"),
             "conv": P(None, None, None, "x"), "bias": P("x")}
  else:  # FSDP over 'data', tensor parallel over 'model'
    # The bias is split by both mesh axes, in the order opposite to the
    # mesh's (its blocks are numbered model-major).
    specs = {"rows": P("data", "model"), "cols": P("model", "data"),
             "conv": P(None, None, "data", "model"),
             "bias": P(("model", "data"))}
  return params, grads, specs


def _mesh(kind: str, explicit: bool):
  import jax  # pylint: disable=g-import-not-at-top
  axis_type = (jax.sharding.AxisType.Explicit if explicit
               else jax.sharding.AxisType.Auto)
  shape, names = ((8,), ("x",)) if kind == "1d" else ((2, 4),
                                                      ("data", "model"))
  return jax.make_mesh(shape, names, axis_types=(axis_type,) * len(names))


def _max_rel(a, b) -> float:
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  out = 0.0
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    out = max(out, float(np.max(np.abs(x - y), initial=0.0)
                         / max(np.max(np.abs(y), initial=0.0), 1e-30)))
  return out


def check(tx, *, kind: str, explicit: bool, steps: int = 2,
          tol: float = 1e-6, want: str | None = None, label: str = ""):
  """Sharded updates of ``tx`` equal the unsharded ones and keep the
  params' shardings; returns the collectives of the compiled update.

  ``want='halo'``: collective-permutes and nothing else; ``'all-to-all'``:
  all-to-alls and nothing else (no all-gather either way).
  """
  import jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding  # pylint: disable=g-import-not-at-top
  params, grads, specs = _tree(kind)
  mesh = _mesh(kind, explicit)

  def step(p, s, g):
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s, u

  p1, s1 = params, tx.init(params)
  jstep = jax.jit(step)
  for _ in range(steps):
    p1, s1, u1 = jstep(p1, s1, grads)
  shardings = {k: NamedSharding(mesh, s) for k, s in specs.items()}
  with jax.set_mesh(mesh):
    ps = jax.device_put(params, shardings)
    gs = jax.device_put(grads, shardings)
    ss = tx.init(ps)
    compiled = jax.jit(step).lower(ps, ss, gs).compile()
    for _ in range(steps):
      ps, ss, us = compiled(ps, ss, gs)
  err = _max_rel((ps, ss, us), (p1, s1, u1))
  assert err <= tol, (label, err)
  for tree in (ps, us):
    for k, x in tree.items():
      assert x.sharding.is_equivalent_to(shardings[k], x.ndim), (
          label, k, x.sharding)
  # Every state leaf shaped like a param (moments) has its sharding.
  for path, x in jax.tree_util.tree_leaves_with_path(ss):
    key = getattr(path[-1], "key", None)
    if key in shardings and x.shape == params[key].shape:
      assert x.sharding.is_equivalent_to(shardings[key], x.ndim), (
          label, path, x.sharding)
  text = compiled.as_text()
  ops = collectives(text)
  ops["transpose"] = len(re.findall(r"\btranspose\(", text))
  assert ops["all-gather"] == 0, (label, ops)  # no leaf is gathered
  if want == "halo":
    assert ops["collective-permute"] > 0, (label, ops)
    assert ops["all-to-all"] == ops["all-reduce"] == 0, (label, ops)
  elif want == "all-to-all":
    assert ops["all-to-all"] > 0, (label, ops)
    assert ops["collective-permute"] == ops["all-reduce"] == 0, (label, ops)
    assert not non_row_major_fft_operands(text), (
        label, non_row_major_fft_operands(text))
  print(f"{label}: rel err {err:.1e}, {ops}")
  return ops


# --------------------------------------------------------------------------
# Groups of checks (one process each)
# --------------------------------------------------------------------------


def group_mesh(kind: str, explicit: bool):
  """LAdam (halos only) and Laplacian smoothing (all-to-alls only)."""
  import ladam_jax  # pylint: disable=g-import-not-at-top
  name = f"{'explicit' if explicit else 'auto'} {kind}"
  ops = check(ladam_jax.ladam(1e-2, c2=1e-2), kind=kind, explicit=explicit,
              want="halo", label=f"{name} ladam")
  # The halos of all four leaves travel together: one ppermute per ring and
  # direction, one for both directions on a ring of two blocks ('data').
  # 1-D mesh: one ring ('x'), one round. 2-D mesh: the leaves split both
  # ways exchange their 'data' halos first, whichever dimension 'data'
  # splits (rows: rows, conv; columns: cols), then the 'model' ones, which
  # carry the 9-point stencil's corners. First round: 'data' (1) and the
  # bias's ('model', 'data') (2); second round: 'model' (2).
  assert ops["collective-permute"] == (2 if kind == "1d" else 5), (name, ops)
  # Every block is read in memory order, with no transposed copy: the conv
  # kernel (kh, kw, in, out) too (field rows (in, kh, kw)), whether it
  # holds whole field rows (split on `out`) or a band of them (split on
  # `in` as well, 2-D mesh).
  assert ops["transpose"] == 0, (name, ops)
  # The 5-point stencil reads no corner: one round (2-D mesh: 1 + 2 + 2
  # for the rings 'data', 'model' and ('model', 'data')).
  ops = check(ladam_jax.ladam(1e-2, c2=1e-2, stencil="5point"), kind=kind,
              explicit=explicit, want="halo", label=f"{name} ladam 5point")
  assert ops["collective-permute"] == (2 if kind == "1d" else 5), (name, ops)
  _temporaries(kind, explicit)
  check(ladam_jax.scale_by_laplacian_smoothing(2.0), kind=kind,
        explicit=explicit, tol=2e-6, want="all-to-all",
        label=f"{name} smoothing fft")


def _temporaries(kind: str, explicit: bool):
  """LAdam's compiled update holds no temporary larger than the halos: no
  padded copy of a block (``compiled.memory_analysis()``, compiled from
  shapes: nothing is allocated)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding, PartitionSpec as P  # pylint: disable=g-import-not-at-top
  import ladam_jax  # pylint: disable=g-import-not-at-top
  mesh = _mesh(kind, explicit)
  if kind == "1d":
    specs = {"rows": P("x", None), "cols": P(None, "x"), "bias": P("x")}
  else:
    specs = {"rows": P("data", "model"), "cols": P("model", "data"),
             "bias": P("model")}
  shapes = {"rows": (512, 512), "cols": (512, 512), "bias": (512,)}
  params = {k: jax.ShapeDtypeStruct(shapes[k], jnp.float32,
                                    sharding=NamedSharding(mesh, specs[k]))
            for k in specs}
  shard_bytes = sum(4 * math.prod(v) for v in shapes.values()) / 8

  def state_leaf(path, x):  # a moment has its param's sharding
    key = getattr(path[-1], "key", None) if path else None
    sharding = (params[key].sharding if key in params and x.ndim
                else NamedSharding(mesh, P()))
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)

  for name, tx in (("adam", optax.adam(1e-3)),
                   ("ladam", ladam_jax.ladam(1e-3, c2=1e-4))):

    def step(p, s, g, tx=tx):
      u, s = tx.update(g, s, p)
      return optax.apply_updates(p, u), s

    with jax.set_mesh(mesh):
      state = jax.tree_util.tree_map_with_path(
          state_leaf, jax.eval_shape(tx.init, params))
      compiled = jax.jit(step, donate_argnums=(0, 1)).lower(
          params, state, params).compile()
    temp = compiled.memory_analysis().temp_size_in_bytes / shard_bytes
    print(f"{kind} explicit={explicit} {name}: temporaries {temp:.3f} "
          "param shards")
    assert temp <= 0.25, (name, temp)  # a padded block copy is ~0.5


def group_detector():
  """The HLO checks see a gather where XLA makes one: an FFT over a
  column-sharded leaf on an Auto mesh, left to the partitioner."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding, PartitionSpec as P  # pylint: disable=g-import-not-at-top
  mesh = _mesh("1d", explicit=False)
  x = jax.device_put(jnp.ones((48, 64)), NamedSharding(mesh, P(None, "x")))
  text = jax.jit(lambda x: jnp.fft.irfftn(jnp.fft.rfftn(x), s=x.shape)
                 ).lower(x).compile().as_text()
  assert collectives(text)["all-gather"] > 0, collectives(text)
  print("detector: a gathered FFT is seen")


def group_everything():
  """Every public transform on Explicit, Auto and 2-D meshes."""
  import ladam_jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  lap = dict(c2=1e-2)
  transforms = {
      "ladamw": (ladam_jax.ladamw(1e-2, weight_decay=1e-3, **lap), "halo"),
      "lrmsprop": (ladam_jax.lrmsprop(1e-2, **lap), "halo"),
      "ladagrad": (ladam_jax.ladagrad(1e-2, **lap), "halo"),
      "laprop": (ladam_jax.laprop(1e-2, **lap), "halo"),
      "vradam": (ladam_jax.vradam(1e-2, **lap), None),
      "ladam update_lap": (ladam_jax.ladam(1e-2, mode="update_lap", **lap),
                           "halo"),
      "ladam weight_lap (add_weight_laplacian)": (
          ladam_jax.ladam(1e-2, mode="weight_lap", **lap), "halo"),
      "ladam wave_variance": (
          ladam_jax.ladam(1e-2, mode="wave_variance", **lap), None),
      "scale_by_laplacian_adam": (optax.chain(
          ladam_jax.scale_by_laplacian_adam(**lap),
          optax.scale_by_learning_rate(1e-2)), "halo"),
      "lsadam": (ladam_jax.lsadam(1e-2, sigma=2.0), "all-to-all"),
      "lsadam dft": (ladam_jax.lsadam(1e-2, sigma=2.0, method="dft"),
                     "all-to-all"),
      "lssgd": (ladam_jax.lssgd(1e-2, momentum=0.9, sigma=2.0),
                "all-to-all"),
      "lsadam target=nu (scale_by_implicit_laplacian_adam)": (
          ladam_jax.lsadam(1e-2, sigma=2.0, target="nu"), "all-to-all"),
  }
  for kind, explicit in (("1d", True), ("1d", False), ("2d", True)):
    name = f"{'explicit' if explicit else 'auto'} {kind}"
    for label, (tx, want) in transforms.items():
      tol = 1e-6 if want == "halo" or want is None else 5e-6
      check(tx, kind=kind, explicit=explicit, steps=1, tol=tol, want=want,
            label=f"{name} {label}")
    _diagnostics(kind, explicit)


def _diagnostics(kind: str, explicit: bool):
  """smoothing_stats and smoothing_step_ratio on a sharded LAdam state.

  The step ratio keeps the leaves' shardings and gathers nothing; the
  statistics' median needs every entry of a leaf (a gather of the ratio).
  """
  import jax  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding  # pylint: disable=g-import-not-at-top
  import ladam_jax  # pylint: disable=g-import-not-at-top
  params, grads, specs = _tree(kind)
  mesh = _mesh(kind, explicit)
  tx = ladam_jax.ladam(1e-2, c2=0.1)
  stats = jax.jit(lambda s: ladam_jax.smoothing_stats(s, c2=0.1))
  ratio = jax.jit(lambda s: ladam_jax.smoothing_step_ratio(s, c2=0.1))
  state = tx.update(grads, tx.init(params), params)[1]
  want = (stats(state), ratio(state))
  shardings = {k: NamedSharding(mesh, s) for k, s in specs.items()}
  with jax.set_mesh(mesh):
    ps = jax.device_put(params, shardings)
    gs = jax.device_put(grads, shardings)
    sharded_state = jax.jit(tx.update)(gs, tx.init(ps), ps)[1]
    compiled = ratio.lower(sharded_state).compile()
    got = (stats(sharded_state), compiled(sharded_state))
  assert _max_rel(got, want) <= 1e-6, _max_rel(got, want)
  for k, x in got[1].items():
    assert x.sharding.is_equivalent_to(shardings[k], x.ndim), (k, x.sharding)
  assert collectives(compiled.as_text())["all-gather"] == 0
  print(f"{kind} explicit={explicit} diagnostics: ok")


def group_shapes():
  """Shapes the mesh does not divide, fallbacks, vmap."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding, PartitionSpec as P  # pylint: disable=g-import-not-at-top
  import ladam_jax  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  txs = {"adam": optax.adam(1e-2), "ladam": ladam_jax.ladam(1e-2, c2=1e-2),
         "lsadam": ladam_jax.lsadam(1e-2, sigma=2.0)}
  # Explicit meshes refuse an uneven sharding before any optimizer runs
  # (JAX's own error), for optax.adam as for every transform here.
  mesh = _mesh("1d", explicit=True)
  with pytest.raises(ValueError, match="evenly divide"):
    jax.device_put(jnp.ones((50,)), NamedSharding(mesh, P("x")))
  # Auto meshes: XLA pads an uneven split inside jit; each transform gives
  # the unsharded answer and the output sharding optax.adam gets.
  mesh = _mesh("1d", explicit=False)
  p = {"w": jnp.asarray(rng.normal(size=(49, 64)), jnp.float32),
       "b": jnp.asarray(rng.normal(size=(50,)), jnp.float32)}
  spec = {"w": NamedSharding(mesh, P("x", None)),
          "b": NamedSharding(mesh, P("x"))}
  out_specs = {}
  for name, tx in txs.items():
    want = jax.jit(tx.update)(p, tx.init(p), p)[0]

    def f(p, tx=tx):
      p = jax.lax.with_sharding_constraint(p, spec)
      return tx.update(p, tx.init(p), p)[0]

    with jax.set_mesh(mesh):
      got = jax.jit(f)(p)
    assert _max_rel(got, want) <= 1e-5, (name, _max_rel(got, want))
    out_specs[name] = {k: v.sharding.spec for k, v in got.items()}
  assert out_specs["ladam"] == out_specs["lsadam"] == out_specs["adam"], (
      out_specs)
  # Smoothing where no all-to-all fits: frequencies padded (a side that the
  # shard count does not divide), and the partial gathers: a line whose
  # local length the shard count does not divide, a field split on both
  # axes that neither side can take whole.
  cases = [
      ("1d", (50, 64), P(None, "x")),   # padded frequencies
      ("1d", (40,), P("x")),             # line: all-gather of the line
      ("2d", (18, 20), P("data", "model")),  # gather over 'model' only
      ("2d", (24, 40), P("data", "model")),  # model moves onto the rows
      ("2d", (4, 8, 16, 32), P(None, "data", None, "model")),
  ]
  for explicit in (True, False):
    for kind, shape, pspec in cases:
      mesh = _mesh(kind, explicit)
      x = jnp.asarray(rng.normal(size=shape), jnp.float32)
      tx = ladam_jax.scale_by_laplacian_smoothing(
          2.0, layout=ladam_jax.LaplacianLayout(rows=(1,), cols=(2, 3))
          if len(shape) == 4 else "flax")
      want = jax.jit(tx.update)({"w": x}, tx.init({"w": x}))[0]["w"]
      with jax.set_mesh(mesh):
        xs = jax.device_put(x, NamedSharding(mesh, pspec))
        compiled = jax.jit(tx.update).lower({"w": xs},
                                            tx.init({"w": xs})).compile()
        got = compiled({"w": xs}, tx.init({"w": xs}))[0]["w"]
      assert _max_rel(got, want) <= 5e-6, (shape, pspec, _max_rel(got, want))
      assert got.sharding.is_equivalent_to(
          NamedSharding(mesh, pspec), got.ndim), (shape, got.sharding)
      print(f"explicit={explicit} {shape} {pspec}: "
            f"{collectives(compiled.as_text())}")
  # vmap over the smoothing with several devices (the custom op's rule).
  tx = ladam_jax.scale_by_laplacian_smoothing(1.0)
  xs = jnp.asarray(rng.normal(size=(3, 16, 16)), jnp.float32)
  one = lambda x: tx.update({"w": x}, tx.init({"w": x}))[0]["w"]  # noqa: E731
  want = jnp.stack([one(x) for x in xs])
  assert _max_rel(jax.jit(jax.vmap(one))(xs), want) <= 1e-6
  # vmap over LAdam's update on an Auto mesh, the mapped leaves sharded
  # (the halo op's vmap rule), and two split axes within one field axis
  # (conv rows (in, kh, kw) under the 'torch'-like layout below: the split
  # of kh moves onto `in`, an all-to-all).
  mesh = _mesh("1d", explicit=False)
  tx = ladam_jax.scale_by_laplacian_adam(c2=0.1)
  gs = jnp.asarray(rng.normal(size=(3, 16, 32)), jnp.float32)
  one = lambda g: tx.update({"w": g}, tx.init({"w": g}))[0]["w"]  # noqa: E731
  want = jnp.stack([one(g) for g in gs])
  with jax.set_mesh(mesh):
    got = jax.jit(jax.vmap(one))(
        jax.device_put(gs, NamedSharding(mesh, P(None, None, "x"))))
  assert _max_rel(got, want) <= 1e-6, _max_rel(got, want)
  layout = ladam_jax.LaplacianLayout(rows=(2, 0, 1), cols=(3,))
  tx = ladam_jax.scale_by_laplacian_adam(c2=0.1, layout=layout)
  g = jnp.asarray(rng.normal(size=(4, 3, 16, 8)), jnp.float32)
  want = tx.update({"w": g}, tx.init({"w": g}))[0]["w"]
  for explicit in (True, False):
    mesh = _mesh("2d", explicit)
    with jax.set_mesh(mesh):
      gsh = jax.device_put(g, NamedSharding(mesh, P("data", None, "model")))
      compiled = jax.jit(tx.update).lower({"w": gsh},
                                          tx.init({"w": gsh})).compile()
      got = compiled({"w": gsh}, tx.init({"w": gsh}))[0]["w"]
    assert _max_rel(got, want) <= 1e-6, (explicit, _max_rel(got, want))
    assert got.sharding.is_equivalent_to(
        NamedSharding(mesh, P("data", None, "model")), 4), got.sharding
    ops = collectives(compiled.as_text())
    assert ops["all-gather"] == 0, ops
    print(f"explicit={explicit} two splits in the rows: {ops}")
  print("shapes: ok")


GROUPS = {
    "explicit_1d": lambda: group_mesh("1d", True),
    "auto_1d": lambda: group_mesh("1d", False),
    "mesh_2d": lambda: (group_mesh("2d", True), group_mesh("2d", False)),
    "detector": group_detector,
    "everything": group_everything,
    "shapes": group_shapes,
}


def run_group(*names: str, timeout: int = 900) -> str:
  """Runs groups of checks in one fresh process with 8 CPU devices."""
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=8",
             PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]))
  proc = subprocess.run(
      [sys.executable, os.path.abspath(__file__), *names], env=env,
      capture_output=True, text=True, timeout=timeout, cwd=ROOT)
  assert proc.returncode == 0, proc.stdout + proc.stderr[-6000:]
  assert "CHECKS OK" in proc.stdout, proc.stdout
  return proc.stdout


# --------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------


def test_one_dimensional_mesh_explicit_and_auto():
  """8 devices in a row, Explicit axes, then Auto axes (inside
  jax.set_mesh): LAdam exchanges halos only, smoothing all-to-alls only;
  both exact and sharded. The detector sees a gathered FFT."""
  out = run_group("explicit_1d", "auto_1d", "detector")
  assert "explicit 1d ladam" in out and "auto 1d smoothing fft" in out
  assert "a gathered FFT is seen" in out


@pytest.mark.slow
def test_two_dimensional_mesh():
  """('data', 'model') mesh, FSDP on one axis, tensor parallel on the
  other; Explicit and Auto."""
  assert "auto 2d smoothing fft" in run_group("mesh_2d")


@pytest.mark.slow
def test_every_transform_on_every_mesh():
  """Every public transform and alias, smoothing_stats and
  smoothing_step_ratio: Explicit, Auto, 2-D."""
  assert "diagnostics: ok" in run_group("everything", timeout=1800)


@pytest.mark.slow
def test_uneven_shapes_fallbacks_and_vmap():
  """Uneven splits as optax.adam gets them; padded frequencies, partial
  gathers; vmap with several devices."""
  assert "shapes: ok" in run_group("shapes")


if __name__ == "__main__":
  os.environ.setdefault("XLA_FLAGS",
                        "--xla_force_host_platform_device_count=8")
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  for group in sys.argv[1:]:
    GROUPS[group]()
  print("CHECKS OK")
