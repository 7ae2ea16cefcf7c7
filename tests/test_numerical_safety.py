"""Numerical safety: where Adam's update is finite, the Laplacian version's is.

The stencil reads every neighbour of an entry, so one overflowed g² (inf), a
NaN gradient or sums past the dtype's largest value could reach the whole
neighbourhood (inf - inf = NaN) and, through the state, stay. The rules
(``ladam_jax._coupling.smoothed``): half-precision leaves are smoothed in
float32; an entry where ``v + c2·L(v)`` is not finite is left unsmoothed (its
update is Adam's); the wave mode's E0 is the mean over finite entries and its
leapfrog saturates instead of overflowing.
"""

import math

import hypothesis
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ladam_jax
from _helpers import enable_x64, scale_by_mode

SETTINGS = dict(deadline=None, derandomize=True)

DTYPES = ("float16", "bfloat16", "float32", "float64")
# Shapes whose fields are 2-D (a dense kernel, a Flax conv kernel) and 1-D.
SHAPES = ((8, 8), (5, 7), (3, 3, 4, 6), (17,))


def _field_weight(shape, stencil):
  """W: the sum of the stencil's off-centre weights on this leaf's field."""
  if len(shape) == 1:
    return 2.0
  return 20 / 6 if stencil == "9point" else 4.0


def _bound(stencil):
  """The largest c2 a transform accepts (the 2-D bound, below the 1-D one)."""
  return ladam_jax.stability_bound(stencil, 2)


def _gradients(shape, dtype, seed, log_scale, spikes):
  """Normal gradients times 10**log_scale, ``spikes`` (value factors) put at
  random entries: factors of sqrt(max) (g² near and past overflow) and of
  max itself."""
  rng = np.random.default_rng(seed)
  g = rng.standard_normal(shape) * 10.0 ** log_scale
  big = float(jnp.finfo(dtype).max)
  flat = g.reshape(-1)
  for factor, where in spikes:
    idx = int(where * flat.size) % flat.size
    flat[idx] = math.copysign(
        min(factor * math.sqrt(big), 0.5 * big), rng.standard_normal())
  return jnp.asarray(g, dtype)


def _run(tx, grads_list, params):
  state = tx.init(params)
  outs = []
  for g in grads_list:
    u, state = tx.update({"w": g}, state, params)
    outs.append(np.asarray(u["w"], np.float64))
  return outs


spike = st.tuples(st.sampled_from([0.3, 0.9, 1.1, 3.0, 1e6]),
                  st.floats(0.0, 0.999))


@pytest.mark.slow
@hypothesis.settings(**SETTINGS, max_examples=20)
@hypothesis.given(
    dtype=st.sampled_from(DTYPES), shape=st.sampled_from(SHAPES),
    stencil=st.sampled_from(["9point", "5point"]),
    kind=st.sampled_from(["variance_lap", "update_lap", "wave_variance",
                          "weight_lap", "rms", "adagrad", "laprop"]),
    floor=st.sampled_from(["eps", 0.0]),
    c2_fraction=st.sampled_from([1e-9, 1e-4, 0.1, 0.999, 1.0]),
    log_scale=st.integers(-4, 2), seed=st.integers(0, 2**16),
    spikes=st.lists(spike, min_size=1, max_size=3),
    later_spikes=st.lists(spike, max_size=2))
