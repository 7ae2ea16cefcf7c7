"""The stability bound on c2: refused at construction, clipped at run time."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ladam_jax

ALIASES = [ladam_jax.ladam, ladam_jax.ladamw, ladam_jax.lrmsprop,
           ladam_jax.ladagrad, ladam_jax.laprop, ladam_jax.vradam]


def test_bounds_are_the_stencils_most_negative_eigenvalue():
  # 1 + c2·λ_min = 0 at the bound: build L's symbol on an even periodic grid.
  k = 2 * np.pi * np.arange(8) / 8
  a, b = np.meshgrid(k, k)
  nine = (-20 + 8 * np.cos(a) + 8 * np.cos(b) + 4 * np.cos(a) * np.cos(b)) / 6
  five = -4 + 2 * np.cos(a) + 2 * np.cos(b)
  one = -2 + 2 * np.cos(k)
  for symbol, bound in ((nine, ladam_jax.stability_bound("9point")),
                        (five, ladam_jax.stability_bound("5point")),
                        (one, ladam_jax.stability_bound("9point", 1))):
    np.testing.assert_allclose(1 + bound * symbol.min(), 0.0, atol=1e-12)
  # ... and the operator's own output agrees: the checkerboard mode.
  x = jnp.asarray((-1.0) ** np.add.outer(np.arange(8), np.arange(8)))
  bound = ladam_jax.stability_bound("9point")
  np.testing.assert_allclose(x + bound * ladam_jax.laplacian(x), 0.0,
                             atol=1e-6)


@pytest.mark.parametrize("alias", ALIASES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("stencil, bound", [("9point", 3 / 16),
                                            ("5point", 1 / 8)])
def test_concrete_c2_above_the_bound_is_refused(alias, stencil, bound):
  # Above every field's bound (1-D: 1/4): refused at construction.
  with pytest.raises(ValueError, match="stability bound 0.25") as e:
    alias(1e-3, c2=0.26, stencil=stencil)
  assert "allow_unstable_c2=True" in str(e.value)
  with pytest.raises(ValueError, match="stability bound"):
    alias(1e-3, c2={"w": 0.5, "b": 0.0}, stencil=stencil)
  # Above the 2-D bound only: refused at init, naming the 2-D leaf.
  opt = alias(1e-3, c2=bound * 1.01, stencil=stencil)
  with pytest.raises(ValueError, match=f"stability bound {bound:g} .*'w'"):
    opt.init({"w": jnp.zeros((8, 8))})
  opt.init({"b": jnp.zeros(32)})  # a 1-D leaf's bound is 1/4
  alias(1e-3, c2=bound, stencil=stencil).init({"w": jnp.zeros((8, 8))})
  alias(1e-3, c2=10.0, stencil=stencil, allow_unstable_c2=True).init(
      {"w": jnp.zeros((8, 8))})


C2_FORMS = {
    "pytree": lambda values: values,
    "params function": lambda values: ladam_jax.per_leaf(lambda p: values),
    "c2_by_path": lambda values: ladam_jax.c2_by_path(
        {"kernel": values["kernel"], "bias": values["bias"]}),
}


@pytest.mark.parametrize("form", C2_FORMS)
def test_c2_is_checked_per_field_at_init_whatever_its_form(form):
  # 1-D leaves have the larger bound 1/4, 2-D fields 3/16: each leaf is
  # checked against its own, at init, for a pytree, a params function and
  # c2_by_path alike.
  params = {"kernel": jnp.zeros((8, 8)), "bias": jnp.zeros(32)}
  make = C2_FORMS[form]
  ladam_jax.ladam(1e-3, c2=make({"kernel": 0.1, "bias": 0.24})).init(params)
  bad = ladam_jax.ladam(1e-3, c2=make({"kernel": 0.2, "bias": 0.2}))
  with pytest.raises(ValueError, match="0.1875 .*2-D fields, as the leaf "
                     r"\['kernel'\]"):
    bad.init(params)
  with pytest.raises(ValueError, match="stability bound 0.25"):
    ladam_jax.ladam(1e-3, c2=make({"kernel": 0.1, "bias": 0.3})).init(params)


def _updates(tx, params, steps=3):
  state = tx.init(params)
  update = jax.jit(tx.update)
  for t in range(steps):
    grads = jax.tree.map(
        lambda p, t=t: jnp.cos(jnp.arange(p.size, dtype=p.dtype) * (t + 1.7)
                               ).reshape(p.shape) ** 3, params)
    updates, state = update(grads, state, params)
  return updates


PARAMS = {"kernel": jnp.zeros((12, 10)), "bias": jnp.zeros(20)}


def test_injected_c2_above_the_bound_is_clipped_per_field():
  injected = _updates(optax.inject_hyperparams(ladam_jax.ladam)(
      learning_rate=1e-3, c2=0.6), PARAMS)
  at_bounds = _updates(ladam_jax.ladam(
      1e-3, c2={"kernel": 3 / 16, "bias": 1 / 4}), PARAMS)
  for k in PARAMS:  # (injected betas: float32 bias correction, ~1e-6)
    np.testing.assert_allclose(injected[k], at_bounds[k], rtol=1e-5,
                               atol=1e-9)
  unclipped = _updates(optax.inject_hyperparams(ladam_jax.ladam)(
      learning_rate=1e-3, c2=0.6, allow_unstable_c2=True), PARAMS)
  assert not np.allclose(unclipped["kernel"], injected["kernel"], rtol=1e-3)


def test_schedule_crossing_the_bound_is_clipped():
  # c2 rises 0 -> 1 over 4 steps: from the third step on it is above 3/16.
  sched = optax.linear_schedule(0.0, 1.0, 4)
  got = _updates(ladam_jax.ladam(1e-3, c2=sched), PARAMS, steps=4)
  clipped = lambda t: jnp.minimum(sched(t), 3 / 16)  # noqa: E731
  want = _updates(ladam_jax.ladam(1e-3, c2={
      "kernel": clipped, "bias": lambda t: jnp.minimum(sched(t), 1 / 4)}),
                  PARAMS, steps=4)
  for k in PARAMS:
    np.testing.assert_allclose(got[k], want[k], rtol=1e-6)
  assert np.all(np.isfinite(got["kernel"]))


def test_c2_turning_negative_at_run_time_is_no_smoothing():
  # A negative c2 is refused at init; set at run time, it smooths nothing.
  tx = optax.inject_hyperparams(ladam_jax.ladam)(learning_rate=1e-3, c2=0.1)
  with pytest.raises(ValueError, match="c2"):
    optax.inject_hyperparams(ladam_jax.ladam)(learning_rate=1e-3,
                                              c2=-0.5).init(PARAMS)
  state = tx.init(PARAMS)
  state.hyperparams["c2"] = jnp.asarray(-0.5)
  grads = jax.tree.map(lambda p: jnp.cos(jnp.arange(p.size) * 1.7).reshape(
      p.shape), PARAMS)
  neg, _ = jax.jit(tx.update)(grads, state, PARAMS)
  plain = ladam_jax.ladam(1e-3, c2=0.0)
  zero, _ = plain.update(grads, plain.init(PARAMS), PARAMS)
  for k in PARAMS:
    np.testing.assert_allclose(neg[k], zero[k], rtol=1e-5)
