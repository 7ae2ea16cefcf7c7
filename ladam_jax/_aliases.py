"""Ready-made optimizers: ``ladam``, ``ladamw``, ``lrmsprop``, ``ladagrad``.

Each is an ``optax.chain`` ending in ``optax.scale_by_learning_rate`` (so the
learning rate may be a float or an Optax schedule, and every numeric argument
survives ``optax.inject_hyperparams``), and reproduces the corresponding
PyTorch class of ``ladam`` 0.4.1 step for step.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import jax
import optax

from ladam_jax import _transforms
from ladam_jax import _validation

__all__ = ["ladam", "ladamw", "lrmsprop", "ladagrad"]

ScalarOrSchedule = optax.ScalarOrSchedule


def check_learning_rate(learning_rate):
  if not callable(learning_rate):
    _validation.check_non_negative("learning_rate", learning_rate)


def _adam_chain(learning_rate, weight_decay, mask, *, b1, b2, eps, c2, mode,
                stencil, min_spatial_size, layout, variance_floor, mu_dtype,
                impl, wave, allow_unstable_c2=False, nu_dtype=None):
  check_learning_rate(learning_rate)
  _validation.check_choice("mode", mode, _transforms.ADAM_MODES)
  scale_mode = "variance_lap" if mode == "weight_lap" else mode
  parts = [
      _transforms.scale_by_laplacian_adam(
          b1, b2, eps,
          # In weight_lap mode the scale-by part is plain Adam.
          c2=0.0 if mode == "weight_lap" else c2,
          mode=scale_mode, stencil=stencil, min_spatial_size=min_spatial_size,
          layout=layout, variance_floor=variance_floor, mu_dtype=mu_dtype,
          nu_dtype=nu_dtype, impl=impl, allow_unstable_c2=allow_unstable_c2,
          **wave),
  ]
  if weight_decay is not None:
    parts.append(optax.add_decayed_weights(weight_decay, mask))
  parts.append(optax.scale_by_learning_rate(learning_rate))
  if mode == "weight_lap":
    parts.append(_transforms.add_weight_laplacian(
        c2, stencil=stencil, min_spatial_size=min_spatial_size, layout=layout,
        impl=impl, allow_unstable_c2=allow_unstable_c2))
  return optax.chain(*parts)


def ladam(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    *,
    c2: Any = 1e-4,
    mode: str = "variance_lap",
    stencil: str = "9point",
    min_spatial_size: jax.typing.ArrayLike = 16,
    layout: Any = "flax",
    variance_floor: Optional[jax.typing.ArrayLike] = None,
    mu_dtype: Optional[jax.typing.DTypeLike] = None,
    nu_dtype: Optional[jax.typing.DTypeLike] = None,
    wave_dt: jax.typing.ArrayLike = 0.1,
    wave_kappa: jax.typing.ArrayLike = 0.1,
    wave_E0: jax.typing.ArrayLike = 0.0,  # pylint: disable=invalid-name
    wave_damping: jax.typing.ArrayLike = 0.5,
    impl: Optional[str] = None,
    allow_unstable_c2: bool = False,
) -> optax.GradientTransformation:
  r"""LAdam: Adam with a Laplacian-smoothed second moment (``ladam.LAdam``).

  The update of :func:`ladam_jax.scale_by_laplacian_adam` times
  ``-learning_rate``; with ``mode='weight_lap'``, a plain Adam step followed by
  the diffusion :math:`p \leftarrow p + c_2 L(p)` of the stepped weights
  (:func:`ladam_jax.add_weight_laplacian`). ``c2=0`` is ``optax.adam``.

  Examples:
    >>> import jax, jax.numpy as jnp, optax, ladam_jax
    >>> def loss(p):
    ...   return jnp.sum((p['w'] - 1.0) ** 2)
    >>> params = {'w': jnp.zeros((16, 16))}
    >>> opt = ladam_jax.ladam(learning_rate=1e-1, c2=1e-4)
    >>> state = opt.init(params)
    >>> for _ in range(100):
    ...   grads = jax.grad(loss)(params)
    ...   updates, state = opt.update(grads, state, params)
    ...   params = optax.apply_updates(params, updates)
    >>> bool(loss(params) < 1e-2)
    True

  Args:
    learning_rate: a float >= 0 or an Optax schedule.
    b1: decay of the first moment, in [0, 1).
    b2: decay of the second moment, in [0, 1).
    eps: added to the denominator's square root, >= 0.
    c2: coupling strength >= 0 (number, schedule, pytree or params callable).
    mode: ``'variance_lap'`` (default), ``'update_lap'``, ``'weight_lap'`` or
      ``'wave_variance'``.
    stencil: ``'9point'`` (default) or ``'5point'``.
    min_spatial_size: leaves with fewer elements are never smoothed.
    layout: field layout(s): ``'flax'`` (default), ``'torch'``, a
      :class:`ladam_jax.LaplacianLayout`, None, a pytree or a params callable.
    variance_floor: floor of the smoothed variance; None (default) means
      ``eps`` as in the package, ``0.0`` as in the reference's experiment scripts.
    mu_dtype: optional dtype of the first moment.
    nu_dtype: optional dtype of the second moment (e.g. float32 for
      bfloat16 parameters).
    wave_dt: time step of ``'wave_variance'``.
    wave_kappa: source strength of ``'wave_variance'``.
    wave_E0: background gradient level of ``'wave_variance'`` (0 = auto).
    wave_damping: damping of ``'wave_variance'``.
    impl: Laplacian implementation, ``'conv'``, ``'shift'``, ``'flat'``,
      ``'pallas'`` (a fused Triton kernel on GPU) or None.
    allow_unstable_c2: accept concrete c2 values above the stencil's
      stability bound (:func:`ladam_jax.stability_bound`: 3/16 for the 9-point
      stencil, 1/8 for the 5-point one on 2-D fields, 1/4 on 1-D leaves),
      which are otherwise refused here, and leave traced c2 values (schedules,
      ``inject_hyperparams``) unclipped; the reference allows any c2 >= 0.

  Returns:
    The optimizer as an :class:`optax.GradientTransformation`.

  References:
    Partin, LAdam, 2026 (PyPI ``ladam`` 0.4.1).
  """
  return _adam_chain(
      learning_rate, None, None, b1=b1, b2=b2, eps=eps, c2=c2, mode=mode,
      stencil=stencil, min_spatial_size=min_spatial_size, layout=layout,
      variance_floor=variance_floor, mu_dtype=mu_dtype, nu_dtype=nu_dtype,
      impl=impl,
      allow_unstable_c2=allow_unstable_c2,
      wave=_wave_kwargs(wave_dt, wave_kappa, wave_E0, wave_damping))


def _wave_kwargs(wave_dt, wave_kappa, wave_E0, wave_damping):  # pylint: disable=invalid-name
  return dict(wave_dt=wave_dt, wave_kappa=wave_kappa, wave_E0=wave_E0,
              wave_damping=wave_damping)


def ladamw(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    weight_decay: jax.typing.ArrayLike = 1e-4,
    mask: Optional[Union[Any, Callable[[optax.Params], Any]]] = None,
    *,
    c2: Any = 1e-4,
    mode: str = "variance_lap",
    stencil: str = "9point",
    min_spatial_size: jax.typing.ArrayLike = 16,
    layout: Any = "flax",
    variance_floor: Optional[jax.typing.ArrayLike] = None,
    mu_dtype: Optional[jax.typing.DTypeLike] = None,
    nu_dtype: Optional[jax.typing.DTypeLike] = None,
    wave_dt: jax.typing.ArrayLike = 0.1,
    wave_kappa: jax.typing.ArrayLike = 0.1,
    wave_E0: jax.typing.ArrayLike = 0.0,  # pylint: disable=invalid-name
    wave_damping: jax.typing.ArrayLike = 0.5,
    impl: Optional[str] = None,
    allow_unstable_c2: bool = False,
) -> optax.GradientTransformation:
  r"""LAdamW: :func:`ladam` with decoupled weight decay (``ladam.LAdamW``).

  The reference first decays the weights, :math:`p \leftarrow p(1 -
  \eta\lambda)`, then takes the LAdam step; here that is
  ``optax.add_decayed_weights(weight_decay, mask)`` before the learning rate,
  as in ``optax.adamw``.

  Examples:
    >>> import jax.numpy as jnp, optax, ladam_jax
    >>> schedule = optax.warmup_cosine_decay_schedule(0.0, 1e-3, 10, 100)
    >>> opt = optax.chain(optax.clip_by_global_norm(1.0),
    ...                   ladam_jax.ladamw(schedule, weight_decay=1e-2))
    >>> state = opt.init({'w': jnp.ones((8, 8))})

  Args:
    learning_rate: a float >= 0 or an Optax schedule.
    b1: decay of the first moment, in [0, 1).
    b2: decay of the second moment, in [0, 1).
    eps: added to the denominator's square root, >= 0.
    weight_decay: decoupled weight decay rate.
    mask: which leaves are decayed (a pytree of bools or a params callable), as
      in ``optax.adamw``.
    c2: coupling strength >= 0 (number, schedule, pytree or params callable).
    mode: as in :func:`ladam`.
    stencil: ``'9point'`` or ``'5point'``.
    min_spatial_size: leaves with fewer elements are never smoothed.
    layout: field layout(s), as in :func:`ladam`.
    variance_floor: floor of the smoothed variance (None = eps).
    mu_dtype: optional dtype of the first moment.
    nu_dtype: optional dtype of the second moment (e.g. float32 for
      bfloat16 parameters).
    wave_dt: time step of ``'wave_variance'``.
    wave_kappa: source strength of ``'wave_variance'``.
    wave_E0: background gradient level of ``'wave_variance'`` (0 = auto).
    wave_damping: damping of ``'wave_variance'``.
    impl: Laplacian implementation, ``'conv'``, ``'shift'``, ``'flat'``,
      ``'pallas'`` (a fused Triton kernel on GPU) or None.
    allow_unstable_c2: accept concrete c2 values above the stencil's
      stability bound (:func:`ladam_jax.stability_bound`: 3/16 for the 9-point
      stencil, 1/8 for the 5-point one on 2-D fields, 1/4 on 1-D leaves),
      which are otherwise refused here, and leave traced c2 values (schedules,
      ``inject_hyperparams``) unclipped; the reference allows any c2 >= 0.

  Returns:
    The optimizer as an :class:`optax.GradientTransformation`.
  """
  _validation.check_non_negative("weight_decay", weight_decay)
  return _adam_chain(
      learning_rate, weight_decay, mask, b1=b1, b2=b2, eps=eps, c2=c2,
      mode=mode, stencil=stencil, min_spatial_size=min_spatial_size,
      layout=layout, variance_floor=variance_floor, mu_dtype=mu_dtype,
      nu_dtype=nu_dtype, impl=impl, allow_unstable_c2=allow_unstable_c2,
      wave=_wave_kwargs(wave_dt, wave_kappa, wave_E0, wave_damping))


def decay_and_lr(parts, learning_rate, weight_decay, mask=None):
  """Appends decoupled weight decay (unless a Python 0) and the lr."""
  _validation.check_non_negative("weight_decay", weight_decay)
  if not _validation.is_static_zero(weight_decay):
    parts.append(optax.add_decayed_weights(weight_decay, mask))
  parts.append(optax.scale_by_learning_rate(learning_rate))
  return optax.chain(*parts)


def lrmsprop(
    learning_rate: ScalarOrSchedule = 1e-2,
    decay: jax.typing.ArrayLike = 0.99,
    eps: jax.typing.ArrayLike = 1e-8,
    momentum: jax.typing.ArrayLike = 0.0,
    weight_decay: jax.typing.ArrayLike = 0.0,
    *,
    c2: Any = 1e-4,
    stencil: str = "9point",
    min_spatial_size: jax.typing.ArrayLike = 16,
    layout: Any = "flax",
    initial_scale: jax.typing.ArrayLike = 0.0,
    impl: Optional[str] = None,
    allow_unstable_c2: bool = False,
) -> optax.GradientTransformation:
  r"""LRMSProp: RMSProp with a Laplacian-smoothed average (``ladam.LRMSProp``).

  Decoupled weight decay :math:`p \leftarrow p(1-\eta\lambda)`, then
  :math:`b \leftarrow \mu b + g/(\sqrt{\tilde a} + \epsilon)`,
  :math:`p \leftarrow p - \eta b` (no momentum buffer when ``momentum`` is a
  Python 0). ``c2=0`` is ``optax.rmsprop(eps_in_sqrt=False)``.

  Examples:
    >>> import jax.numpy as jnp, ladam_jax
    >>> opt = ladam_jax.lrmsprop(1e-2, momentum=0.9, c2=1e-4)
    >>> state = opt.init({'w': jnp.ones((8, 8))})

  Args:
    learning_rate: a float >= 0 or an Optax schedule.
    decay: decay of the running average (PyTorch's ``alpha``), in [0, 1).
    eps: added to the square root, >= 0.
    momentum: momentum factor >= 0.
    weight_decay: decoupled weight decay rate >= 0.
    c2: coupling strength >= 0 (number, schedule, pytree or params callable).
    stencil: ``'9point'`` or ``'5point'``.
    min_spatial_size: leaves with fewer elements are never smoothed.
    layout: field layout(s), as in :func:`ladam`.
    initial_scale: initial value of the running average.
    impl: Laplacian implementation or None.
    allow_unstable_c2: accept concrete c2 values above the stencil's
      stability bound (:func:`ladam_jax.stability_bound`: 3/16 for the 9-point
      stencil, 1/8 for the 5-point one on 2-D fields, 1/4 on 1-D leaves),
      which are otherwise refused here, and leave traced c2 values (schedules,
      ``inject_hyperparams``) unclipped; the reference allows any c2 >= 0.

  Returns:
    The optimizer as an :class:`optax.GradientTransformation`.
  """
  check_learning_rate(learning_rate)
  _validation.check_non_negative("momentum", momentum)
  parts = [_transforms.scale_by_laplacian_rms(
      decay, eps, initial_scale=initial_scale, c2=c2, stencil=stencil,
      min_spatial_size=min_spatial_size, layout=layout, impl=impl,
      allow_unstable_c2=allow_unstable_c2)]
  if not _validation.is_static_zero(momentum):
    parts.append(optax.trace(decay=momentum))
  return decay_and_lr(parts, learning_rate, weight_decay)


def ladagrad(
    learning_rate: ScalarOrSchedule = 1e-2,
    lr_decay: jax.typing.ArrayLike = 0.0,
    eps: jax.typing.ArrayLike = 1e-10,
    weight_decay: jax.typing.ArrayLike = 0.0,
    *,
    c2: Any = 1e-4,
    stencil: str = "9point",
    min_spatial_size: jax.typing.ArrayLike = 16,
    layout: Any = "flax",
    initial_accumulator_value: jax.typing.ArrayLike = 0.0,
    impl: Optional[str] = None,
    allow_unstable_c2: bool = False,
) -> optax.GradientTransformation:
  r"""LAdaGrad: AdaGrad with a Laplacian-smoothed accumulator (``ladam.LAdaGrad``).

  Decoupled weight decay with the base learning rate,
  :math:`p \leftarrow p(1-\eta\lambda)`, then
  :math:`p \leftarrow p - \frac{\eta}{1 + (t-1)\,\text{lr\_decay}}\,
  g/(\sqrt{\tilde s} + \epsilon)`.

  Examples:
    >>> import jax.numpy as jnp, ladam_jax
    >>> opt = ladam_jax.ladagrad(1e-2, lr_decay=1e-3, c2=1e-4)
    >>> state = opt.init({'w': jnp.ones((8, 8))})

  Args:
    learning_rate: a float >= 0 or an Optax schedule.
    lr_decay: the step size is divided by ``1 + (t-1)·lr_decay``; >= 0.
    eps: added to the square root, >= 0.
    weight_decay: decoupled weight decay rate >= 0 (scaled by the base lr).
    c2: coupling strength >= 0 (number, schedule, pytree or params callable).
    stencil: ``'9point'`` or ``'5point'``.
    min_spatial_size: leaves with fewer elements are never smoothed.
    layout: field layout(s), as in :func:`ladam`.
    initial_accumulator_value: initial value of the accumulator.
    impl: Laplacian implementation or None.
    allow_unstable_c2: accept concrete c2 values above the stencil's
      stability bound (:func:`ladam_jax.stability_bound`: 3/16 for the 9-point
      stencil, 1/8 for the 5-point one on 2-D fields, 1/4 on 1-D leaves),
      which are otherwise refused here, and leave traced c2 values (schedules,
      ``inject_hyperparams``) unclipped; the reference allows any c2 >= 0.

  Returns:
    The optimizer as an :class:`optax.GradientTransformation`.
  """
  check_learning_rate(learning_rate)
  _validation.check_non_negative("lr_decay", lr_decay)
  parts = [_transforms.scale_by_laplacian_adagrad(
      eps, initial_accumulator_value=initial_accumulator_value, c2=c2,
      stencil=stencil, min_spatial_size=min_spatial_size, layout=layout,
      impl=impl, allow_unstable_c2=allow_unstable_c2)]
  if not _validation.is_static_zero(lr_decay):
    # count is 0 at step 1: the factor is 1 / (1 + (t - 1) * lr_decay).
    parts.append(optax.scale_by_schedule(lambda count: 1 / (1 + count * lr_decay)))
  return decay_and_lr(parts, learning_rate, weight_decay)
