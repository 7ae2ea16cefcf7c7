"""The Flax models of ``ladam-bench``'s tasks.

Each takes ``init_scheme``: ``'torch'`` (PyTorch's default initialisation,
as the reference's scripts) or ``'flax'`` (Flax's defaults); see
:mod:`ladam_jax.experiments._torch_init`.
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from ladam_jax.experiments import _torch_init

__all__ = ["NormMLP", "NORMS", "DenoiseCNN", "TanhMLP", "Block", "DigitsTransformer", "SmallMLP",
           "ReluMLP", "ResidualBlock", "SmallResNet", "CharTransformer"]


class DenoiseCNN(nn.Module):
  """1-D CNN 1→C (k7) → C (k5) → C (k5) → 1 (k3), ReLU, 'SAME' padding."""
  channels: int = 32
  init_scheme: str = "torch"

  @nn.compact
  def __call__(self, x):
    in_features = x.shape[-1]
    for features, k in ((self.channels, 7), (self.channels, 5),
                        (self.channels, 5)):
      x = nn.relu(_torch_init.conv(features, (k,), in_features,
                                   self.init_scheme)(x))
      in_features = features
    return _torch_init.conv(1, (3,), in_features, self.init_scheme)(x)


# The normalization layers NormMLP compares (the workshop paper's E2d runs).
from ladam_jax.experiments._task import NORMS  # noqa: E402  (re-exported)


class NormMLP(nn.Module):
  """``in → 256 → 128 → 64 → 1``: Dense, then the normalization, then ReLU
  at every hidden layer (the parameter counts of the reference's E2d runs:
  44,417 with BatchNorm, 44,871 with WaveNorm on 8 features).

  ``norm``: one of :data:`NORMS`; BatchNorm and LayerNorm with PyTorch's
  defaults (eps 1e-5, BatchNorm momentum 0.1), the others the reference's
  layers (``ladam_jax.nn``).
  """
  norm: str
  widths: tuple = (256, 128, 64)
  init_scheme: str = "torch"

  @nn.compact
  def __call__(self, x, train: bool):
    from ladam_jax import nn as lnn  # pylint: disable=import-outside-toplevel
    fan_in = x.shape[-1]
    for width in self.widths:
      x = _torch_init.dense(width, fan_in, self.init_scheme)(x)
      if self.norm == "batchnorm":
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                         epsilon=1e-5)(x)
      elif self.norm == "layernorm":
        x = nn.LayerNorm(epsilon=1e-5)(x)
      elif self.norm == "wavenorm":
        x = lnn.WaveNorm()(x)
      elif self.norm == "wavenorm-damped":
        x = lnn.WaveNormDamped()(x)
      elif self.norm == "chinorm":
        x = lnn.ChiNorm(use_running_average=not train)(x)
      elif self.norm != "none":
        raise ValueError(f"`norm` must be one of {NORMS}, got {self.norm!r}.")
      x = nn.relu(x)
      fan_in = width
    return _torch_init.dense(1, fan_in, self.init_scheme)(x)


class TanhMLP(nn.Module):
  """``in → width × depth (tanh) → out``."""
  width: int
  depth: int
  out: int = 1
  init_scheme: str = "torch"

  @nn.compact
  def __call__(self, x):
    fan_in = x.shape[-1]
    for _ in range(self.depth):
      x = jnp.tanh(_torch_init.dense(self.width, fan_in, self.init_scheme)(x))
      fan_in = self.width
    return _torch_init.dense(self.out, fan_in, self.init_scheme)(x)


class Block(nn.Module):
  """Pre-norm transformer block; q, k, v, out are separate Dense kernels."""
  dim: int
  heads: int
  init_scheme: str = "torch"
  causal: bool = False

  @nn.compact
  def __call__(self, x):
    b, n, d = x.shape
    hd = self.dim // self.heads
    dense = functools.partial(_torch_init.dense, init=self.init_scheme)
    h = nn.LayerNorm(name="norm1")(x)
    q, k, v = (dense(self.dim, d, name=name)(h).reshape(b, n, self.heads, hd)
               for name in ("query", "key", "value"))
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd)
    if self.causal:
      scores = jnp.where(jnp.tril(jnp.ones((n, n), bool)), scores, -jnp.inf)
    att = jax.nn.softmax(scores)
    o = jnp.einsum("bhqk,bkhd->bqhd", att, v).reshape(b, n, d)
    x = x + dense(self.dim, d, name="out")(o)
    h = nn.LayerNorm(name="norm2")(x)
    h = dense(2 * self.dim, d, name="mlp_in")(h)
    return x + dense(self.dim, 2 * self.dim, name="mlp_out")(nn.gelu(h))


class _Transformer(nn.Module):
  """What the two transformers share: learned positions, ``layers``
  pre-norm :class:`Block` s (``block_0``, ...) of ``dim`` features and
  ``heads`` heads, and a final LayerNorm (``norm_out``). A subclass holds
  ``init_scheme`` and calls :meth:`encode` from its ``__call__``."""
  dim: int
  heads: int
  layers: int

  def encode(self, x, positions: int, causal: bool = False):
    """``x`` (batch, tokens, dim), tokens <= ``positions``, plus the first
    rows of the ``pos_embed`` table, through the blocks and the LayerNorm."""
    pos = self.param("pos_embed", nn.initializers.normal(0.02),
                     (positions, self.dim))
    x = x + pos[:x.shape[-2]]
    for i in range(self.layers):
      x = Block(self.dim, self.heads, self.init_scheme, causal=causal,
                name=f"block_{i}")(x)
    return nn.LayerNorm(name="norm_out")(x)


class DigitsTransformer(_Transformer):
  """8×8 digit images as 16 patches of 2×2 pixels → transformer → 10 classes."""
  init_scheme: str = "torch"

  @nn.compact
  def __call__(self, images):
    b = images.shape[0]
    patches = images.reshape(b, 4, 2, 4, 2).transpose(0, 1, 3, 2, 4)
    x = _torch_init.dense(self.dim, 4, self.init_scheme, name="patch_embed")(
        patches.reshape(b, 16, 4))
    x = self.encode(x, positions=16).mean(axis=1)
    return _torch_init.dense(10, self.dim, self.init_scheme, name="head")(x)


class SmallMLP(nn.Module):
  """``1 → width → width → width → 1``, tanh (the script's SmallMLP)."""
  width: int
  init_scheme: str = "torch"

  @nn.compact
  def __call__(self, x):
    return TanhMLP(self.width, 3, 1, self.init_scheme)(x)


class ReluMLP(nn.Module):
  """``in → width → width → classes``, ReLU (layers Dense_0, 1, 2)."""
  width: int
  classes: int = 10
  init_scheme: str = "torch"

  @nn.compact
  def __call__(self, x, return_hidden=False):
    hidden, fan_in = [], x.shape[-1]
    for i in range(2):
      x = nn.relu(_torch_init.dense(self.width, fan_in, self.init_scheme,
                                    name=f"Dense_{i}")(x))
      hidden.append(x)
      fan_in = self.width
    out = _torch_init.dense(self.classes, fan_in, self.init_scheme,
                            name="Dense_2")(x)
    return (out, hidden) if return_hidden else out


class ResidualBlock(nn.Module):
  """conv3×3 → ReLU → conv3×3, plus the input (1×1 conv when it changes)."""
  features: int
  stride: int = 1
  init_scheme: str = "torch"

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(_torch_init.conv, init=self.init_scheme)
    cin = x.shape[-1]
    h = nn.relu(conv(self.features, (3, 3), cin, strides=self.stride)(x))
    h = conv(self.features, (3, 3), self.features)(h)
    if self.stride != 1 or cin != self.features:
      x = conv(self.features, (1, 1), cin, strides=self.stride)(x)
    return nn.relu(x + h)


class SmallResNet(nn.Module):
  """conv3×3 (C) → 2 blocks (C) → 2 blocks (2C, stride 2) → pool → 10."""
  channels: int
  init_scheme: str = "torch"

  @nn.compact
  def __call__(self, images):
    x = images[..., None]
    x = nn.relu(_torch_init.conv(self.channels, (3, 3), 1, self.init_scheme)(x))
    for features, stride in ((self.channels, 1), (self.channels, 1),
                             (2 * self.channels, 2), (2 * self.channels, 1)):
      x = ResidualBlock(features, stride, self.init_scheme)(x)
    x = x.mean(axis=(1, 2))
    return _torch_init.dense(10, x.shape[-1], self.init_scheme)(x)


class CharTransformer(_Transformer):
  """Byte embedding + positions → causal pre-norm blocks → 256 logits."""
  context: int
  init_scheme: str = "torch"

  @nn.compact
  def __call__(self, tokens):
    x = nn.Embed(256, self.dim, embedding_init=nn.initializers.normal(1.0),
                 name="embed")(tokens)  # torch.nn.Embedding: N(0, 1)
    x = self.encode(x, positions=self.context, causal=True)
    return _torch_init.dense(256, self.dim, self.init_scheme, name="head")(x)
