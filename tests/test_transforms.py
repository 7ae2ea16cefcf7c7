"""Transforms and aliases: Optax equivalences, composition, specs, validation."""

import hypothesis
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ladam_jax
from ladam_jax import _laplacian
from _helpers import enable_x64, scale_by_mode, xla_kernels


def make_params(dtype=jnp.float32, seed=0):
  k = jax.random.split(jax.random.key(seed), 4)
  return {
      "conv": {"kernel": jax.random.normal(k[0], (3, 3, 4, 8), dtype) * 0.3,
               "bias": jnp.zeros((8,), dtype)},
      "dense": {"kernel": jax.random.normal(k[1], (24, 16), dtype) * 0.3,
                "bias": jax.random.normal(k[2], (16,), dtype) * 0.1},
      "scale": jnp.ones((), dtype),
  }


def loss_fn(params, x):
  """A smooth, well-conditioned loss whose gradients depend on the batch."""
  w = 1.0 + 0.5 * jnp.tanh(jnp.mean(x, axis=0))  # (32,) batch weights
  total = 0.0
  for i, p in enumerate(jax.tree.leaves(params)):
    flat = p.reshape(-1).astype(jnp.float32)
    weights = jnp.resize(w, flat.shape) * (1.0 + 0.1 * i)
    total = total + jnp.mean(weights * (flat - jnp.sin(jnp.arange(flat.size))) ** 2)
  return total


def batch(t, n=8):
  return jax.random.normal(jax.random.key(100 + t), (n, 32), jnp.float32)


# Jitted once: eagerly, loss_fn's many small ops cost seconds to dispatch.
grad_fn = jax.jit(jax.grad(loss_fn))


def train(opt, params, steps=30, jit=True):
  def step(params, state, x):
    grads = jax.grad(loss_fn)(params, x)
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state
  step = jax.jit(step) if jit else step
  state = opt.init(params)
  for t in range(steps):
    params, state = step(params, state, batch(t))
  return params, state


def assert_trees_close(a, b, rtol, atol=0.0):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x, np.float64),
                               np.asarray(y, np.float64), rtol=rtol, atol=atol)


def max_rel(a, b):
  """max over leaves of ||a - b||_inf / ||b||_inf, in NumPy float64."""
  worst = 0.0
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    worst = max(worst, np.max(np.abs(x - y)) / (np.max(np.abs(y)) + 1e-30))
  return float(worst)


# --- equivalences with Optax -------------------------------------------------


def as64(tree):
  return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


@pytest.mark.parametrize("mode", ["variance_lap", "update_lap", "weight_lap"])
def test_c2_zero_is_optax_adam(mode):
  # Same algorithm: in float64 the trajectories agree to rounding.
  with enable_x64(True):
    ours64, _ = train(ladam_jax.ladam(1e-2, c2=0.0, mode=mode),
                      as64(make_params()))
    ref64, _ = train(optax.adam(1e-2), as64(make_params()))
    ours64, ref64 = as64(ours64), as64(ref64)
  assert max_rel(ours64, ref64) <= 1e-12
  # In float32, optax computes 1 - b2**t in float32, where 0.999 is stored as
  # 0.99900001 (1.3e-5 relative error in the bias correction); ladam_jax
  # takes it in double precision like PyTorch. Both stay within 2e-5 of each
  # other, and ladam_jax is the closer of the two to the float64 trajectory.
  ours, _ = train(ladam_jax.ladam(1e-2, c2=0.0, mode=mode), make_params())
  ref, _ = train(optax.adam(1e-2), make_params())
  assert max_rel(ours, ref) <= 2e-5
  assert max_rel(as64(ours), ref64) < max_rel(as64(ref), ref64)
  assert max_rel(as64(ours), ref64) <= 1e-6


