"""Laplacian smoothing (Osher et al.): the FFT solve against a dense solve."""

import math

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ladam_jax
from ladam_jax import _laplacian
from _helpers import enable_x64


def _dense_laplacian(shape, stencil, layout):
  """The matrix of ladam_jax.laplacian on leaves of ``shape`` (float64)."""
  n = math.prod(shape)
  cols = []
  for i in range(n):
    e = np.zeros(n)
    e[i] = 1.0
    with _laplacian.using_impl("shift"):
      cols.append(np.asarray(ladam_jax.laplacian(
          jnp.asarray(e.reshape(shape)), stencil, layout)).ravel())
  return np.stack(cols, 1)


def _ring_laplacian(n):
  """The periodic 1-D [1, -2, 1] matrix (the paper's flattened variant)."""
  m = -2 * np.eye(n) + np.roll(np.eye(n), 1, 0) + np.roll(np.eye(n), -1, 0)
  return m


@pytest.mark.parametrize("shape, stencil, layout, flatten", [
    ((6, 7), "9point", "flax", False),
    ((6, 7), "5point", "flax", False),
    ((3, 3, 4, 5), "9point", "flax", False),  # conv kernel: (in·kh·kw, out)
    ((4, 5, 6), "5point", "torch", False),
    ((20,), "9point", "flax", False),          # 1-D leaf: [1, -2, 1]
    ((4, 5), "9point", "flax", True),          # the paper's flattened line
])
@pytest.mark.parametrize("sigma, method", [(0.3, "fft"), (5.0, "fft"),
                                           (5.0, "dft")])
def test_equals_a_dense_solve_in_float64(shape, stencil, layout, flatten,
                                         sigma, method):
  with enable_x64():
    g = np.random.default_rng(0).normal(size=shape)
    lap = (_ring_laplacian(g.size) if flatten
           else _dense_laplacian(shape, stencil, layout))
    want = np.linalg.solve(np.eye(g.size) - sigma * lap, g.ravel())
    tx = ladam_jax.scale_by_laplacian_smoothing(
        sigma, stencil=stencil, layout=layout, flatten=flatten,
        min_spatial_size=0, method=method)
    u, _ = jax.jit(tx.update)({"w": jnp.asarray(g)},
                              tx.init({"w": jnp.asarray(g)}))
    assert u["w"].dtype == jnp.float64 and u["w"].shape == shape
    np.testing.assert_allclose(np.asarray(u["w"]).ravel(), want, rtol=0,
                               atol=1e-10 * np.abs(want).max())
    # The mean of the leaf (of each field) is kept.
    np.testing.assert_allclose(float(u["w"].sum()), g.sum(), atol=1e-10)


def test_small_leaves_zero_sigma_and_no_field_pass_unchanged():
  params = {"small": jnp.arange(9.0).reshape(3, 3),  # 9 < 16 entries
            "thin": jnp.arange(40.0).reshape(2, 20),  # a side below 3
            "scalar": jnp.float32(2.0),
            "big": jnp.arange(64.0).reshape(8, 8)}
  tx = ladam_jax.scale_by_laplacian_smoothing(2.0)
  u, state = tx.update(params, tx.init(params))
  for k in ("small", "thin", "scalar"):
    np.testing.assert_array_equal(u[k], params[k])
  assert not np.allclose(u["big"], params["big"])
  assert int(state.count) == 1
  zero = ladam_jax.scale_by_laplacian_smoothing(0.0)
  u0, _ = zero.update(params, zero.init(params))
  for k in params:
    np.testing.assert_array_equal(u0[k], params[k])


