"""The periodic Laplacian operator and leaf layouts."""

import math
import re

import hypothesis
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ladam_jax
from _helpers import enable_x64, impls_here, laplacian, numpy_laplacian_2d
from ladam_jax import _laplacian
from ladam_jax import _layout

SETTINGS = dict(deadline=None, max_examples=25, derandomize=True)


def torch_view(w):
  """The reference's field of a PyTorch-layout weight."""
  return w.reshape(w.shape[0], -1) if w.ndim > 2 else w


@pytest.mark.parametrize("impl", impls_here())
@pytest.mark.parametrize("stencil", ["9point", "5point"])
def test_matches_numpy_transcription_float64(impl, stencil):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((7, 11))
  with enable_x64(True):
    got = np.asarray(laplacian(jnp.asarray(x), stencil, impl=impl))
  np.testing.assert_allclose(got, numpy_laplacian_2d(x, stencil), rtol=0,
                             atol=1e-14)


@pytest.mark.parametrize("impl", impls_here())
def test_one_dimensional_kernel(impl):
  x = jnp.arange(6.0) ** 2
  got = laplacian(x, impl=impl)
  expected = np.roll(np.asarray(x), 1) + np.roll(np.asarray(x), -1) - 2 * x
  np.testing.assert_allclose(got, expected, atol=1e-5)
  np.testing.assert_array_equal(laplacian(jnp.arange(3.0)), 0.0)


def test_unit_impulse_gives_the_stencil():
  x = jnp.zeros((5, 5)).at[2, 2].set(6.0)
  got = np.asarray(laplacian(x))[1:4, 1:4]
  np.testing.assert_allclose(got, [[1, 4, 1], [4, -20, 4], [1, 4, 1]],
                             rtol=1e-6)
  got5 = np.asarray(laplacian(x / 6, "5point"))[1:4, 1:4]
  np.testing.assert_allclose(got5, [[0, 1, 0], [1, -4, 1], [0, 1, 0]])


def test_wraps_around():
  x = jnp.zeros((4, 5)).at[0, 0].set(1.0)
  got = np.asarray(laplacian(x, "5point"))
  assert got[3, 0] == 1.0 and got[0, 4] == 1.0 and got[1, 0] == 1.0


@pytest.mark.parametrize("shape", [(2, 10), (10, 2), (3,), (), (1,), (0, 5),
                                   (2, 3, 1, 1)])
def test_too_small_fields_give_zero(shape):
  x = jnp.ones(shape) * 3.0
  got = laplacian(x)
  assert got.shape == x.shape
  np.testing.assert_array_equal(got, 0.0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_keeps_dtype_and_shape(dtype):
  x = jnp.ones((3, 3, 4, 5), dtype)
  for impl in ("conv", "shift", "flat"):
    got = laplacian(x, impl=impl)
    assert got.dtype == dtype and got.shape == x.shape


def test_float64_constants_are_exact():
  """In float64 the 9-point weights are the doubles 1/6, 4/6, -20/6."""
  with enable_x64(True):
    x = jnp.zeros((5, 5), jnp.float64).at[2, 2].set(1.0)
    for impl in ("conv", "shift", "flat"):
      got = np.asarray(laplacian(x, impl=impl))
      assert got.dtype == np.float64
      assert got[2, 2] == -20 / 6 and got[1, 2] == 4 / 6 and got[1, 1] == 1 / 6


@pytest.mark.parametrize("impl", impls_here())
@pytest.mark.parametrize("stencil", ["9point", "5point"])
@pytest.mark.parametrize("torch_shape", [(6, 4, 3, 3), (8, 4, 5), (5, 3, 2, 3, 4)])
def test_flax_layout_is_the_reference_field(impl, stencil, torch_shape):
  rng = np.random.default_rng(1)
  w_t = rng.standard_normal(torch_shape)
  nd = w_t.ndim
  kernel = np.transpose(w_t, tuple(range(2, nd)) + (1, 0))  # Flax layout
  with enable_x64(True):
    got = np.asarray(laplacian(jnp.asarray(kernel), stencil,
                                         impl=impl))
    via_torch = np.asarray(laplacian(jnp.asarray(w_t), stencil,
                                               "torch", impl=impl))
  expected_t = numpy_laplacian_2d(torch_view(w_t), stencil).reshape(torch_shape)
  np.testing.assert_allclose(via_torch, expected_t, atol=1e-13)
  back = np.transpose(got, (nd - 1, nd - 2) + tuple(range(nd - 2)))
  np.testing.assert_allclose(back, expected_t, atol=1e-13)


@pytest.mark.parametrize("impl", impls_here())
def test_custom_layout_with_batch_axes(impl):
  """(features, heads, head_dim) with one field per head."""
  rng = np.random.default_rng(2)
  x = rng.standard_normal((6, 3, 5))
  layout = ladam_jax.LaplacianLayout(rows=(0,), cols=(-1,))
  with enable_x64(True):
    got = np.asarray(laplacian(jnp.asarray(x), layout=layout,
                                         impl=impl))
  for h in range(3):
    np.testing.assert_allclose(got[:, h, :],
                               numpy_laplacian_2d(x[:, h, :], "9point"),
                               atol=1e-13)


def test_layout_none_and_one_dimensional_custom_layout():
  x = jnp.arange(24.0).reshape(4, 6) ** 2
  np.testing.assert_array_equal(laplacian(x, layout=None), 0.0)
  rows_only = ladam_jax.LaplacianLayout(rows=(1,))  # each row a periodic line
  got = np.asarray(laplacian(x, layout=rows_only))
  xn = np.asarray(x)
  np.testing.assert_allclose(
      got, np.roll(xn, 1, 1) + np.roll(xn, -1, 1) - 2 * xn, rtol=1e-6)


@pytest.mark.parametrize("bad, match", [
    (dict(stencil="7point"), "stencil"),
    (dict(layout="jax"), "layout"),
    (dict(impl="fft"), "impl"),
    (dict(layout=ladam_jax.LaplacianLayout(rows=(0,), cols=(0,))), "twice"),
    (dict(layout=ladam_jax.LaplacianLayout(rows=(5,))), "out of range"),
])
def test_bad_arguments_raise(bad, match):
  with pytest.raises(ValueError, match=match):
    laplacian(jnp.ones((4, 4)), **bad)


def test_layout_needs_rows():
  with pytest.raises(ValueError, match="rows"):
    ladam_jax.LaplacianLayout(rows=())


shapes = st.one_of(
    st.tuples(st.integers(1, 12)),
    st.tuples(st.integers(1, 9), st.integers(1, 9)),
    st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 5),
              st.integers(1, 5)),
)