def test_c2_zero_ladamw_is_optax_adamw():
  ours, _ = train(ladam_jax.ladamw(1e-2, weight_decay=0.1, c2=0.0),
                  make_params())
  ref, _ = train(optax.adamw(1e-2, weight_decay=0.1), make_params())
  assert max_rel(ours, ref) <= 2e-5  # bias correction: see above


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_c2_zero_lrmsprop_is_optax_rmsprop(momentum):
  ours, _ = train(ladam_jax.lrmsprop(1e-3, momentum=momentum, c2=0.0),
                  make_params())
  ref, _ = train(optax.rmsprop(1e-3, decay=0.99, momentum=momentum or None,
                               eps_in_sqrt=False), make_params())
  assert max_rel(ours, ref) <= 1e-6


def test_coupling_changes_the_update():
  a, _ = train(ladam_jax.ladam(1e-2, c2=0.05), make_params(), steps=5)
  b, _ = train(ladam_jax.ladam(1e-2, c2=0.0), make_params(), steps=5)
  assert max_rel(a["dense"]["kernel"], b["dense"]["kernel"]) > 1e-4
  # the 0-d leaf is never smoothed
  np.testing.assert_allclose(a["scale"], b["scale"], rtol=1e-6)


def test_min_spatial_size_skips_small_leaves():
  a, _ = train(ladam_jax.ladam(1e-2, c2=0.05, min_spatial_size=300),
               make_params(), steps=5)
  b, _ = train(ladam_jax.ladam(1e-2, c2=0.0), make_params(), steps=5)
  # conv kernel (288 elements) and biases are skipped; dense (384) is not
  np.testing.assert_allclose(a["conv"]["kernel"], b["conv"]["kernel"],
                             rtol=1e-6)
  assert max_rel(a["dense"]["kernel"], b["dense"]["kernel"]) > 1e-4


# --- composition ---------------------------------------------------------------


def test_chain_with_clipping_and_schedule():
  sched = optax.warmup_cosine_decay_schedule(0.0, 1e-2, 5, 30)
  opt = optax.chain(optax.clip_by_global_norm(0.1),
                    ladam_jax.ladamw(sched, weight_decay=1e-2, c2=1e-3))
  params, _ = train(opt, make_params())
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(params))
  # equals the same chain built by hand
  manual = optax.chain(
      optax.clip_by_global_norm(0.1),
      ladam_jax.scale_by_laplacian_adam(c2=1e-3),
      optax.add_decayed_weights(1e-2), optax.scale_by_learning_rate(sched))
  ref, _ = train(manual, make_params())
  assert_trees_close(params, ref, rtol=0, atol=0)


@pytest.mark.parametrize("factory, kwargs", [
    (ladam_jax.lrmsprop, {}), (ladam_jax.ladagrad, {}), (ladam_jax.ladamw, {}),
    (ladam_jax.vradam, {})])
def test_inject_hyperparams_with_default_zero_stages_under_jit(factory, kwargs):
  """momentum / lr_decay / weight_decay of 0 arrive as arrays from
  inject_hyperparams: concrete in init, traced in a jitted update; both must
  build the same chain."""
  tx = optax.inject_hyperparams(factory)(1e-2, c2=1e-3, **kwargs)
  params = make_params()
  state = tx.init(params)
  updates, _ = jax.jit(tx.update)(params, state, params)
  assert all(np.all(np.isfinite(u)) for u in jax.tree.leaves(updates))


@pytest.mark.slow
def test_multi_steps_accumulates():
  opt = optax.MultiSteps(ladam_jax.ladam(1e-2, c2=1e-3), every_k_schedule=3)
  params = make_params()
  state = opt.init(params)
  grads = grad_fn(params, batch(0))
  update = jax.jit(opt.update)
  for i in range(3):
    updates, state = update(grads, state, params)
    moved = any(np.any(u != 0) for u in jax.tree.leaves(updates))
    assert moved == (i == 2)
  inner = ladam_jax.ladam(1e-2, c2=1e-3)
  ref, _ = inner.update(grads, inner.init(params), params)
  assert_trees_close(updates, ref, rtol=1e-6)


