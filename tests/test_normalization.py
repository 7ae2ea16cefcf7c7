"""WaveNorm, WaveNormDamped, ChiNorm: parity with ladam 0.4.1 and use in Flax.

Golden data: ``tools/make_golden.py`` (``tests/golden/normalization.npz``):
the reference's float64 outputs and gradients (input and every parameter)
for 2-D and 4-D inputs, ChiNorm's running energy over three training batches
and its evaluation pass.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("flax")

from flax import nnx  # noqa: E402
from flax.training import train_state  # noqa: E402
import flax.linen as nn  # noqa: E402

import ladam_jax  # noqa: E402
from ladam_jax import nn as lnn  # noqa: E402
from ladam_jax.nn import nnx as lnnx  # noqa: E402
from _helpers import enable_x64  # noqa: E402

GOLDEN = np.load(os.path.join(os.path.dirname(__file__), "golden",
                              "normalization.npz"))
META = json.loads(str(GOLDEN["meta"]))
CASES = META["cases"]
TOL = dict(rtol=1e-9, atol=1e-12)


def _to_flax(a):
  """PyTorch's (B, C, H, W) as Flax's (B, H, W, C); (B, C) unchanged."""
  return np.transpose(a, (0, 2, 3, 1)) if a.ndim == 4 else a


def _to_torch(a):
  return jnp.transpose(a, (0, 3, 1, 2)) if a.ndim == 4 else a


def _weights(shape):
  n = int(np.prod(shape))
  return jnp.asarray(np.cos(np.arange(n)).reshape(shape))


def _golden_params(name):
  prefix = f"{name}/params/"
  return {k[len(prefix):]: jnp.asarray(GOLDEN[k]) for k in GOLDEN.files
          if k.startswith(prefix)}


def _steps(name, mode):
  i = 0
  while f"{name}/{mode}/{i}/x" in GOLDEN.files:
    yield i, f"{name}/{mode}/{i}"
    i += 1


def _check_step(tag, y, gx, gp):
  np.testing.assert_allclose(_to_torch(y), GOLDEN[f"{tag}/y"], **TOL)
  np.testing.assert_allclose(_to_torch(gx), GOLDEN[f"{tag}/grad_x"], **TOL)
  for k, g in gp.items():
    np.testing.assert_allclose(g, GOLDEN[f"{tag}/grad/{k}"], err_msg=k,
                               **TOL)


def _linen(layer, kwargs):
  kwargs = dict(kwargs)
  return getattr(lnn, layer)(**kwargs, param_dtype=jnp.float64)


@pytest.mark.parametrize("name", sorted(CASES))
def test_linen_matches_the_reference_in_float64(name):
  layer, kwargs, _ = CASES[name]
  with enable_x64():
    module = _linen(layer, kwargs)
    params = _golden_params(name)
    is_chi = layer == "ChiNorm"
    stats = None
    if is_chi:
      x0 = jnp.asarray(_to_flax(GOLDEN[f"{name}/train/0/x"]))
      stats = module.init(jax.random.key(0), x0,
                          use_running_average=False)["batch_stats"]
      assert float(stats["running_energy"].sum()) == 0.0  # not updated
    for mode in ("train", "eval") if is_chi else ("train",):
      for _, tag in _steps(name, mode):
        x = jnp.asarray(_to_flax(GOLDEN[f"{tag}/x"]))
        w = _weights(GOLDEN[f"{tag}/y"].shape)

        def loss(p, x, stats=stats, mode=mode):
          variables = {"params": p}
          if not is_chi:
            return jnp.sum(_to_torch(module.apply(variables, x)) * w), None
          variables["batch_stats"] = stats
          y, upd = module.apply(variables, x,
                                use_running_average=mode == "eval",
                                mutable=["batch_stats"])
          return jnp.sum(_to_torch(y) * w), upd["batch_stats"]

        (_, new), (gp, gx) = jax.jit(jax.value_and_grad(
            loss, argnums=(0, 1), has_aux=True))(params, x)
        out = (module.apply({"params": params, "batch_stats": stats}, x,
                            use_running_average=mode == "eval",
                            mutable=["batch_stats"])[0] if is_chi
               else module.apply({"params": params}, x))
        _check_step(tag, out, gx, gp)
        if is_chi:
          stats = new
          np.testing.assert_allclose(
              stats["running_energy"], GOLDEN[f"{tag}/buffer/running_energy"],
              **TOL)
          assert int(stats["num_batches_tracked"]) == int(
              GOLDEN[f"{tag}/buffer/num_batches_tracked"])


def _nnx_module(layer, kwargs):
  kwargs = dict(kwargs)
  features = kwargs.pop("num_features")
  return getattr(lnnx, layer)(features, **kwargs, param_dtype=jnp.float64)


@pytest.mark.parametrize("name", sorted(CASES))
def test_nnx_matches_the_reference_in_float64(name):
  layer, kwargs, _ = CASES[name]
  with enable_x64():
    model = _nnx_module(layer, kwargs)
    for k, v in _golden_params(name).items():
      getattr(model, k)[...] = v
    for mode in ("train", "eval") if layer == "ChiNorm" else ("train",):
      if mode == "eval":
        model.eval()
      for _, tag in _steps(name, mode):
        x = jnp.asarray(_to_flax(GOLDEN[f"{tag}/x"]))
        w = _weights(GOLDEN[f"{tag}/y"].shape)

        def loss(m, x):
          y = m(x)
          return jnp.sum(_to_torch(y) * w), y

        (_, y), (gm, gx) = nnx.value_and_grad(
            loss, argnums=(0, 1), has_aux=True)(model, x)
        _check_step(tag, y, gx, {k: v[...] for k, v in gm.items()})
        if layer == "ChiNorm":
          np.testing.assert_allclose(
              model.running_energy[...],
              GOLDEN[f"{tag}/buffer/running_energy"], **TOL)


def test_shapes_ranks_and_bad_input():
  x3 = jnp.asarray(np.random.default_rng(0).normal(size=(2, 7, 5)),
                   jnp.float32)
  for module in (lnn.WaveNorm(), lnn.WaveNormDamped(), lnn.ChiNorm(
      use_running_average=False)):
    v = module.init(jax.random.key(0), x3)
    y = module.apply(v, x3, mutable=["batch_stats"])
    y = y[0] if isinstance(y, tuple) else y
    assert y.shape == x3.shape  # (B, L, C): reshaped back, channels last
  # The wave runs along the channels only: each position independently.
  v = lnn.WaveNorm().init(jax.random.key(0), x3)
  flat = lnn.WaveNorm().apply(v, x3.reshape(-1, 5))
  np.testing.assert_allclose(lnn.WaveNorm().apply(v, x3).reshape(-1, 5),
                             flat, rtol=1e-6)
  with pytest.raises(ValueError, match="rank >= 2"):
    lnn.WaveNorm().init(jax.random.key(0), jnp.ones(5))
  with pytest.raises(ValueError, match="num_features=4.*5 channels"):
    lnn.ChiNorm(num_features=4, use_running_average=False).init(
        jax.random.key(0), x3)
  with pytest.raises(ValueError, match="channels-last"):
    lnnx.WaveNorm(4)(x3)


@pytest.mark.slow  # end to end: trains a Flax model
def test_jit_vmap_grad_and_a_train_state_loop_with_ladam():
  class Net(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool):
      x = nn.Dense(32)(x)
      x = lnn.ChiNorm(use_running_average=not train)(x)
      x = nn.tanh(lnn.WaveNormDamped(init_damping=0.3)(x))
      return nn.Dense(1)(x)

  rng = np.random.default_rng(0)
  xs = jnp.asarray(rng.normal(size=(64, 8)), jnp.float32)
  ys = jnp.sin(xs.sum(-1, keepdims=True))
  model = Net()
  variables = model.init(jax.random.key(0), xs, train=True)
  state = train_state.TrainState.create(
      apply_fn=model.apply, params=variables["params"],
      tx=ladam_jax.ladam(1e-2, c2=1e-3))
  stats = variables["batch_stats"]

  @jax.jit
  def step(state, stats):
    def loss(p):
      y, upd = state.apply_fn({"params": p, "batch_stats": stats}, xs,
                              train=True, mutable=["batch_stats"])
      return jnp.mean((y - ys) ** 2), upd["batch_stats"]
    (l, stats), g = jax.value_and_grad(loss, has_aux=True)(state.params)
    return state.apply_gradients(grads=g), stats, l

  losses = []
  for _ in range(60):
    state, stats, l = step(state, stats)
    losses.append(float(l))
  assert losses[-1] < 0.5 * losses[0] and np.all(np.isfinite(losses))
  assert int(stats["ChiNorm_0"]["num_batches_tracked"]) == 60
  # Evaluation uses the running energy: deterministic, no update.
  y_eval = model.apply({"params": state.params, "batch_stats": stats}, xs,
                       train=False)
  assert y_eval.shape == (64, 1)
  # vmap over a leading axis of independent batches = a loop over them.
  norm = lnn.WaveNorm()
  v = norm.init(jax.random.key(0), xs)
  batched = jax.vmap(lambda x: norm.apply(v, x))(xs.reshape(4, 16, 8))
  np.testing.assert_allclose(batched.reshape(64, 8), norm.apply(v, xs),
                             rtol=1e-6)


def test_an_nnx_optimizer_loop_with_ladam():
  class Net(nnx.Module):
    def __init__(self, rngs):
      self.dense = nnx.Linear(8, 32, rngs=rngs)
      self.norm = lnnx.ChiNorm(32)
      self.wave = lnnx.WaveNorm(32)
      self.out = nnx.Linear(32, 1, rngs=rngs)

    def __call__(self, x):
      return self.out(nnx.tanh(self.wave(self.norm(self.dense(x)))))

  rng = np.random.default_rng(1)
  xs = jnp.asarray(rng.normal(size=(64, 8)), jnp.float32)
  ys = jnp.sin(xs.sum(-1, keepdims=True))
  model = Net(nnx.Rngs(0))
  try:
    opt = nnx.Optimizer(model, ladam_jax.ladam(1e-2, c2=1e-3), wrt=nnx.Param)
  except TypeError:  # flax < 0.11.1: no `wrt`
    opt = nnx.Optimizer(model, ladam_jax.ladam(1e-2, c2=1e-3))

  @nnx.jit
  def step(model, opt):
    def loss(m):
      return jnp.mean((m(xs) - ys) ** 2)
    l, g = nnx.value_and_grad(loss)(model)
    try:
      opt.update(model, g)
    except TypeError:  # flax < 0.11.1: update(grads)
      opt.update(g)
    return l

  losses = [float(step(model, opt)) for _ in range(60)]
  assert losses[-1] < 0.5 * losses[0] and np.all(np.isfinite(losses))
  assert int(model.norm.num_batches_tracked[...]) == 60
  model.eval()
  assert model.norm.use_running_average
  before = np.asarray(model.norm.running_energy[...])
  model(xs)
  np.testing.assert_array_equal(model.norm.running_energy[...], before)