@pytest.mark.slow
@hypothesis.settings(**dict(SETTINGS, max_examples=10))
@hypothesis.given(shape=shapes, stencil=st.sampled_from(["9point", "5point"]),
                  layout=st.sampled_from(["flax", "torch"]),
                  seed=st.integers(0, 2**16))
def test_properties(shape, stencil, layout, seed):
  x = jax.random.normal(jax.random.key(seed), shape)
  conv = laplacian(x, stencil, layout, impl="conv")
  shift = laplacian(x, stencil, layout, impl="shift")
  flat = laplacian(x, stencil, layout, impl="flat")
  scale = float(jnp.max(jnp.abs(x))) + 1e-30
  # the fast paths equal the lax.conv path
  assert float(jnp.max(jnp.abs(conv - shift))) <= 1e-6 * scale * 8
  assert float(jnp.max(jnp.abs(conv - flat))) <= 1e-6 * scale * 8
  # it sums to zero over each (periodic) field
  assert abs(float(jnp.sum(shift))) <= 1e-4 * scale * x.size
  # the Laplacian of a constant field is zero
  const = laplacian(jnp.full(shape, 2.5), stencil, layout)
  np.testing.assert_allclose(const, 0.0, atol=1e-5)


@pytest.mark.slow
@hypothesis.settings(**dict(SETTINGS, max_examples=8))
@hypothesis.given(h=st.integers(1, 10), w=st.integers(1, 10),
                  stencil=st.sampled_from(["9point", "5point"]),
                  seed=st.integers(0, 2**16))
def test_commutes_with_transpose(h, w, stencil, seed):
  x = jax.random.normal(jax.random.key(seed), (h, w))
  np.testing.assert_allclose(laplacian(x.T, stencil),
                             laplacian(x, stencil).T, atol=1e-6)


def test_field_spec_of_named_layouts():
  # the transpose of the reference's (out, in * kh * kw) field
  spec = _layout.field_spec((3, 3, 4, 8), "flax")
  assert spec.perm == (2, 0, 1, 3) and spec.field == (36, 8) and spec.batch == 1
  spec = _layout.field_spec((8, 4, 3, 3), "torch")
  assert spec.perm == (0, 1, 2, 3) and spec.field == (8, 36)
  assert _layout.field_spec((), "flax") is None