@pytest.mark.slow
def test_apply_if_finite_skips_nan_steps():
  opt = optax.apply_if_finite(ladam_jax.ladam(1e-2, c2=1e-3), 3)
  params = make_params()
  state = opt.init(params)
  bad = jax.tree.map(lambda p: jnp.full_like(p, jnp.nan), params)
  updates, state = opt.update(bad, state, params)
  assert all(np.all(u == 0) for u in jax.tree.leaves(updates))
  assert int(state.notfinite_count) == 1
  good = grad_fn(params, batch(0))
  updates, state = opt.update(good, state, params)
  assert all(np.all(np.isfinite(u)) for u in jax.tree.leaves(updates))


@pytest.mark.slow
def test_masked_and_partition():
  params = make_params()
  labels = {"conv": {"kernel": "lap", "bias": "adam"},
            "dense": {"kernel": "lap", "bias": "adam"}, "scale": "adam"}
  opt = optax.partition({"lap": ladam_jax.ladam(1e-2, c2=0.05),
                         "adam": optax.adam(1e-2)}, labels)
  part, _ = train(opt, params, steps=5)
  mask = jax.tree.map(lambda l: l == "lap", labels)
  masked = optax.chain(optax.masked(ladam_jax.ladam(1e-2, c2=0.05), mask),
                       optax.masked(optax.adam(1e-2),
                                    jax.tree.map(lambda m: not m, mask)))
  msk, _ = train(masked, params, steps=5)
  assert_trees_close(part, msk, rtol=1e-6)
  full, _ = train(ladam_jax.ladam(1e-2, c2=0.05), params, steps=5)
  assert_trees_close(part["dense"]["kernel"], full["dense"]["kernel"],
                     rtol=1e-6)


@pytest.mark.slow
def test_inject_hyperparams_c2_is_live():
  opt = optax.inject_hyperparams(ladam_jax.ladam)(learning_rate=1e-2, c2=0.05)
  params = make_params()
  state = opt.init(params)
  grads = grad_fn(params, batch(0))
  step = jax.jit(opt.update)
  u1, _ = step(grads, state, params)
  state.hyperparams["c2"] = jnp.asarray(0.0)
  u0, _ = step(grads, state, params)
  adam = optax.adam(1e-2)
  ref, _ = adam.update(grads, adam.init(params), params)
  assert_trees_close(u0, ref, rtol=2e-5)
  assert max_rel(u1["dense"]["kernel"], u0["dense"]["kernel"]) > 1e-4
  # matches the non-injected optimizer
  plain = ladam_jax.ladam(1e-2, c2=0.05)
  ref1, _ = plain.update(grads, plain.init(params), params)
  assert_trees_close(u1, ref1, rtol=1e-6, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("factory, kwargs", [
    (ladam_jax.ladam, dict(learning_rate=1e-2, b1=0.8, c2=0.05,
                           min_spatial_size=10, eps=1e-7)),
    (ladam_jax.ladam, dict(learning_rate=1e-2, c2=0.05, mode="wave_variance",
                           wave_dt=0.2)),
    (ladam_jax.ladamw, dict(learning_rate=1e-2, weight_decay=0.1, c2=0.05,
                            mode="weight_lap")),
    (ladam_jax.lrmsprop, dict(learning_rate=1e-2, momentum=0.5, c2=0.05,
                              weight_decay=0.1)),
    (ladam_jax.ladagrad, dict(learning_rate=1e-2, lr_decay=0.1, c2=0.05,
                              weight_decay=0.1)),
])
def test_inject_hyperparams_matches_plain(factory, kwargs):
  injected, _ = train(optax.inject_hyperparams(factory)(**kwargs),
                      make_params(), steps=5)
  plain, _ = train(factory(**kwargs), make_params(), steps=5)
  assert max_rel(injected, plain) <= 1e-6


@pytest.mark.slow
def test_vmap_over_a_batch_of_models():
  opt = ladam_jax.ladam(1e-2, c2=0.05)
  stacked = jax.tree.map(lambda *x: jnp.stack(x),
                         *[make_params(seed=s) for s in range(3)])
  grads = jax.vmap(lambda p: jax.grad(loss_fn)(p, batch(0)))(stacked)
  states = jax.vmap(opt.init)(stacked)
  updates, _ = jax.jit(jax.vmap(opt.update))(grads, states, stacked)
  for s in range(3):
    p = make_params(seed=s)
    g = grad_fn(p, batch(0))
    ref, _ = opt.update(g, opt.init(p), p)
    assert_trees_close(jax.tree.map(lambda u: u[s], updates), ref,
                       rtol=1e-5, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["variance_lap", "update_lap", "weight_lap",
                                  "wave_variance"])
def test_bfloat16_params_keep_dtypes(mode):
  params = make_params(jnp.bfloat16)
  opt = ladam_jax.ladamw(1e-2, c2=0.05, mode=mode)
  state = opt.init(params)
  grads = grad_fn(params, batch(0).astype(jnp.bfloat16))
  updates, new_state = jax.jit(opt.update)(grads, state, params)
  for u in jax.tree.leaves(updates):
    assert u.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(u)))
  for old, new in zip(jax.tree.leaves(state), jax.tree.leaves(new_state)):
    assert old.dtype == new.dtype and old.shape == new.shape


