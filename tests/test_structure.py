"""The package's shape: one algorithm per transform, the reference's modes as
chains of them, one set of coupling arguments, no implementation knob, only
public JAX."""

import ast
import inspect
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ladam_jax
from ladam_jax import _coupling

ROOT = pathlib.Path(ladam_jax.__file__).parent

COUPLED = {
    "ladam": ladam_jax.ladam, "ladamw": ladam_jax.ladamw,
    "lrmsprop": ladam_jax.lrmsprop, "ladagrad": ladam_jax.ladagrad,
    "laprop": ladam_jax.laprop, "vradam": ladam_jax.vradam,
    "scale_by_laplacian_adam": ladam_jax.scale_by_laplacian_adam,
    "scale_by_wave_variance": ladam_jax.scale_by_wave_variance,
    "scale_by_laplacian_rms": ladam_jax.scale_by_laplacian_rms,
    "scale_by_laplacian_adagrad": ladam_jax.scale_by_laplacian_adagrad,
    "scale_by_laplacian_laprop": ladam_jax.scale_by_laplacian_laprop,
    "add_update_laplacian": ladam_jax.add_update_laplacian,
    "add_weight_laplacian": ladam_jax.add_weight_laplacian,
}


def _params():
  rng = np.random.default_rng(0)
  return {"w": jnp.asarray(rng.standard_normal((12, 20)), jnp.float32),
          "conv": jnp.asarray(rng.standard_normal((3, 3, 4, 8)), jnp.float32),
          "b": jnp.asarray(rng.standard_normal(20), jnp.float32)}


def _grads(params, k):
  rng = np.random.default_rng(k + 1)
  return jax.tree.map(lambda p: jnp.asarray(
      rng.standard_normal(p.shape), p.dtype), params)


def _run(tx, steps=4):
  params = _params()
  state = tx.init(params)
  step = jax.jit(tx.update)
  for k in range(steps):
    updates, state = step(_grads(params, k), state, params)
    params = optax.apply_updates(params, updates)
  return params, state


def test_no_public_callable_takes_an_implementation_argument():
  for name in ladam_jax.__all__:
    obj = getattr(ladam_jax, name)
    if callable(obj) and not isinstance(obj, type):
      assert "impl" not in inspect.signature(obj).parameters, name
  assert not hasattr(ladam_jax, "default_laplacian_impl")


@pytest.mark.parametrize("name", sorted(COUPLED))
def test_every_coupled_transform_takes_the_coupling_kwargs(name):
  factory = COUPLED[name]
  lr = (1e-3,) if not name.startswith(("scale_by", "add_")) else ()
  tx = factory(*lr, c2=1e-2, stencil="5point", min_spatial_size=0,
               layout="torch", allow_unstable_c2=False,
               partition_specs=None)
  _run(tx, steps=1)
  with pytest.raises(TypeError, match=rf"{name}\(\).*'impl'.*stencil"):
    factory(*lr, c2=1e-2, impl="flat")


def test_laplacian_kwargs_and_defaults_agree():
  assert set(ladam_jax.LaplacianKwargs.__annotations__) == set(
      _coupling.DEFAULTS)


def test_scale_by_laplacian_adam_state_is_adams():
  params = _params()
  ours = ladam_jax.scale_by_laplacian_adam(c2=1e-2).init(params)
  adam = optax.scale_by_adam().init(params)
  assert ours._fields == adam._fields
  assert jax.tree.structure(tuple(ours)) == jax.tree.structure(tuple(adam))


def test_each_mode_is_the_chain_of_its_transforms():
  """ladam(mode=...) builds exactly these chains (bit for bit)."""
  c2, lr = 1e-2, 1e-2
  coupling = dict(min_spatial_size=0, layout="torch")
  chains = {
      "variance_lap": optax.chain(
          ladam_jax.scale_by_laplacian_adam(c2=c2, **coupling),
          optax.scale_by_learning_rate(lr)),
      "update_lap": optax.chain(
          ladam_jax.scale_by_laplacian_adam(c2=0.0, **coupling),
          ladam_jax.add_update_laplacian(c2, **coupling),
          optax.scale_by_learning_rate(lr)),
      "weight_lap": optax.chain(
          ladam_jax.scale_by_laplacian_adam(c2=0.0, **coupling),
          optax.scale_by_learning_rate(lr),
          ladam_jax.add_weight_laplacian(c2, **coupling)),
      "wave_variance": optax.chain(
          ladam_jax.scale_by_wave_variance(c2=c2, **coupling),
          optax.scale_by_learning_rate(lr)),
  }
  for mode, chain in chains.items():
    got, _ = _run(ladam_jax.ladam(lr, c2=c2, mode=mode, **coupling))
    want, _ = _run(chain)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_array_equal(a, b, err_msg=mode)


@pytest.mark.parametrize("mode", ["variance_lap", "update_lap", "weight_lap"])
def test_c2_zero_is_adam_in_every_mode(mode):
  """To optax's float32 bias correction (1 - 0.999^t is 1.3e-5 off at small
  t there; ours is accurate to rounding)."""
  got, _ = _run(ladam_jax.ladam(1e-2, c2=0.0, mode=mode))
  want, _ = _run(optax.adam(1e-2))
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=3e-5, atol=1e-7)


def test_inject_hyperparams_passes_the_coupling_kwargs_through():
  """inject_hyperparams binds **coupling as one dict argument: the layout
  and stencil still reach the transform, and the numbers stay injectable."""
  kwargs = dict(c2=2e-2, stencil="5point", layout="torch",
                min_spatial_size=0)
  plain, _ = _run(ladam_jax.ladamw(1e-2, **kwargs))
  injected, state = _run(optax.inject_hyperparams(ladam_jax.ladamw)(
      learning_rate=1e-2, **kwargs))
  assert set(state.hyperparams) >= {"learning_rate", "c2", "weight_decay"}
  for a, b in zip(jax.tree.leaves(injected), jax.tree.leaves(plain)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  other, _ = _run(ladam_jax.ladamw(1e-2, c2=2e-2, min_spatial_size=0))
  assert any(not np.allclose(a, b) for a, b in zip(
      jax.tree.leaves(injected), jax.tree.leaves(other)))


def test_the_package_imports_no_private_jax():
  for path in sorted(ROOT.rglob("*.py")):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
      names = []
      if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom) and node.module:
        names = [node.module] + [f"{node.module}.{a.name}"
                                 for a in node.names]
      for n in names:
        assert not n.startswith(("jax._src", "jaxlib.")), (path, n)
