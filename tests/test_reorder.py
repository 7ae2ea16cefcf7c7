"""Neuron reordering: the reference's order (golden data), function preserved."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ladam_jax

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "reorder.npz")


@pytest.mark.parametrize("case", ["gaussian", "relu_low_rank", "four_units"])
def test_order_matches_reference(case):
  data = np.load(GOLDEN)
  order = ladam_jax.compute_neuron_order(data[f"{case}/activations"])
  np.testing.assert_array_equal(order, data[f"{case}/order"])


def test_correlated_units_become_adjacent():
  rng = np.random.default_rng(1)
  base = rng.normal(size=(512, 6))
  perm = rng.permutation(12)
  acts = np.concatenate([base, base + 1e-3 * rng.normal(size=(512, 6))], 1)
  acts = acts[:, perm]  # twins scattered
  order = ladam_jax.compute_neuron_order(acts)
  assert sorted(order.tolist()) == list(range(12))
  twin = {i: (perm[i] % 6) for i in range(12)}
  pairs = [twin[order[k]] == twin[order[k + 1]] for k in range(0, 12, 2)]
  assert all(pairs), order


def _mlp(params, x):
  h = jax.nn.relu(x @ params["d0"]["kernel"] + params["d0"]["bias"])
  h = jnp.tanh(h @ params["d1"]["kernel"] + params["d1"]["bias"])
  return h @ params["d2"]["kernel"] + params["d2"]["bias"]


@pytest.mark.slow
def test_reordering_keeps_the_function():
  ks = jax.random.split(jax.random.key(0), 7)
  sizes = [(5, 24), (24, 16), (16, 3)]
  params = {f"d{i}": {"kernel": jax.random.normal(ks[i], s),
                      "bias": jax.random.normal(ks[3 + i], s[1:])}
            for i, s in enumerate(sizes)}
  x = jax.random.normal(ks[6], (64, 5))
  before = _mlp(params, x)
  h0 = jax.nn.relu(x @ params["d0"]["kernel"] + params["d0"]["bias"])
  o0 = ladam_jax.compute_neuron_order(h0)
  new = dict(params)
  new["d0"], new["d1"] = ladam_jax.reorder_dense(params["d0"], params["d1"], o0)
  h1 = jnp.tanh(h0[:, o0] @ new["d1"]["kernel"] + new["d1"]["bias"])
  o1 = ladam_jax.compute_neuron_order(h1)
  new["d1"], new["d2"] = ladam_jax.reorder_dense(new["d1"], params["d2"], o1)
  assert not np.array_equal(o0, np.arange(24))
  assert not np.allclose(new["d0"]["kernel"], params["d0"]["kernel"])
  np.testing.assert_allclose(_mlp(new, x), before, rtol=1e-5, atol=1e-6)


def test_reorder_works_with_flax_linen_params():
  flax_nn = pytest.importorskip("flax.linen")

  class MLP(flax_nn.Module):
    @flax_nn.compact
    def __call__(self, x):
      x = flax_nn.relu(flax_nn.Dense(32)(x))
      return flax_nn.Dense(2)(x)

  model = MLP()
  x = jax.random.normal(jax.random.key(1), (16, 4))
  variables = model.init(jax.random.key(0), x)
  p = variables["params"]
  _, state = model.apply(variables, x, capture_intermediates=True,
                         mutable=["intermediates"])
  hidden = jax.nn.relu(state["intermediates"]["Dense_0"]["__call__"][0])
  order = ladam_jax.compute_neuron_order(hidden)
  new = dict(p)
  new["Dense_0"], new["Dense_1"] = ladam_jax.reorder_dense(
      p["Dense_0"], p["Dense_1"], order)
  np.testing.assert_allclose(model.apply({"params": new}, x),
                             model.apply(variables, x), rtol=1e-5, atol=1e-6)


def test_bad_input_is_rejected():
  with pytest.raises(ValueError, match="2-D"):
    ladam_jax.compute_neuron_order(np.ones(8))
  with pytest.raises(ValueError, match="NaN"):
    ladam_jax.compute_neuron_order(np.full((4, 8), np.nan))
  with pytest.raises(ValueError, match="at least 2 rows"):
    ladam_jax.compute_neuron_order(np.ones((1, 8)))
  np.testing.assert_array_equal(
      ladam_jax.compute_neuron_order(np.ones((3, 4))), np.arange(4))
  layer = {"kernel": np.ones((2, 5)), "bias": np.ones(5)}
  with pytest.raises(ValueError, match="permutation"):
    ladam_jax.reorder_dense(layer, {"kernel": np.ones((5, 1))}, [0, 1, 2, 3, 3])
  with pytest.raises(ValueError, match="inputs"):
    ladam_jax.reorder_dense(layer, {"kernel": np.ones((4, 1))}, range(5))
  with pytest.raises(ValueError, match="kernel"):
    ladam_jax.reorder_dense({"w": np.ones((2, 5))}, layer, range(5))
