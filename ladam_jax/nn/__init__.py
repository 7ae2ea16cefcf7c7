r"""The reference's normalization layers as Flax linen modules.

``ladam`` 0.4.1 exports three layers beside its optimizers
(``from ladam import WaveNorm, WaveNormDamped, ChiNorm``); these are them,
channels-last as every Flax layer: inputs ``(B, C)``, ``(B, H, W, C)`` or
``(B, ..., C)``, the reference's ``(B, C, H, W)`` being our ``(B, H, W, C)``.
Parameter names are the reference's (``dt``, ``c``, ``chi``, ``gamma``,
``beta``, ``damping_raw``, ``chi0``, ``g``) and so are the constructor
arguments; ChiNorm's running energy is the ``batch_stats`` entry
``running_energy`` (with ``num_batches_tracked``). The nnx versions are in
:mod:`ladam_jax.nn.nnx`. Needs ``flax`` (``pip install 'ladam-jax[flax]'``).

Examples:
  >>> import jax, jax.numpy as jnp
  >>> from ladam_jax import nn as lnn
  >>> x = jnp.ones((8, 4, 4, 16))
  >>> norm = lnn.ChiNorm()
  >>> variables = norm.init(jax.random.key(0), x, use_running_average=False)
  >>> y, updates = norm.apply(variables, x, use_running_average=False,
  ...                         mutable=['batch_stats'])
  >>> y.shape, updates['batch_stats']['running_energy'].shape
  ((8, 4, 4, 16), (16,))

References:
  ``ladam`` 0.4.1, ``ladam/normalization.py`` and its workshop paper.
"""


from typing import Any, Optional

try:
  import flax.linen as nn
except ModuleNotFoundError as e:  # only the library's own dependencies
  if (e.name or "").split(".")[0] != "flax":
    raise
  raise ImportError(
      "ladam_jax.nn needs Flax, which is not installed: "
      'pip install "ladam-jax[flax]"') from e
import jax
import jax.numpy as jnp

from ladam_jax.nn import _maths

__all__ = ["WaveNorm", "WaveNormDamped", "ChiNorm"]


def _const(value):
  return lambda key, shape, dtype: jnp.full(shape, value, dtype)


class WaveNorm(nn.Module):
  r"""Normalization by leapfrog evolution of a wave along the channels.

  With :math:`E_{-1} = E_0 = x` and the periodic Laplacian :math:`\Delta`
  along the channel axis, ``n_steps`` steps of

  .. math::
    E_{t+1} = 2E_t - E_{t-1} + \Delta t^2\,(c^2 \Delta E_t - \chi^2 E_t),

  then :math:`\gamma E_n + \beta`. :math:`\Delta t` and :math:`c` are
  learnable scalars, :math:`\chi, \gamma, \beta` learnable per channel.
  No batch statistics: the same in training and evaluation.

  Attributes:
    num_features: the channel count (None: the input's last axis; given, it
      is checked).
    n_steps: leapfrog steps.
    dt: initial :math:`\Delta t` (param ``dt``).
    c: initial wave speed (param ``c``).
    chi: initial mass per channel (param ``chi``).
    param_dtype: dtype of the parameters.
  """

  num_features: Optional[int] = None
  n_steps: int = 3
  dt: float = 0.1
  c: float = 1.0
  chi: float = 1.0
  param_dtype: Any = jnp.float32

  def _params(self, channels):
    return (self.param("dt", _const(self.dt), (), self.param_dtype),
            self.param("c", _const(self.c), (), self.param_dtype),
            self.param("chi", _const(self.chi), (channels,),
                       self.param_dtype))

  def _affine(self, e, channels):
    gamma = self.param("gamma", nn.initializers.ones, (channels,),
                       self.param_dtype)
    beta = self.param("beta", nn.initializers.zeros, (channels,),
                      self.param_dtype)
    return gamma * e + beta

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    channels = _maths.check_input(x, self.num_features, type(self).__name__)
    dt, c, chi = self._params(channels)
    e = _maths.wave_evolution(x, dt, c, chi, self.n_steps)
    return self._affine(e, channels)


