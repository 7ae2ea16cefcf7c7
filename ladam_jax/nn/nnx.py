r"""The reference's normalization layers as Flax nnx modules.

The same layers and maths as :mod:`ladam_jax.nn` (see there), as
``flax.nnx.Module``: parameters are ``nnx.Param`` named as the reference's,
ChiNorm's running energy an ``nnx.BatchStat``; ``model.eval()`` /
``model.train()`` switch ChiNorm's ``use_running_average`` as they do
``nnx.BatchNorm``'s.

Examples:
  >>> import jax.numpy as jnp
  >>> from ladam_jax.nn import nnx as lnnx
  >>> norm = lnnx.WaveNormDamped(16, init_damping=0.3)
  >>> norm(jnp.ones((8, 4, 4, 16))).shape
  (8, 4, 4, 16)
"""


from typing import Any, Optional

# Without Flax, importing this module fails in ladam_jax.nn (the package)
# with an ImportError that names the [flax] extra.
from flax import nnx
import jax
import jax.numpy as jnp

from ladam_jax.nn import _maths

__all__ = ["WaveNorm", "WaveNormDamped", "ChiNorm"]


class WaveNorm(nnx.Module):
  r"""Leapfrog wave evolution along the channels, then an affine map (see
  :class:`ladam_jax.nn.WaveNorm`).

  Args:
    num_features: the channel count (the input's last axis).
    n_steps: leapfrog steps.
    dt: initial :math:`\Delta t`.
    c: initial wave speed.
    chi: initial mass per channel.
    param_dtype: dtype of the parameters.
    rngs: unused (no random initialisation); accepted for uniformity.
  """

  def __init__(self, num_features: int, n_steps: int = 3, dt: float = 0.1,
               c: float = 1.0, chi: float = 1.0, *,
               param_dtype: Any = jnp.float32,
               rngs: Optional[nnx.Rngs] = None):
    del rngs
    self.num_features = num_features
    self.n_steps = n_steps
    self.dt = nnx.Param(jnp.asarray(dt, param_dtype))
    self.c = nnx.Param(jnp.asarray(c, param_dtype))
    self.chi = nnx.Param(jnp.full((num_features,), chi, param_dtype))
    self.gamma = nnx.Param(jnp.ones((num_features,), param_dtype))
    self.beta = nnx.Param(jnp.zeros((num_features,), param_dtype))

  def _damping(self):
    return None

  def __call__(self, x: jax.Array) -> jax.Array:
    _maths.check_input(x, self.num_features, type(self).__name__)
    e = _maths.wave_evolution(x, self.dt[...], self.c[...], self.chi[...],
                              self.n_steps, damping=self._damping())
    return self.gamma[...] * e + self.beta[...]


class WaveNormDamped(WaveNorm):
  r""":class:`WaveNorm` with a learnable damping per channel (see
  :class:`ladam_jax.nn.WaveNormDamped`).

  Args:
    num_features: the channel count.
    n_steps: leapfrog steps.
    dt: initial :math:`\Delta t`.
    c: initial wave speed.
    chi: initial mass per channel.
    init_damping: initial damping in [0, 1] (``damping_raw`` its logit).
    param_dtype: dtype of the parameters.
    rngs: unused.
  """

  def __init__(self, num_features: int, n_steps: int = 3, dt: float = 0.1,
               c: float = 1.0, chi: float = 1.0, init_damping: float = 0.5,
               *, param_dtype: Any = jnp.float32,
               rngs: Optional[nnx.Rngs] = None):
    super().__init__(num_features, n_steps, dt, c, chi,
                     param_dtype=param_dtype, rngs=rngs)
    self.damping_raw = nnx.Param(jnp.full(
        (num_features,), _maths.damping_logit(init_damping), param_dtype))

  def _damping(self):
    return jax.nn.sigmoid(self.damping_raw[...])


class ChiNorm(nnx.Module):
  r"""Adaptive gain :math:`\gamma x / \chi + \beta` from the channels'
  energy (see :class:`ladam_jax.nn.ChiNorm`).

  Args:
    num_features: the channel count.
    chi0_init: initial :math:`\chi_0`.
    g_init: initial coupling :math:`g`.
    tau: running-average momentum.
    eps: the floor of :math:`\chi^2`.
    use_running_average: evaluation mode (``__call__``'s argument, when
      given, overrides it; ``model.eval()`` sets it).
    param_dtype: dtype of the parameters.
    rngs: unused.
  """

  def __init__(self, num_features: int, chi0_init: float = 1.0,
               g_init: float = 0.1, tau: float = 0.1, eps: float = 1e-5, *,
               use_running_average: bool = False,
               param_dtype: Any = jnp.float32,
               rngs: Optional[nnx.Rngs] = None):
    del rngs
    self.num_features = num_features
    self.tau = tau
    self.eps = eps
    self.use_running_average = use_running_average
    self.chi0 = nnx.Param(jnp.full((num_features,), chi0_init, param_dtype))
    self.g = nnx.Param(jnp.full((num_features,), g_init, param_dtype))
    self.gamma = nnx.Param(jnp.ones((num_features,), param_dtype))
    self.beta = nnx.Param(jnp.zeros((num_features,), param_dtype))
    self.running_energy = nnx.BatchStat(jnp.zeros((num_features,),
                                                  param_dtype))
    self.num_batches_tracked = nnx.BatchStat(jnp.zeros((), jnp.int32))

  def __call__(self, x: jax.Array,
               use_running_average: Optional[bool] = None) -> jax.Array:
    use_ra = (self.use_running_average if use_running_average is None
              else use_running_average)
    _maths.check_input(x, self.num_features, "ChiNorm")
    if use_ra:
      current = self.running_energy[...]
    else:
      current = _maths.energy(x)
      self.running_energy[...] = ((1 - self.tau) * self.running_energy[...]
                                  + self.tau * jax.lax.stop_gradient(current))
      self.num_batches_tracked[...] = self.num_batches_tracked[...] + 1
    return _maths.chi_normalize(x, self.chi0[...], self.g[...],
                                self.gamma[...], self.beta[...], current,
                                self.eps)
