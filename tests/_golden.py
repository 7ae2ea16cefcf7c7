"""Loads the reference golden data and replays it with ladam_jax."""

from __future__ import annotations

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

import ladam_jax

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "reference.npz")


@functools.lru_cache(maxsize=None)
def load():
  data = np.load(GOLDEN)
  meta = json.loads(str(data["meta"]))
  return {k: data[k] for k in data.files if k != "meta"}, meta


def torch_to_flax(w: np.ndarray) -> np.ndarray:
  """PyTorch (out, in, *spatial) -> Flax (*spatial, in, out); 2-D -> .T."""
  if w.ndim < 2:
    return w
  if w.ndim == 2:
    return w.T
  return np.transpose(w, tuple(range(2, w.ndim)) + (1, 0))


def flax_to_torch(w: np.ndarray) -> np.ndarray:
  if w.ndim < 2:
    return w
  if w.ndim == 2:
    return w.T
  nd = w.ndim
  return np.transpose(w, (nd - 1, nd - 2) + tuple(range(nd - 2)))


def make_optimizer(kind: str, kwargs: dict, lr: float, **extra):
  # The reference allows any c2 (the 'adam_floor' config runs c2 = 0.5, above
  # the 9-point stencil's stability bound 3/16), so parity runs opt in.
  kw = dict(kwargs, allow_unstable_c2=True)
  if kind == "adam":
    # The package's LAdam clamps the smoothed variance at eps.
    kw.setdefault("variance_floor", "eps")
    b1, b2 = kw.pop("betas", (0.9, 0.999))
    wd = kw.pop("weight_decay", 0.0)
    if wd:
      return ladam_jax.ladamw(lr, b1, b2, weight_decay=wd, **kw, **extra)
    return ladam_jax.ladam(lr, b1, b2, **kw, **extra)
  if kind == "rms":
    return ladam_jax.lrmsprop(lr, decay=kw.pop("alpha", 0.99), **kw, **extra)
  if kind == "adagrad":
    return ladam_jax.ladagrad(lr, **kw, **extra)
  raise ValueError(kind)


def replay(name: str, dtype, **extra):
  """Runs config ``name`` in ``dtype``; returns ({leaf: ours}, {leaf: ref})."""
  data, meta = load()
  kind, kwargs = meta["configs"][name]
  if "betas" in kwargs:
    kwargs["betas"] = tuple(kwargs["betas"])
  opt = make_optimizer(kind, kwargs, meta["lr"][kind], **extra)
  leaves = list(meta["leaves"])
  params = {k: jnp.asarray(torch_to_flax(data[f"params0/{k}"]), dtype)
            for k in leaves}
  grads = {k: jnp.asarray(np.stack([torch_to_flax(g)
                                    for g in data[f"grads/{k}"]]), dtype)
           for k in leaves}

  @jax.jit
  def step(params, state, g):
    updates, state = opt.update(g, state, params)
    return optax.apply_updates(params, updates), state

  state = opt.init(params)
  for t in range(meta["steps"]):
    params, state = step(params, state, {k: v[t] for k, v in grads.items()})
  tag = "f64" if jnp.dtype(dtype) == jnp.float64 else "f32"
  ours = {k: flax_to_torch(np.asarray(params[k])) for k in leaves}
  ref = {k: data[f"{name}/{tag}/{k}"] for k in leaves}
  return ours, ref


def relative_error(ours: dict, ref: dict) -> float:
  """max over leaves of ||ours - ref||_inf / max(||ref||_inf, 1e-30)."""
  worst = 0.0
  for k in ref:
    a = np.asarray(ours[k], np.float64)
    b = np.asarray(ref[k], np.float64)
    assert a.shape == b.shape, (k, a.shape, b.shape)
    err = np.max(np.abs(a - b), initial=0.0) / max(np.max(np.abs(b), initial=0), 1e-30)
    worst = max(worst, float(err))
  return worst


def config_names():
  return list(load()[1]["configs"])