def test_mu_dtype():
  opt = ladam_jax.ladam(1e-2, c2=0.05, mu_dtype=jnp.bfloat16)
  params = make_params()
  state = opt.init(params)
  grads = grad_fn(params, batch(0))
  updates, state = opt.update(grads, state, params)
  adam_state = state[0]
  assert all(m.dtype == jnp.bfloat16 for m in jax.tree.leaves(adam_state.mu))
  assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(adam_state.nu))
  assert all(u.dtype == jnp.float32 for u in jax.tree.leaves(updates))


def test_no_retrace_between_steps():
  traces = []
  opt = ladam_jax.ladam(optax.cosine_decay_schedule(1e-2, 10),
                        c2=optax.linear_schedule(0.0, 1e-3, 10))

  @jax.jit
  def step(params, state, x):
    traces.append(1)
    grads = jax.grad(loss_fn)(params, x)
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  params = make_params()
  state = opt.init(params)
  for t in range(4):
    params, state = step(params, state, batch(t))
  assert len(traces) == 1


def test_state_is_adams_size():
  params = make_params()
  ours = ladam_jax.scale_by_laplacian_adam().init(params)
  ref = optax.scale_by_adam().init(params)
  size = lambda t: sum(x.nbytes for x in jax.tree.leaves(t))
  assert size(ours) == size(ref)


# --- c2 specifications ---------------------------------------------------------


def test_c2_schedule_follows_the_count():
  sched = lambda count: jnp.where(count < 2, 0.0, 0.05)
  params = make_params()
  grads = grad_fn(params, batch(0))
  tx = ladam_jax.scale_by_laplacian_adam(c2=sched)
  adam = ladam_jax.scale_by_laplacian_adam(c2=0.0)
  lap = ladam_jax.scale_by_laplacian_adam(c2=0.05)
  s, s0, s1 = tx.init(params), adam.init(params), lap.init(params)
  for t in range(3):
    u, s = tx.update(grads, s)
    u0, s0 = adam.update(grads, s0)
    u1, s1 = lap.update(grads, s1)
  assert_trees_close(u, u1, rtol=1e-6)  # third step (count 2) is coupled
  assert max_rel(u["dense"]["kernel"], u0["dense"]["kernel"]) > 1e-5


def _updates(c2, params=None, **kw):
  params = make_params() if params is None else params
  grads = grad_fn(params, batch(0))
  tx = ladam_jax.scale_by_laplacian_adam(c2=c2, **kw)
  return tx.update(grads, tx.init(params))[0]


