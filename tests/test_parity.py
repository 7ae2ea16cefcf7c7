"""Parity with the PyTorch reference ``ladam==0.4.1`` (golden data).

``tests/golden/reference.npz`` is written by ``tools/make_golden.py`` from the
reference; every configuration runs 30 steps on Dense, Conv1D, Conv2D and Embed
leaves plus the edge cases (biases >= 16 and < 16, a side < 3, 0-d, size 1, a
1-D leaf shorter than 4), in float64 and float32.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ladam_jax
from ladam_jax import _laplacian
from _helpers import enable_x64, numpy_laplacian_2d
import _golden

NAMES = _golden.config_names()


def test_golden_covers_the_issue_matrix():
  _, meta = _golden.load()
  configs = meta["configs"]
  modes = {(kw.get("mode", "variance_lap"), kw.get("stencil", "9point"))
           for kind, kw in configs.values() if kind == "adam"}
  for mode in ("variance_lap", "update_lap", "weight_lap", "wave_variance"):
    for stencil in ("9point", "5point"):
      assert (mode, stencil) in modes
  assert meta["steps"] >= 30
  assert {"rms", "adagrad"} <= {kind for kind, _ in configs.values()}


@pytest.mark.parametrize("name", NAMES)
def test_float64_matches_reference(name):
  with enable_x64(True):
    ours, ref = _golden.replay(name, jnp.float64)
  assert _golden.relative_error(ours, ref) <= 1e-9


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_float32_matches_reference(name):
  """float32: within twice the reference's own float32 error.

  The reference in float32 differs from itself in float64 by 2e-7 .. 1.2e-5
  (the wave mode amplifies rounding); ours must be no further from the float64
  truth than twice that, and close to the reference's float32 run.
  """
  data, meta = _golden.load()
  ours, ref32 = _golden.replay(name, jnp.float32)
  ref64 = {k: data[f"{name}/f64/{k}"] for k in meta["leaves"]}
  torch_err = _golden.relative_error(ref32, ref64)
  assert _golden.relative_error(ours, ref64) <= 2 * max(torch_err, 1e-7)
  assert _golden.relative_error(ours, ref32) <= 3e-5


@pytest.mark.parametrize("name", ["adam_variance_9", "adam_update_5",
                                  "adam_wave_9", "rms_momentum_wd"])
def test_conv_impl_matches_reference(name):
  """float64 lax.conv: 1e-9 on CPU. On an H100, XLA's float64 convolution
  (cuDNN) is slightly less exact: 1.3e-9 .. 2.5e-8 after the replayed steps
  (the wave mode amplifies most), while 'shift' and 'flat' stay at 7e-16."""
  with enable_x64(True):
    with _laplacian.using_impl("conv"):
      ours, ref = _golden.replay(name, jnp.float64)
  bound = 1e-9 if jax.default_backend() == "cpu" else 1e-7
  assert _golden.relative_error(ours, ref) <= bound


def _numpy_ladam_floor(params, grads, lr, c2, floor, b1=0.9, b2=0.999,
                       eps=1e-8):
  """NumPy transcription of variance_lap with an explicit floor (2-D leaf)."""
  p = params.copy()
  m = np.zeros_like(p)
  v = np.zeros_like(p)
  for t, g in enumerate(grads, start=1):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    mh = m / (1 - b1 ** t)
    vh = v / (1 - b2 ** t)
    vs = np.maximum(vh + c2 * numpy_laplacian_2d(vh), floor)
    p = p - lr * mh / (np.sqrt(vs) + eps)
  return p


@pytest.mark.parametrize("floor", [0.0, "eps", 1e-6])
def test_variance_floor_matches_transcription(floor):
  """variance_floor=0.0 (the default) is the reference's documented maths
  and experiment scripts; 'eps' is the package's clamp."""
  rng = np.random.default_rng(0)
  p0 = rng.standard_normal((8, 9))
  grads = rng.standard_normal((12, 8, 9)) * np.linspace(0.1, 2, 9)
  c2 = 0.4  # large enough that v + c2 L(v) goes negative somewhere
  with enable_x64(True):
    opt = ladam_jax.ladam(1e-2, c2=c2, variance_floor=floor,
                          allow_unstable_c2=True)
    params = jnp.asarray(p0)
    state = opt.init(params)
    for g in grads:
      updates, state = opt.update(jnp.asarray(g), state, params)
      params = optax.apply_updates(params, updates)
  expected = _numpy_ladam_floor(p0, grads, 1e-2, c2,
                                1e-8 if floor == "eps" else floor)
  np.testing.assert_allclose(np.asarray(params), expected, rtol=1e-10,
                             atol=1e-12)


def test_floor_variants_differ_where_smoothed_variance_is_negative():
  rng = np.random.default_rng(1)
  g = jnp.asarray(rng.standard_normal((8, 9)) * np.linspace(0.1, 2, 9),
                  jnp.float32)
  unstable = dict(c2=0.4, allow_unstable_c2=True)  # above the bound 3/16
  tx_eps = ladam_jax.scale_by_laplacian_adam(**unstable, variance_floor="eps")
  u_eps, _ = tx_eps.update(g, tx_eps.init(g))
  tx0 = ladam_jax.scale_by_laplacian_adam(**unstable, variance_floor=0.0)
  u_zero, _ = tx0.update(g, tx0.init(g))
  assert np.all(np.isfinite(u_zero)) and np.all(np.isfinite(u_eps))
  assert not np.allclose(u_eps, u_zero)