def test_adam_finite_implies_laplacian_finite(
    dtype, shape, stencil, kind, floor, c2_fraction, log_scale, seed, spikes,
    later_spikes):
  """Per entry, over three steps (spikes in the first and third): where the
  plain optimizer's update is finite the Laplacian one's is too, for tiny to
  maximal c2. And the step does not explode: within the stability bound the
  smoothed variance is at least (1 - c2·W) times the entry's own, so the
  update is at most 1/sqrt(1 - c2·W) times Adam's in exact arithmetic (the
  reference Adam here runs in float64 on the same gradients)."""
  with enable_x64(True):
    c2 = c2_fraction * _bound(stencil)
    grads = [_gradients(shape, dtype, seed, log_scale, spikes),
             _gradients(shape, dtype, seed + 1, log_scale, []),
             _gradients(shape, dtype, seed + 2, log_scale, later_spikes)]
    params = {"w": jnp.asarray(
        np.random.default_rng(seed).standard_normal(shape), dtype)}
    common = dict(c2=c2, stencil=stencil, min_spatial_size=0)
    if kind in ("rms", "adagrad"):
      make = {"rms": ladam_jax.scale_by_laplacian_rms,
              "adagrad": ladam_jax.scale_by_laplacian_adagrad}[kind]
      lap, plain = make(**common), make(**dict(common, c2=0.0))
      reference = plain
    elif kind == "laprop":
      lap = ladam_jax.scale_by_laplacian_laprop(variance_floor=floor,
                                                **common)
      plain = ladam_jax.scale_by_laplacian_laprop(c2=0.0)
      reference = plain
    elif kind == "weight_lap":
      lap = ladam_jax.ladam(1.0, mode=kind, **common)
      plain = reference = optax.adam(1.0)
    else:
      floors = {} if kind == "wave_variance" else {"variance_floor": floor}
      lap = scale_by_mode(kind, **floors, **common)
      plain = reference = optax.scale_by_adam()
    got = _run(lap, grads, params)
    adam = _run(plain, grads, params)
    exact = _run(reference, [g.astype(jnp.float64) for g in grads],
                 jax.tree.map(lambda p: p.astype(jnp.float64), params))
  for step, (u, a) in enumerate(zip(got, adam)):
    finite = np.isfinite(a)
    assert np.isfinite(u[finite]).all(), (step, u, a)
  if kind in ("wave_variance", "weight_lap", "laprop"):
    return  # not Adam's step with another variance: finiteness only
  # Bounds against the larger of exact Adam's step and Adam's own in this
  # dtype (in float16, Adam's v̂ of a gradient below 2e-4 underflows).
  half = dtype in ("float16", "bfloat16")
  rtol, atol = (2e-2, 1e-3) if half else (1e-4, 1e-9)
  growth = 1 / math.sqrt(1 - c2 * _field_weight(shape, stencil))
  for step, (u, a, e) in enumerate(zip(got, adam, exact)):
    ok = np.isfinite(a) & np.isfinite(e)
    step_size = np.where(ok, np.maximum(np.abs(a), np.abs(e)), 0.0)
    if kind == "update_lap":  # a convex combination of Adam's updates
      limit = np.max(step_size)
    else:
      limit = step_size * growth
    assert np.all(np.abs(u[ok]) <= (limit * (1 + rtol) + atol)[ok]
                  if np.ndim(limit) else
                  np.abs(u[ok]) <= limit * (1 + rtol) + atol), step


@pytest.mark.parametrize("mode", ["variance_lap", "update_lap",
                                  "wave_variance", "weight_lap"])
def test_float16_gradient_of_900_gives_a_finite_update(mode):
  """The issue's case: g² = 8.1e5 overflows float16 (Adam's update there is
  0); before, the stencil made all 64 entries NaN."""
  params = {"w": jnp.zeros((8, 8), jnp.float16)}
  grads = {"w": jnp.full((8, 8), 0.01, jnp.float16).at[3, 3].set(900.0)}
  tx = ladam_jax.ladam(1e-3, c2=1e-3, mode=mode, min_spatial_size=0)
  u, _ = tx.update(grads, tx.init(params), params)
  adam, _ = optax.adam(1e-3).update(grads, optax.adam(1e-3).init(params))
  assert u["w"].dtype == jnp.float16
  assert np.isfinite(np.asarray(u["w"], np.float32)).all()
  if mode != "update_lap" and mode != "weight_lap":
    assert float(u["w"][3, 3]) == float(adam["w"][3, 3]) == 0.0


@pytest.mark.parametrize("g_max", [1.1e19, 2e19, 1e30])
def test_float32_huge_gradient_gives_a_finite_bounded_update(g_max):
  """1.1e19 with b2 = 0: v = 1.2e38, the 9-point sums (-20/6·v) overflow;
  2e19 and 1e30: g² overflows. The update is finite and no larger than
  Adam's (times 1/sqrt(1 - c2·W) for the smoothing, here 1.002)."""
  params = {"w": jnp.zeros((8, 8))}
  grads = {"w": jnp.full((8, 8), 0.01).at[3, 3].set(g_max)}
  for make in (ladam_jax.scale_by_laplacian_adam, optax.scale_by_adam):
    kwargs = dict(c2=1e-3, min_spatial_size=0) if make != optax.scale_by_adam \
        else {}
    tx = make(b2=0.0, **kwargs)
    u, _ = tx.update(grads, tx.init(params))
    if make == optax.scale_by_adam:
      adam = np.asarray(u["w"])
    else:
      got = np.asarray(u["w"])
  assert np.isfinite(got).all()
  assert np.all(np.abs(got) <= np.abs(adam) * 1.002 + 1e-7)
  for tx in (ladam_jax.lrmsprop(1e-3, c2=1e-3, min_spatial_size=0),
             ladam_jax.ladagrad(1e-3, c2=1e-3, min_spatial_size=0)):
    u, _ = tx.update(grads, tx.init(params), params)
    assert np.isfinite(u["w"]).all()


def _neighbours(x):
  return np.asarray(x)[2:5, 2:5].reshape(-1)[[0, 1, 2, 3, 5, 6, 7, 8]]