def test_c2_pytree_prefix_callable_and_by_path_agree():
  per_subtree = {"conv": 0.05, "dense": 0.0, "scale": 0.0}
  a = _updates(per_subtree)
  b = _updates(ladam_jax.per_leaf(
      lambda p: {"conv": 0.05, "dense": 0.0, "scale": 0.0}))
  c = _updates(ladam_jax.c2_by_path({r"^conv/": 0.05}, default=0.0))
  d = _updates({"conv": {"kernel": 0.05, "bias": 0.05},
                "dense": {"kernel": 0.0, "bias": 0.0}, "scale": 0.0})
  for other in (b, c, d):
    assert_trees_close(a, other, rtol=0, atol=0)
  full = _updates(0.05)
  zero = _updates(0.0)
  assert_trees_close(a["conv"], full["conv"], rtol=0, atol=0)
  assert_trees_close(a["dense"], zero["dense"], rtol=0, atol=0)


def test_c2_pytree_may_hold_schedules():
  a = _updates({"conv": optax.constant_schedule(0.05), "dense": 0.0,
                "scale": 0.0})
  b = _updates({"conv": 0.05, "dense": 0.0, "scale": 0.0})
  assert_trees_close(a, b, rtol=0, atol=0)


def test_c2_pytree_with_wrong_structure_raises():
  with pytest.raises(ValueError, match="prefix"):
    _updates({"conv": 0.05})


def test_layout_per_subtree():
  torch_layout = {"conv": "torch", "dense": "flax", "scale": "flax"}
  a = _updates(0.05, layout=torch_layout)
  b = _updates(0.05, layout="flax")
  assert max_rel(a["conv"]["kernel"], b["conv"]["kernel"]) > 1e-6
  assert_trees_close(a["dense"], b["dense"], rtol=0, atol=0)
  c = _updates(0.05, layout=lambda p: jax.tree.map(lambda _: None, p))
  assert_trees_close(c, _updates(0.0), rtol=0, atol=0)


# --- weight_lap ----------------------------------------------------------------


def test_weight_lap_is_adam_then_weight_diffusion():
  params = make_params()
  grads = grad_fn(params, batch(0))
  opt = ladam_jax.ladam(1e-2, c2=0.05, mode="weight_lap")
  updates, _ = opt.update(grads, opt.init(params), params)
  adam = optax.adam(1e-2)
  au, _ = adam.update(grads, adam.init(params), params)
  stepped = optax.apply_updates(params, au)
  k = stepped["dense"]["kernel"]
  expected = k + 0.05 * ladam_jax.laplacian(k)
  got = optax.apply_updates(params, updates)["dense"]["kernel"]
  np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-6)


def test_add_weight_laplacian_needs_params():
  tx = ladam_jax.add_weight_laplacian(1e-3)
  params = make_params()
  with pytest.raises(ValueError, match="params"):
    tx.update(params, tx.init(params))


# --- validation ------------------------------------------------------------------


@pytest.mark.parametrize("factory, kwargs, match", [
    (ladam_jax.ladam, dict(learning_rate=-1.0), "learning_rate"),
    (ladam_jax.ladam, dict(eps=-1e-8), "eps"),
    (ladam_jax.ladam, dict(b1=1.0), "b1"),
    (ladam_jax.ladam, dict(b2=-0.1), "b2"),
    (ladam_jax.ladam, dict(c2=-1e-4), "c2"),
    (ladam_jax.ladam, dict(c2=float("nan")), "c2"),
    (ladam_jax.ladam, dict(c2={"a": -1.0}), "c2"),
    (ladam_jax.ladam, dict(mode="adam"), "mode"),
    (ladam_jax.ladam, dict(stencil="3point"), "stencil"),
    (ladam_jax.ladam, dict(layout="keras"), "layout"),
    (ladam_jax.ladam, dict(min_spatial_size=-1), "min_spatial_size"),
    (ladam_jax.ladam, dict(variance_floor=-1.0), "variance_floor"),
    (ladam_jax.ladam, dict(mode="wave_variance", wave_damping=2.0),
     "wave_damping"),
    (ladam_jax.ladamw, dict(weight_decay=-0.1), "weight_decay"),
    (ladam_jax.lrmsprop, dict(decay=1.5), "decay"),
    (ladam_jax.lrmsprop, dict(momentum=-0.5), "momentum"),
    (ladam_jax.ladagrad, dict(lr_decay=-1.0), "lr_decay"),
    (ladam_jax.ladagrad, dict(eps=-1.0), "eps"),
    (ladam_jax.scale_by_wave_variance, dict(wave_damping=1.5), "wave_damping"),
])
def test_invalid_hyperparameters_raise_at_construction(factory, kwargs, match):
  with pytest.raises(ValueError, match=match):
    factory(**kwargs)


