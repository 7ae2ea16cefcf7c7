"""PyTorch's default initialisation of ``nn.Linear`` / ``nn.ConvNd`` for Flax.

PyTorch initialises a weight with ``kaiming_uniform_(w, a=sqrt(5))``, which is
U(±1/sqrt(fan_in)), and its bias with U(±1/sqrt(fan_in)), where fan_in is
``in_features`` (Linear) or ``in_channels · prod(kernel_size)`` (Conv). Flax's
``variance_scaling(1/3, 'fan_in', 'uniform')`` draws a kernel from the same
distribution (bound sqrt(3 · (1/3) / fan_in)), with Flax's fan_in of a
``(*spatial, in, out)`` kernel equal to PyTorch's. The bias initializer needs
fan_in, which a bias's own shape does not carry, so it is built per layer.

``init='flax'`` gives Flax's defaults instead (LeCun normal kernels, zero
biases).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["INITS", "torch_kernel_init", "torch_bias_init", "dense", "conv"]

from ladam_jax.experiments._task import INITS  # noqa: E402  (re-exported)

torch_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in",
                                                     "uniform")


def torch_bias_init(fan_in: int):
  """U(±1/sqrt(fan_in)), PyTorch's bias initialisation."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def _check(init):
  if init not in INITS:
    raise ValueError(f"`init` must be one of {INITS}, got {init!r}.")


def dense(features: int, fan_in: int, init: str, name=None) -> nn.Dense:
  """``nn.Dense`` initialised as ``torch.nn.Linear`` (or Flax's default)."""
  _check(init)
  if init == "flax":
    return nn.Dense(features, name=name)
  return nn.Dense(features, kernel_init=torch_kernel_init,
                  bias_init=torch_bias_init(fan_in), name=name)


def conv(features: int, kernel_size: tuple[int, ...], in_features: int,
         init: str, name=None, strides: int = 1) -> nn.Conv:
  """'SAME'-padded ``nn.Conv`` initialised as ``torch.nn.ConvNd``."""
  _check(init)
  if init == "flax":
    return nn.Conv(features, kernel_size, strides=strides, padding="SAME",
                   name=name)
  fan_in = in_features * math.prod(kernel_size)
  return nn.Conv(features, kernel_size, strides=strides, padding="SAME",
                 kernel_init=torch_kernel_init,
                 bias_init=torch_bias_init(fan_in), name=name)
