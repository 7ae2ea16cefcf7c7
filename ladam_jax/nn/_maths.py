r"""The maths of the reference's normalization layers, on channels-last arrays.

Pure functions shared by the linen (:mod:`ladam_jax.nn`) and nnx
(:mod:`ladam_jax.nn.nnx`) modules. Flax's layout is channels-last
(``(B, C)``, ``(B, H, W, C)``, ``(B, ..., C)``); the reference
(``ladam.normalization``, PyTorch) takes ``(B, C)`` and ``(B, C, H, W)``.
Its ``(B, C, H, W)`` is our ``(B, H, W, C)``: it permutes to channels-last
itself before the wave evolution, and reduces over ``(0, 2, 3)`` (every axis
but the channels) for ChiNorm's energy, as we do over every axis but the
last.
"""


import jax
import jax.numpy as jnp

__all__ = ["check_input", "channel_laplacian", "wave_evolution",
           "chi_normalize", "energy", "damping_logit"]


def check_input(x: jax.Array, num_features, layer: str) -> int:
  """The channel count of ``x`` (its last axis), checked."""
  if x.ndim < 2:
    raise ValueError(
        f"{layer} takes inputs of rank >= 2 (batch, ..., channels), got "
        f"shape {x.shape}.")
  if num_features is not None and x.shape[-1] != num_features:
    raise ValueError(
        f"{layer}(num_features={num_features}) got an input with "
        f"{x.shape[-1]} channels on its last axis (shape {x.shape}); Flax "
        "layers are channels-last.")
  return x.shape[-1]


def channel_laplacian(e: jax.Array) -> jax.Array:
  """The periodic 1-D Laplacian ``[1, -2, 1]`` along the channels (last
  axis), summed in the reference's order."""
  padded = jnp.concatenate([e[..., -1:], e, e[..., :1]], axis=-1)
  return padded[..., 2:] - 2 * padded[..., 1:-1] + padded[..., :-2]


def wave_evolution(x: jax.Array, dt, c, chi, n_steps: int,
                   damping=None) -> jax.Array:
  r"""``n_steps`` leapfrog steps of :math:`E'' = c^2 \Delta E - \chi^2 E`.

  From :math:`E_{-1} = E_0 = x`:
  :math:`E_{t+1} = 2E_t - E_{t-1} + \Delta t^2 (c^2 \Delta E_t - \chi^2
  E_t) - d\,(E_t - E_{t-1})` (:math:`d = 0` without damping), the
  Laplacian along the channels, :math:`\chi` and :math:`d` per channel.
  """
  e_prev, e_curr = x, x
  chi2 = jnp.square(chi)
  for _ in range(n_steps):
    lap = channel_laplacian(e_curr)
    accel = dt ** 2 * (c ** 2 * lap - chi2 * e_curr)
    e_next = 2 * e_curr - e_prev + accel
    if damping is not None:
      e_next = e_next - damping * (e_curr - e_prev)
    e_prev, e_curr = e_curr, e_next
  return e_curr


def energy(x: jax.Array) -> jax.Array:
  """:math:`\\langle |x|^2 \\rangle` per channel: the mean over every axis
  but the last."""
  return jnp.mean(jnp.square(x), axis=tuple(range(x.ndim - 1)))


def chi_normalize(x, chi0, g, gamma, beta, current_energy, eps):
  r""":math:`\gamma\, x / \chi + \beta` with
  :math:`\chi = \sqrt{\max(\chi_0^2 - g\,\langle|x|^2\rangle, \epsilon)}`."""
  chi = jnp.sqrt(jnp.maximum(jnp.square(chi0) - g * current_energy, eps))
  return gamma * (x / chi) + beta


def damping_logit(init_damping: float) -> float:
  """The reference's initial ``damping_raw``: the logit of the damping,
  clipped into [0.001, 0.999]."""
  import math  # pylint: disable=import-outside-toplevel
  d = max(min(float(init_damping), 0.999), 0.001)
  return math.log(d / (1.0 - d))