def test_inject_hyperparams_rejects_negative_c2_at_init():
  opt = optax.inject_hyperparams(ladam_jax.ladam)(learning_rate=1e-3, c2=-1.0)
  with pytest.raises(ValueError, match="c2"):
    opt.init(make_params())


# --- robustness ------------------------------------------------------------------


@pytest.mark.slow
@hypothesis.settings(deadline=None, max_examples=8, derandomize=True)
@hypothesis.given(
    shape=st.sampled_from([(5,), (16,), (2, 40), (9, 7), (3, 3, 4, 5),
                           (1, 1), ()]),
    c2=st.sampled_from([0.0, 1e-6, 1e-3, 0.3, 10.0, 1e6]),
    mode=st.sampled_from(["variance_lap", "update_lap", "weight_lap",
                          "wave_variance"]),
    stencil=st.sampled_from(["9point", "5point"]),
    floor=st.sampled_from(["eps", 0.0]),
    gscale=st.sampled_from([0.0, 1e-20, 1.0, 1e10]),
    seed=st.integers(0, 1000))
def test_finite_gradients_give_finite_updates(shape, c2, mode, stencil, floor,
                                              gscale, seed):
  params = {"w": jax.random.normal(jax.random.key(seed), shape)}
  opt = ladam_jax.ladam(1e-3, c2=c2, mode=mode, stencil=stencil,
                        variance_floor=floor, min_spatial_size=0,
                        allow_unstable_c2=True)
  state = opt.init(params)
  for t in range(3):
    g = {"w": jax.random.normal(jax.random.key(seed + t), shape) * gscale}
    updates, state = opt.update(g, state, params)
    assert bool(jnp.all(jnp.isfinite(updates["w"])))
    params = optax.apply_updates(params, updates)


@pytest.mark.slow
@hypothesis.settings(deadline=None, max_examples=15, derandomize=True)
@hypothesis.given(
    factory=st.sampled_from([ladam_jax.lrmsprop, ladam_jax.ladagrad]),
    c2=st.sampled_from([1e-4, 0.3, 1e6]),
    gscale=st.sampled_from([0.0, 1.0, 1e10]),
    seed=st.integers(0, 1000))
def test_rms_and_adagrad_finite(factory, c2, gscale, seed):
  params = {"w": jax.random.normal(jax.random.key(seed), (9, 7))}
  opt = factory(1e-3, c2=c2, allow_unstable_c2=True)
  state = opt.init(params)
  for t in range(3):
    g = {"w": jax.random.normal(jax.random.key(seed + t), (9, 7)) * gscale}
    updates, state = opt.update(g, state, params)
    assert bool(jnp.all(jnp.isfinite(updates["w"])))


def _many_small_leaves(n=40):
  keys = jax.random.split(jax.random.key(7), n)
  tree = {f"w{i:02d}": jax.random.normal(k, (12, 10)) for i, k in enumerate(keys)}
  tree["odd"] = jax.random.normal(keys[0], (10, 12))  # its own group
  return tree


