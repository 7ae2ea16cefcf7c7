"""Leaf types Optax accepts: complex parameters and Python scalar leaves."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ladam_jax

_ALIASES = {
    "ladam": lambda: ladam_jax.ladam(1e-3, c2=1e-3),
    "ladamw": lambda: ladam_jax.ladamw(1e-3, c2=1e-3),
    "ladam_update_lap": lambda: ladam_jax.ladam(1e-3, c2=1e-3,
                                                mode="update_lap"),
    "ladam_weight_lap": lambda: ladam_jax.ladam(1e-3, c2=1e-3,
                                                mode="weight_lap"),
    "ladam_wave": lambda: ladam_jax.ladam(1e-3, c2=1e-3,
                                          mode="wave_variance"),
    "lrmsprop": lambda: ladam_jax.lrmsprop(1e-3, c2=1e-3),
    "ladagrad": lambda: ladam_jax.ladagrad(1e-3, c2=1e-3),
    "laprop": lambda: ladam_jax.laprop(1e-3, c2=1e-3),
    "vradam": lambda: ladam_jax.vradam(1e-3, c2=1e-3),
}


def _complex_problem():
  i = jnp.arange(64.0)
  params = {"w": (i.reshape(8, 8) + 1j).astype(jnp.complex64)}
  grads = {"w": (jnp.cos(i) + 1j * jnp.sin(3 * i)).reshape(8, 8).astype(
      jnp.complex64)}
  return params, grads


def _updates(tx, params, grads, steps=3):
  state = tx.init(params)
  for _ in range(steps):
    updates, state = jax.jit(tx.update)(grads, state, params)
  return updates


@pytest.mark.parametrize("name, ours, theirs", [
    ("ladam", lambda: ladam_jax.ladam(1e-3, c2=0.0),
     lambda: optax.adam(1e-3)),
    ("lrmsprop", lambda: ladam_jax.lrmsprop(1e-3, c2=0.0),
     lambda: optax.rmsprop(1e-3, decay=0.99, eps_in_sqrt=False)),
])
def test_complex_c2_zero_is_optax(name, ours, theirs):
  # |g|², not g², as Optax: the update is Optax's on complex64 leaves.
  del name
  params, grads = _complex_problem()
  np.testing.assert_allclose(_updates(ours(), params, grads)["w"],
                             _updates(theirs(), params, grads)["w"],
                             rtol=1e-5, atol=1e-9)


def test_complex_ladagrad_uses_abs_square():
  params, grads = _complex_problem()
  u = _updates(ladam_jax.ladagrad(1e-2, c2=0.0), params, grads, steps=2)
  g = grads["w"]
  expected = -1e-2 * g / (np.sqrt(2 * np.abs(g) ** 2) + 1e-10)
  np.testing.assert_allclose(u["w"], expected, rtol=1e-5)


def test_complex_vradam_keeps_adams_direction():
  # The velocity penalty uses |m|²: a real factor in (0, 1] times Adam's step
  # (with m² of complex m, the factor was complex and rotated the step).
  params, grads = _complex_problem()
  adam = _updates(ladam_jax.ladam(1e-3, c2=0.0), params, grads)["w"]
  vr = _updates(ladam_jax.vradam(1e-3), params, grads)["w"]
  ratio = np.asarray(vr / adam)
  np.testing.assert_allclose(ratio.imag, 0.0, atol=1e-6)
  assert np.all((ratio.real > 0) & (ratio.real <= 1.0))
  assert np.ptp(ratio.real) < 1e-5  # one factor for the whole tree
  assert float(jnp.real(jnp.vdot(vr, grads["w"]))) < 0  # descent


@pytest.mark.parametrize("name", sorted(_ALIASES))
def test_complex_leaves_give_finite_updates(name):
  params, grads = _complex_problem()
  u = _updates(_ALIASES[name](), params, grads)["w"]
  assert u.dtype == jnp.complex64 and np.all(np.isfinite(u))


@pytest.mark.parametrize("name", sorted(_ALIASES))
def test_python_scalar_leaves(name):
  # optax.adam accepts a Python float leaf; so does every alias here (a 0-d
  # leaf is never smoothed, so it is stepped as the plain optimizer does).
  params = {"a": 1.0, "b": jnp.ones((8, 8))}
  grads = {"a": 0.5, "b": jnp.full((8, 8), 0.5)}
  u = _updates(_ALIASES[name](), params, grads)
  assert np.isfinite(float(u["a"])) and float(u["a"]) < 0
  if name in ("ladam", "ladam_update_lap", "ladam_weight_lap"):
    expected = _updates(optax.adam(1e-3), params, grads)["a"]
    np.testing.assert_allclose(float(u["a"]), float(expected), rtol=1e-5)
