"""LaProp and VRAdam against NumPy transcriptions of the published rules."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ladam_jax
from _helpers import enable_x64, numpy_laplacian_2d


def grads_seq(steps=12, shape=(6, 7), seed=0):
  rng = np.random.default_rng(seed)
  return rng.standard_normal((steps,) + shape) * np.linspace(0.2, 2, shape[1])


def run(opt, p0, grads):
  with enable_x64(True):
    params = jnp.asarray(p0)
    state = opt.init(params)
    for g in grads:
      updates, state = opt.update(jnp.asarray(g), state, params)
      params = optax.apply_updates(params, updates)
    return np.asarray(params)


def numpy_laprop(p, grads, lr, b1, b2, eps, wd=0.0, c2=0.0):
  m = np.zeros_like(p)
  n = np.zeros_like(p)
  for t, g in enumerate(grads, start=1):
    n = b2 * n + (1 - b2) * g * g
    nh = n / (1 - b2 ** t)
    if c2:
      nh = np.maximum(nh + c2 * numpy_laplacian_2d(nh, "9point"), eps)
    m = b1 * m + (1 - b1) * g / (np.sqrt(nh) + eps)
    p = p - lr * (m / (1 - b1 ** t) + wd * p)
  return p


def numpy_vradam(p, grads, lr, b1, b2, eps, beta3, cutoff, wd=0.0, c2=0.0,
                 velocity="momentum"):
  m = np.zeros_like(p)
  v = np.zeros_like(p)
  for t, g in enumerate(grads, start=1):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    s = np.sum((m if velocity == "momentum" else g) ** 2)
    eta = lr / (1 + min(beta3 * s, cutoff))
    mh, vh = m / (1 - b1 ** t), v / (1 - b2 ** t)
    if c2:
      vh = np.maximum(vh + c2 * numpy_laplacian_2d(vh, "9point"), eps)
    p = p * (1 - wd * eta) - eta * mh / (np.sqrt(vh) + eps)
  return p


@pytest.mark.parametrize("c2, wd", [(0.0, 0.0), (0.05, 0.0), (0.05, 0.1)])
def test_laprop_matches_transcription(c2, wd):
  p0 = np.random.default_rng(1).standard_normal((6, 7))
  grads = grads_seq()
  got = run(ladam_jax.laprop(1e-2, 0.8, 0.99, 1e-15, weight_decay=wd, c2=c2),
            p0, grads)
  np.testing.assert_allclose(got, numpy_laprop(p0, grads, 1e-2, 0.8, 0.99,
                                               1e-15, wd, c2),
                             rtol=1e-9, atol=1e-12)


def test_laprop_b1_zero_is_bias_corrected_rmsprop():
  p0 = np.random.default_rng(2).standard_normal((6, 7))
  grads = grads_seq()
  ours = run(ladam_jax.laprop(1e-2, b1=0.0, b2=0.99, eps=1e-8), p0, grads)
  ref = run(optax.chain(optax.scale_by_rms(0.99, 1e-8, eps_in_sqrt=False,
                                           bias_correction=True),
                        optax.scale_by_learning_rate(1e-2)), p0, grads)
  np.testing.assert_allclose(ours, ref, rtol=1e-12)


@pytest.mark.parametrize("velocity", ["momentum", "gradient"])
@pytest.mark.parametrize("c2, wd, beta3", [(0.0, 0.0, 1.0), (0.05, 0.1, 1.0),
                                           (0.0, 0.1, 50.0)])
def test_vradam_matches_transcription(velocity, c2, wd, beta3):
  p0 = np.random.default_rng(3).standard_normal((6, 7))
  grads = grads_seq()
  got = run(ladam_jax.vradam(1e-2, weight_decay=wd, beta3=beta3,
                             lr_cutoff=10.0, velocity=velocity, c2=c2),
            p0, grads)
  want = numpy_vradam(p0, grads, 1e-2, 0.9, 0.999, 1e-8, beta3, 10.0, wd, c2,
                      velocity)
  np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_vradam_beta3_zero_is_adam_and_wraps_optax_adam():
  p0 = np.random.default_rng(4).standard_normal((6, 7))
  grads = grads_seq()
  ours = run(ladam_jax.vradam(1e-2, beta3=0.0), p0, grads)
  ref = run(optax.adam(1e-2), p0, grads)
  np.testing.assert_allclose(ours, ref, rtol=1e-12)
  wrapped = optax.chain(
      ladam_jax.scale_by_velocity_regularization(optax.scale_by_adam()),
      optax.scale_by_learning_rate(1e-2))
  np.testing.assert_allclose(run(wrapped, p0, grads),
                             run(ladam_jax.vradam(1e-2), p0, grads),
                             rtol=1e-12)


def test_velocity_regularization_needs_a_momentum():
  tx = ladam_jax.scale_by_velocity_regularization(
      ladam_jax.scale_by_laplacian_rms())
  with pytest.raises(ValueError, match="mu"):
    tx.init({"w": jnp.ones((4, 4))})
  with pytest.raises(ValueError, match="velocity"):
    ladam_jax.scale_by_velocity_regularization(optax.scale_by_adam(),
                                               velocity="speed")
  with pytest.raises(ValueError, match="beta3"):
    ladam_jax.vradam(beta3=-1.0)