@pytest.mark.slow
@pytest.mark.parametrize("factory, kwargs", [
    (ladam_jax.ladam, {}),
    (ladam_jax.ladam, dict(mode="update_lap")),
    (ladam_jax.lrmsprop, {}),
    (ladam_jax.ladagrad, {}),
    (ladam_jax.laprop, {}),
])
def test_batched_small_leaves_match_leaf_by_leaf(factory, kwargs, monkeypatch):
  """Same-shaped small leaves are smoothed stacked (in groups of at most 8
  here: 12 leaves give a group of 8 and one of 4); per-leaf c2, a c2 of 0
  and a traced c2 must come out as leaf by leaf."""
  from ladam_jax import _coupling  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(_coupling, "BATCH_MAX_LEAVES", 8)
  params = _many_small_leaves(12)
  c2 = {k: (0.0 if k == "w03" else 1e-3 * (1 + i))
        for i, k in enumerate(params)}
  grads = jax.tree.map(lambda p: jnp.cos(3 * p), params)

  def run(tx):
    state = tx.init(params)
    update = jax.jit(tx.update)
    for _ in range(3):
      out, state = update(grads, state, params)
    return out

  # a traced c2 (inject_hyperparams) once: the stacking code is shared
  injected = factory is ladam_jax.ladam and not kwargs
  make = lambda: [factory(1e-2, c2=c2, min_spatial_size=0, **kwargs)] + (
      [optax.inject_hyperparams(factory)(1e-2, c2=0.01)] if injected else [])
  batched = [run(tx) for tx in make()]
  monkeypatch.setattr(_coupling, "BATCH_MAX_SIZE", 0)
  single = [run(tx) for tx in make()]
  for b, s in zip(batched, single):
    assert_trees_close(b, s, rtol=1e-6)
  # the pytree c2 differs per leaf (and is 0 on w03), so leaves differ
  plain = run(factory(1e-2, c2=0.0, **kwargs))
  assert np.allclose(batched[0]["w03"], plain["w03"], rtol=1e-6)
  assert not np.allclose(batched[0]["w00"], plain["w00"], rtol=1e-4)


@pytest.mark.slow
def test_batching_compiles_the_stencil_once_per_group(monkeypatch):
  from ladam_jax import _coupling  # pylint: disable=g-import-not-at-top
  params = _many_small_leaves()

  def slices():  # a new transform each time: jit caches by function
    tx = ladam_jax.scale_by_laplacian_adam(c2=1e-3, min_spatial_size=0)
    hlo = jax.jit(tx.update).lower(params, tx.init(params)).compile().as_text()
    return hlo.count(" slice(")

  batched = slices()
  monkeypatch.setattr(_coupling, "BATCH_MAX_SIZE", 0)
  assert batched * 4 < slices()


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU fusion")
def test_flat_update_runs_as_many_kernels_as_adam():
  """On CPU the run time of a tree of small leaves is set by its number of
  XLA kernels (a few µs each, the same per output buffer for Adam and LAdam):
  the 'flat' stencil must fuse into the update's loops, not add kernels of
  its own (as a gather of the edge rows, or m̂ taken per leaf before
  stacking, did: 107 kernels here instead of Adam's 81)."""
  params = {f"dense_{i}": {"kernel": jnp.ones((40, 48)), "bias": jnp.ones(48)}
            for i in range(12)}
  params["conv"] = {"kernel": jnp.ones((3, 3, 8, 16)), "bias": jnp.ones(16)}

  def kernels(tx):
    return xla_kernels(
        jax.jit(tx.update).lower(params, tx.init(params), params).compile())

  adam = kernels(optax.scale_by_adam())
  with _laplacian.using_impl("flat"):
    ladam = kernels(ladam_jax.scale_by_laplacian_adam(
        c2=1e-4, min_spatial_size=0))
  # + 1: the stacked group of the twelve biases is computed once, then split.
  assert ladam <= adam + 1, (adam, ladam)