# Layouts of the memory-order row plan of impl='flat': leading batch axes,
# permuted row axes, trailing column axes (the plan applies), and layouts it
# does not cover (columns not the minor axes: the 'shift' fallback).
PLAN_CASES = [
    ((9, 7), "flax", True),
    ((5, 3), "flax", True),  # every row's neighbours touch the first/last row
    ((3, 3), "flax", True),
    ((3, 3, 4, 6), "flax", True),  # conv kernel: rows (in, kh, kw)
    ((3, 1, 5, 4, 3), "flax", True),  # 3-D conv kernel, a size-1 axis
    ((6, 4, 3, 3), "torch", True),
    ((4, 6, 5), ladam_jax.LaplacianLayout(rows=(1,), cols=(2,)), True),
    ((2, 3, 4, 5), ladam_jax.LaplacianLayout(rows=(2, 1), cols=(3,)), True),
    ((6, 3, 5), ladam_jax.LaplacianLayout(rows=(0,), cols=(2,)), False),
    ((4, 5, 6), ladam_jax.LaplacianLayout(rows=(2,), cols=(1,)), False),
    ((7,), "flax", False),  # 1-D field
]


@pytest.mark.parametrize("shape, layout, planned", PLAN_CASES)
@pytest.mark.parametrize("stencil", ["9point", "5point"])
def test_flat_row_plan_matches_conv_float64(shape, layout, planned, stencil):
  from ladam_jax import _stencil  # pylint: disable=g-import-not-at-top
  spec = _layout.field_spec(shape, layout)
  plan = _stencil.row_plan(shape, spec)
  assert (plan is not None) == planned
  if plan is not None:  # every memory row is computed exactly once
    rows = sorted(m for s, n, _, _ in plan.runs for m in range(s, s + n))
    assert rows == list(range(spec.field[0]))
  x = np.random.default_rng(3).standard_normal(shape)
  with enable_x64(True):
    conv = laplacian(jnp.asarray(x), stencil, layout, impl="conv")
    flat = laplacian(jnp.asarray(x), stencil, layout, impl="flat")
  np.testing.assert_allclose(flat, conv, rtol=0, atol=1e-13)


@pytest.mark.parametrize("shape, layout", [
    ((64, 48), "flax"), ((3, 3, 16, 32), "flax"), ((5, 2, 40), "flax"),
    ((32, 16, 3, 3), "torch")])
@pytest.mark.parametrize("stencil", ["9point", "5point"])
def test_flat_stencil_pads_one_row_runs_only(shape, layout, stencil):
  # A run of many rows that reads one element past the flat buffer is a
  # padded slice, and on CPU a bounds-checked load in every vector of its
  # loop: only one-row runs may read padded slices.
  from ladam_jax import _stencil  # pylint: disable=g-import-not-at-top
  spec = _layout.field_spec(shape, layout)
  plan = _stencil.row_plan(shape, spec)
  b, _, w = plan.view
  hlo = jax.jit(lambda y: laplacian(y, stencil, layout, impl="flat")).lower(
      jnp.zeros(shape)).compile().as_text()
  pads = [math.prod(int(d) for d in dims.split(","))
          for dims in re.findall(r"f32\[([0-9,]+)\]\S* pad\(", hlo)]
  assert pads, hlo  # the edge rows do read padded slices
  assert max(pads) <= b * w, (pads, b * w)


@hypothesis.settings(**SETTINGS)
@hypothesis.given(rows=st.integers(1, 12), halo=st.booleans(),
                  corners=st.booleans())
def test_in_bounds_runs_cover_the_same_rows(rows, halo, corners):
  from ladam_jax import _stencil  # pylint: disable=g-import-not-at-top
  runs = _stencil.band_runs(rows)
  if halo:
    runs = _stencil.halo_runs(runs, rows)
  peeled = _stencil.in_bounds_runs(runs, rows, corners)
  # Row by row, the same neighbours above and below, in the same order.
  per_row = lambda rs: [(s + i, u + i, d + i) for s, n, u, d in rs
                        for i in range(n)]
  assert per_row(peeled) == per_row(runs)
  assert len(peeled) <= _stencil.FUSED_RUNS
  for start, n, up, down in peeled:
    reads = [r for r in ((start, up, down) if corners else (start,))
             if 0 <= r < rows]
    if n > 1:  # reads column -1 of row r and column w of row r + n - 1
      assert all(r > 0 and r + n < rows for r in reads), (start, n, up, down)


def test_in_bounds_runs_keep_a_fused_plan_fused():
  from ladam_jax import _stencil  # pylint: disable=g-import-not-at-top
  # Eight runs of a 20-row field; peeling the second would make nine, one
  # more than XLA:CPU fuses, so they stay as they are.
  runs = ((0, 1, 19, 1),) + tuple((s, 3, s - 1, s + 1)
                                  for s in range(1, 19, 3)) + ((19, 1, 18, 0),)
  assert len(runs) == _stencil.FUSED_RUNS == 8
  assert _stencil.in_bounds_runs(runs, 20, corners=True) == runs
  assert len(_stencil.in_bounds_runs(runs[1:-1], 20, corners=True)) == 8