@pytest.mark.parametrize("mode", ["variance_lap", "wave_variance"])
@pytest.mark.parametrize("spike", [jnp.inf, jnp.nan, 1e20])
def test_one_non_finite_entry_does_not_freeze_or_poison_the_leaf(mode, spike):
  """One step with an inf / NaN gradient entry (or a finite one whose g²
  overflows), then 100 clean steps: the entry does what it does in Adam
  (an infinite second moment stays infinite: update 0, or NaN), every other
  entry stays finite and moves; the neighbours are left unsmoothed, so under
  variance_lap they take Adam's step exactly."""
  params = {"w": jnp.zeros((8, 8))}
  rng = np.random.default_rng(0)
  clean = [{"w": jnp.asarray(0.01 + 0.001 * rng.standard_normal((8, 8)),
                             jnp.float32)} for _ in range(101)]
  first = {"w": clean[0]["w"].at[3, 3].set(spike)}
  tx = scale_by_mode(mode, c2=1e-2, min_spatial_size=0)
  adam = optax.scale_by_adam()
  states = tx.init(params), adam.init(params)
  for g in [first] + clean[1:]:
    (u, s), (a, sa) = tx.update(g, states[0]), adam.update(g, states[1])
    states = s, sa
  u, a = np.asarray(u["w"]), np.asarray(a["w"])
  rest = np.ones((8, 8), bool)
  rest[3, 3] = False
  assert np.isfinite(u[rest]).all() and np.all(np.abs(u[rest]) > 0.5)
  assert np.isnan(u[3, 3]) == np.isnan(a[3, 3])
  if not np.isnan(a[3, 3]):
    assert u[3, 3] == a[3, 3] == 0.0
  if mode == "variance_lap":
    np.testing.assert_allclose(_neighbours(u), _neighbours(a), rtol=1e-5)
  nu = np.asarray(optax.tree.get(states[0], "nu")["w"])
  assert np.isfinite(nu[rest]).all()


def test_stencil_overflow_from_finite_values_leaves_the_entry_unsmoothed():
  """v within a few times float32's largest value: the 9-point sums
  overflow; those entries take the unsmoothed value, the others the plain
  formula's, bit for bit."""
  from ladam_jax import _coupling, _laplacian, _layout  # pylint: disable=g-import-not-at-top
  v = jnp.full((6, 6), 1.0).at[2, 2].set(3e38)
  leaf = _coupling.LeafCoupling(_layout.field_spec((6, 6), "flax"), 0.1, True)
  out = np.asarray(_coupling.smoothed(v, leaf, "9point", "flat"))
  assert np.isfinite(out).all()
  assert out[2, 2] == np.float32(3e38)  # -20/6 · 3e38 overflows: unsmoothed
  with _laplacian.using_impl("flat"):
    plain = np.asarray(v + 0.1 * ladam_jax.laplacian(v))
  ok = np.isfinite(plain)
  np.testing.assert_array_equal(out[ok], plain[ok])


def test_apply_if_finite_still_protects_the_state():
  """With optax.apply_if_finite a NaN gradient skips the step: the state is
  untouched (the inner optimizer never sees it)."""
  params = {"w": jnp.zeros((8, 8))}
  tx = optax.apply_if_finite(ladam_jax.ladam(1e-3, c2=1e-3), 3)
  state = tx.init(params)
  good = {"w": jnp.ones((8, 8))}
  _, state = tx.update(good, state, params)
  before = state.inner_state
  u, state = tx.update({"w": good["w"].at[0, 0].set(jnp.nan)}, state, params)
  assert np.all(np.asarray(u["w"]) == 0)
  assert int(state.notfinite_count) == 1
  jax.tree.map(np.testing.assert_array_equal, state.inner_state, before)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_leaves_are_smoothed_in_float32(dtype):
  """The smoothed variance of a half-precision leaf is the float32 one,
  rounded once. With b2 = 0, v = g² = 4e4 is a float16 number but
  -20/6·v is not: smoothed in float16, that entry's step exploded."""
  params = {"w": jnp.zeros((8, 8), dtype)}
  g = np.full((8, 8), 1.0, np.float32)
  g[4, 4] = 200.0
  grads = {"w": jnp.asarray(g, dtype)}
  tx = ladam_jax.scale_by_laplacian_adam(b2=0.0, c2=0.1, min_spatial_size=0)
  u, _ = tx.update(grads, tx.init(params))
  u32, _ = tx.update({"w": grads["w"].astype(jnp.float32)},
                     tx.init(jax.tree.map(lambda p: p.astype(jnp.float32),
                                          params)))
  assert u["w"].dtype == dtype
  np.testing.assert_allclose(np.asarray(u["w"], np.float32), u32["w"],
                             rtol=1e-2)