@pytest.mark.parametrize("mode", ["variance_lap", "update_lap",
                                  "wave_variance"])
def test_nu_dtype_float32_with_bfloat16_params_is_the_float32_path(mode):
  """bf16 params with float32 moments (mu_dtype, nu_dtype): every step's
  update is the all-float32 update to bf16 rounding, and the moments are
  the float32 ones to the rounding of optax's moment update (which takes
  (1 - b) · g in the gradient's dtype). update_lap adds c2 L(u) to Adam's
  update in the gradient's dtype: one bf16 rounding more (an ulp, not
  half of one)."""
  rng = np.random.default_rng(0)
  params = {"w": jnp.asarray(rng.standard_normal((12, 10)), jnp.bfloat16),
            "b": jnp.zeros(10, jnp.bfloat16)}
  grads = [jax.tree.map(lambda p, k=k: jnp.asarray(
      rng.standard_normal(p.shape), jnp.bfloat16), params) for k in range(4)]
  tx = scale_by_mode(mode, c2=1e-2, min_spatial_size=0,
                     mu_dtype=jnp.float32, nu_dtype=jnp.float32)
  tx32 = scale_by_mode(mode, c2=1e-2, min_spatial_size=0)
  nu_of = lambda s: optax.tree.get(s, "nu")
  to32 = lambda t: jax.tree.map(lambda x: x.astype(jnp.float32), t)
  state, state32 = tx.init(params), tx32.init(to32(params))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(nu_of(state)))
  for g in grads:
    u, state = jax.jit(tx.update)(g, state)
    u32, state32 = jax.jit(tx32.update)(to32(g), state32)
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(u32)):
      assert a.dtype == jnp.bfloat16
      np.testing.assert_allclose(np.asarray(a, np.float32), b,
                                 rtol=2 ** (-6 if mode == "update_lap" else -7),
                                 atol=1e-6)
    for a, b in zip(jax.tree.leaves(nu_of(state)),
                    jax.tree.leaves(nu_of(state32))):
      assert a.dtype == jnp.float32
      np.testing.assert_allclose(a, b, rtol=2 ** -7)


def test_nu_dtype_reaches_the_aliases():
  params = {"w": jnp.zeros((8, 8), jnp.bfloat16)}
  for make in (ladam_jax.ladam, ladam_jax.ladamw):
    state = make(1e-3, nu_dtype=jnp.float32).init(params)
    assert state[0].nu["w"].dtype == jnp.float32
    assert state[0].mu["w"].dtype == jnp.bfloat16


def test_laprop_nu_dtype_keeps_dtypes_and_follows_the_float32_path():
  rng = np.random.default_rng(1)
  params = {"w": jnp.asarray(rng.standard_normal((12, 10)), jnp.bfloat16)}
  grads = [{"w": jnp.asarray(rng.standard_normal((12, 10)), jnp.bfloat16)}
           for _ in range(3)]
  tx = ladam_jax.scale_by_laplacian_laprop(
      c2=1e-2, min_spatial_size=0, mu_dtype=jnp.float32, nu_dtype=jnp.float32)
  tx32 = ladam_jax.scale_by_laplacian_laprop(c2=1e-2, min_spatial_size=0)
  to32 = lambda t: jax.tree.map(lambda x: x.astype(jnp.float32), t)
  state, state32 = tx.init(params), tx32.init(to32(params))
  for g in grads:
    u, new = jax.jit(tx.update)(g, state)
    u32, state32 = jax.jit(tx32.update)(to32(g), state32)
    assert u["w"].dtype == jnp.bfloat16
    assert jax.tree.map(lambda x: x.dtype, new) == jax.tree.map(
        lambda x: x.dtype, state)
    # LaProp's momentum sums signed steps: compare at the update's scale.
    np.testing.assert_allclose(np.asarray(u["w"], np.float32), u32["w"],
                               atol=2 ** -7 * float(jnp.abs(u32["w"]).max()))
    state = new