@pytest.mark.parametrize("layout", ["flax", "torch"])
def test_flat_vmap_and_float32_bound(layout):
  x = jax.random.normal(jax.random.key(4), (3, 3, 3, 8, 16))
  flat = jax.vmap(lambda y: laplacian(y, layout=layout,
                                                impl="flat"))(x)
  conv = jnp.stack([laplacian(y, layout=layout, impl="conv")
                    for y in x])
  rel = float(jnp.max(jnp.abs(flat - conv)) / jnp.max(jnp.abs(conv)))
  assert rel <= 1e-6, rel


def test_default_impl_is_flat_on_one_cpu_or_gpu_device(monkeypatch):
  assert _laplacian.default_impl() == (
      "flat" if jax.device_count() == 1 else "shift")
  monkeypatch.setattr(jax, "device_count", lambda: 1)
  monkeypatch.setattr(jax, "default_backend", lambda: "tpu")
  assert _laplacian.default_impl() == "shift"
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert _laplacian.default_impl() == "flat"
  monkeypatch.setattr(jax, "device_count", lambda: 4)
  assert _laplacian.default_impl() == "shift"


def test_resolve_impl_decides_per_leaf(monkeypatch):
  """The one place that says which implementation computes L of a leaf."""
  from ladam_jax import _laplacian, _pallas  # pylint: disable=g-import-not-at-top
  resolve = _laplacian.resolve_impl
  dense = ((40, 48), _layout.field_spec((40, 48), "flax"))
  line = ((40,), _layout.field_spec((40,), "flax"))
  tiny = ((2, 8), _layout.field_spec((2, 8), "flax"))
  f32 = (jnp.float32,)
  assert resolve("conv", *dense, f32) == "conv"
  assert resolve("flat", *dense, f32) == "flat"
  assert resolve("flat", *line, f32) == "shift"  # no memory-row plan in 1-D
  assert resolve("flat", *tiny, f32) is None  # a side < 3: L is zero
  assert resolve(None, *dense, f32) == _laplacian.default_impl()
  monkeypatch.setattr(_pallas, "on_gpu", lambda: False)
  assert resolve("pallas", *dense, f32) == "flat"  # no GPU
  assert resolve("pallas_interpret", *dense, f32) == "pallas_interpret"
  monkeypatch.setattr(_pallas, "on_gpu", lambda: True)
  assert resolve("pallas", *dense, f32) == "pallas"
  assert resolve("pallas", *dense, (jnp.bfloat16,)) == "flat"  # float32 only
  assert resolve("pallas", *line, f32) == "shift"
  # Inside a transform's XLA maths a standalone kernel would cut fusion.
  assert resolve("pallas", *dense, f32, in_fused_maths=True) == "flat"


def test_package_import_graph_is_acyclic():
  """No module of ladam_jax imports (at module level or inside a function)
  one that imports it back, directly or not."""
  import ast  # pylint: disable=g-import-not-at-top
  import pathlib  # pylint: disable=g-import-not-at-top
  root = pathlib.Path(ladam_jax.__file__).parent
  graph = {}
  for path in root.rglob("*.py"):
    name = ".".join(("ladam_jax",) + path.relative_to(root).with_suffix(
        "").parts).removesuffix(".__init__")
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
      if (isinstance(node, ast.ImportFrom) and node.module and
          node.module.split(".")[0] == "ladam_jax"):
        # `from P import m`: the submodule P.m where m is one, else P.
        deps |= {f"{node.module}.{a.name}" for a in node.names} | {
            node.module}
      elif isinstance(node, ast.Import):
        deps |= {a.name for a in node.names if a.name.startswith("ladam_jax.")}
    graph[name] = deps
  modules = set(graph)
  # A package's own __init__ importing its submodules is not a cycle; a
  # submodule importing from its package's name is resolved to the names'
  # submodules above.
  graph = {m: {d for d in ds if d in modules and d != m and
               not (m.startswith(d + ".") and
                    any(x.startswith(d + ".") for x in ds))}
           for m, ds in graph.items()}
  state = {}

  def visit(m, stack):
    state[m] = "open"
    for d in sorted(graph[m]):
      assert state.get(d) != "open", " -> ".join(stack + [m, d])
      if d not in state:
        visit(d, stack + [m])
    state[m] = "done"

  for m in sorted(graph):
    if m not in state:
      visit(m, [])
  assert {"ladam_jax._stencil", "ladam_jax._laplacian",
          "ladam_jax._pallas"} <= modules