def test_sigma_schedules_subtrees_and_injection():
  g = {"a": jnp.asarray(np.random.default_rng(1).normal(size=(8, 8)),
                        jnp.float32),
       "b": jnp.asarray(np.random.default_rng(2).normal(size=(8, 8)),
                        jnp.float32)}
  fixed = ladam_jax.scale_by_laplacian_smoothing(0.5)
  want, _ = fixed.update(g, fixed.init(g))
  # A schedule is evaluated at the step count.
  sched = ladam_jax.scale_by_laplacian_smoothing(
      optax.piecewise_constant_schedule(0.5, {1: 0.0}))
  s = sched.init(g)
  u1, s = sched.update(g, s)
  u2, s = sched.update(g, s)
  np.testing.assert_allclose(u1["a"], want["a"], rtol=1e-6)
  np.testing.assert_array_equal(u2["a"], g["a"])
  # Per subtree, as c2: only "a" smoothed.
  sub = ladam_jax.scale_by_laplacian_smoothing(
      ladam_jax.c2_by_path({"a": 0.5}, default=0.0))
  u, _ = sub.update(g, sub.init(g))
  np.testing.assert_allclose(u["a"], want["a"], rtol=1e-6)
  np.testing.assert_array_equal(u["b"], g["b"])
  # Same-shaped leaves are solved stacked, each with its own sigma.
  two = ladam_jax.scale_by_laplacian_smoothing({"a": 0.5, "b": 3.0})
  u, _ = jax.jit(two.update)(g, two.init(g))
  alone = ladam_jax.scale_by_laplacian_smoothing(3.0)
  want_b, _ = alone.update({"b": g["b"]}, alone.init({"b": g["b"]}))
  np.testing.assert_allclose(u["a"], want["a"], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(u["b"], want_b["b"], rtol=1e-5, atol=1e-6)
  # A traced sigma (inject_hyperparams) gives what the number gives.
  inj = optax.inject_hyperparams(ladam_jax.scale_by_laplacian_smoothing)(
      sigma=0.5)
  u, _ = jax.jit(inj.update)(g, inj.init(g))
  np.testing.assert_allclose(u["a"], want["a"], rtol=1e-6)


def test_aliases_are_the_chains():
  params = {"w": jnp.ones((8, 8))}
  g = {"w": jnp.asarray(np.random.default_rng(3).normal(size=(8, 8)),
                        jnp.float32)}
  for alias, chain in (
      (ladam_jax.lsadam(1e-2, sigma=2.0),
       optax.chain(ladam_jax.scale_by_laplacian_smoothing(2.0),
                   optax.adam(1e-2))),
      (ladam_jax.lssgd(1e-2, momentum=0.9, sigma=2.0),
       optax.chain(ladam_jax.scale_by_laplacian_smoothing(2.0),
                   optax.sgd(1e-2, 0.9)))):
    sa, sc = alias.init(params), chain.init(params)
    for _ in range(3):
      ua, sa = alias.update(g, sa, params)
      uc, sc = chain.update(g, sc, params)
      np.testing.assert_array_equal(ua["w"], uc["w"])


@pytest.mark.parametrize("kwargs, message", [
    ({"sigma": -1.0}, "sigma"),
    ({"stencil": "7point"}, "stencil"),
    ({"flatten": 1}, "flatten"),
    ({"min_spatial_size": -2}, "min_spatial_size"),
    ({"method": "cg"}, "method"),
])
def test_bad_arguments_fail_at_construction(kwargs, message):
  with pytest.raises(ValueError, match=message):
    ladam_jax.scale_by_laplacian_smoothing(**kwargs)


@pytest.mark.slow
@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(
    shape=st.sampled_from([(16,), (5, 7), (3, 3, 2, 4), (4, 8, 3)]),
    dtype=st.sampled_from(["float32", "bfloat16", "float16"]),
    sigma=st.floats(0.0, 1e4),
    flatten=st.booleans(),
    seed=st.integers(0, 2**16))
def test_property_damps_every_mode_and_keeps_the_mean(shape, dtype, sigma,
                                                      flatten, seed):
  """Multipliers in (0, 1]: the norm never grows, the sum is kept, the
  dtype and shape are kept, never a NaN, for any sigma >= 0."""
  g = jnp.asarray(np.random.default_rng(seed).normal(size=shape), dtype)
  tx = ladam_jax.scale_by_laplacian_smoothing(sigma, flatten=flatten,
                                              min_spatial_size=0)
  u, _ = tx.update({"w": g}, tx.init({"w": g}))
  u = u["w"]
  assert u.dtype == g.dtype and u.shape == g.shape
  u32, g32 = np.asarray(u, np.float32), np.asarray(g, np.float32)
  assert np.all(np.isfinite(u32))
  tol = 1e-5 if dtype == "float32" else 1e-2
  assert np.linalg.norm(u32) <= np.linalg.norm(g32) * (1 + tol) + tol
  np.testing.assert_allclose(u32.sum(), g32.sum(),
                             atol=tol * (1 + np.abs(g32).sum()))


def test_implicit_variance_adam():
  """target='nu': Adam's v̂ through the solve, v̂ ≥ 0 kept; sigma = 0 is
  Adam exactly; the step differs from Adam's only where v̂ varies."""
  params = {"w": jnp.zeros((8, 8)), "b": jnp.zeros(4)}
  rng = np.random.default_rng(5)
  grads = [{"w": jnp.asarray(rng.normal(size=(8, 8)), jnp.float32),
            "b": jnp.asarray(rng.normal(size=4), jnp.float32)}
           for _ in range(3)]
  adam = optax.adam(1e-2)
  zero = ladam_jax.lsadam(1e-2, sigma=0.0, target="nu")
  sa, sz = adam.init(params), zero.init(params)
  for g in grads:
    ua, sa = adam.update(g, sa)
    uz, sz = zero.update(g, sz)
    # (bias correction in double precision here, float32 in optax)
    np.testing.assert_allclose(uz["w"], ua["w"], rtol=1e-4)
  tx = ladam_jax.scale_by_implicit_laplacian_adam(2.0)
  state = tx.init(params)
  for g in grads:
    u, state = jax.jit(tx.update)(g, state)
  assert isinstance(state, optax.ScaleByAdamState)
  # By hand: v̂ smoothed by the plain transform, then Adam's division.
  v_hat = jax.tree.map(lambda v: v / (1 - 0.999 ** 3), state.nu)
  m_hat = jax.tree.map(lambda m: m / (1 - 0.9 ** 3), state.mu)
  smooth = ladam_jax.scale_by_laplacian_smoothing(2.0)
  v_s, _ = smooth.update(v_hat, smooth.init(v_hat))
  want = m_hat["w"] / (jnp.sqrt(jnp.maximum(v_s["w"], 0)) + 1e-8)
  np.testing.assert_allclose(u["w"], want, rtol=1e-4)
  np.testing.assert_allclose(u["b"], m_hat["b"] / (jnp.sqrt(v_hat["b"])
                                                   + 1e-8), rtol=1e-4)
  # A huge sigma: v̂ flattened to its mean, never negative, never NaN.
  big = ladam_jax.scale_by_implicit_laplacian_adam(1e6)
  u, _ = big.update(grads[0], big.init(params))
  assert np.all(np.isfinite(u["w"]))
  with pytest.raises(ValueError, match="target"):
    ladam_jax.lsadam(1e-3, target="v")