class WaveNormDamped(WaveNorm):
  r""":class:`WaveNorm` with a learnable damping per channel.

  .. math::
    E_{t+1} = 2E_t - E_{t-1} + \Delta t^2\,(c^2 \Delta E_t - \chi^2 E_t)
      - d\,(E_t - E_{t-1}), \qquad d = \mathrm{sigmoid}(d_{raw}),

  with ``damping_raw`` initialised to the logit of ``init_damping`` (clipped
  into [0.001, 0.999], as the reference does).

  Attributes:
    init_damping: the initial damping :math:`d` in [0, 1].
  """

  init_damping: float = 0.5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    channels = _maths.check_input(x, self.num_features, type(self).__name__)
    dt, c, chi = self._params(channels)
    raw = self.param("damping_raw",
                     _const(_maths.damping_logit(self.init_damping)),
                     (channels,), self.param_dtype)
    e = _maths.wave_evolution(x, dt, c, chi, self.n_steps,
                              damping=jax.nn.sigmoid(raw))
    return self._affine(e, channels)


class ChiNorm(nn.Module):
  r"""Adaptive gain from the channels' energy.

  .. math::
    \chi = \sqrt{\max(\chi_0^2 - g\,\langle |x|^2 \rangle,\ \epsilon)},
    \qquad y = \gamma\, x / \chi + \beta,

  :math:`\langle |x|^2\rangle` the mean of :math:`x^2` over every axis but
  the channels: the batch's in training (which also updates the running
  energy, :math:`r \leftarrow (1-\tau) r + \tau \langle|x|^2\rangle`, and
  ``num_batches_tracked``), the running one with
  ``use_running_average=True``. :math:`\chi_0, g, \gamma, \beta` are
  learnable per channel. Like the reference's buffers, the running energy
  starts at zero; it is not updated while the module is initialised.

  Attributes:
    num_features: the channel count (None: the input's last axis).
    chi0_init: initial :math:`\chi_0` (param ``chi0``).
    g_init: initial coupling :math:`g` (param ``g``).
    tau: running-average momentum.
    eps: the floor of :math:`\chi^2`.
    use_running_average: evaluation mode; ``__call__``'s argument, when
      given, overrides it (as ``flax.linen.BatchNorm``).
    param_dtype: dtype of the parameters.
  """

  num_features: Optional[int] = None
  chi0_init: float = 1.0
  g_init: float = 0.1
  tau: float = 0.1
  eps: float = 1e-5
  use_running_average: Optional[bool] = None
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array,
               use_running_average: Optional[bool] = None) -> jax.Array:
    use_ra = nn.merge_param("use_running_average", self.use_running_average,
                            use_running_average)
    channels = _maths.check_input(x, self.num_features, "ChiNorm")
    chi0 = self.param("chi0", _const(self.chi0_init), (channels,),
                      self.param_dtype)
    g = self.param("g", _const(self.g_init), (channels,), self.param_dtype)
    gamma = self.param("gamma", nn.initializers.ones, (channels,),
                       self.param_dtype)
    beta = self.param("beta", nn.initializers.zeros, (channels,),
                      self.param_dtype)
    running = self.variable("batch_stats", "running_energy",
                            lambda: jnp.zeros((channels,), self.param_dtype))
    tracked = self.variable("batch_stats", "num_batches_tracked",
                            lambda: jnp.zeros((), jnp.int32))
    if use_ra:
      current = running.value
    else:
      current = _maths.energy(x)
      if not self.is_initializing():
        running.value = ((1 - self.tau) * running.value
                         + self.tau * jax.lax.stop_gradient(current))
        tracked.value = tracked.value + 1
    return _maths.chi_normalize(x, chi0, g, gamma, beta, current, self.eps)
