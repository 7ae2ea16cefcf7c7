"""Writes golden trajectories of the PyTorch reference (``ladam==0.4.1``).

Run by hand in a side virtualenv that has torch and ladam (the test suite does
not need them)::

    python -m venv /tmp/tvenv
    /tmp/tvenv/bin/pip install torch==2.13.0 numpy
    /tmp/tvenv/bin/pip install --no-deps ladam==0.4.1
    /tmp/tvenv/bin/python tools/make_golden.py      # -> tests/golden/reference.npz,
                                                    #    reorder.npz, normalization.npz,
                                                    #    equinox.npz
    /tmp/tvenv/bin/python tools/make_golden.py --normalization-only
    /tmp/tvenv/bin/python tools/make_golden.py --equinox-only

Every configuration steps the same parameters with the same gradient sequence
(stored once, float32 values) for ``STEPS`` steps, in float64 and in float32,
and records the parameters after the last step (PyTorch layout). ``tests/test_parity.py`` replays them with ladam_jax on the Flax
layout of the same leaves.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch

import ladam
from ladam import LAdaGrad, LAdamW, LRMSProp

STEPS = 30
SEED = 20261122

# name -> PyTorch-layout shape. Dense (out, in), Conv1D (out, in, k), Conv2D
# (out, in, kh, kw), Embed (vocab, features), biases >= 16 and < 16, a field
# with a side < 3, a 0-d leaf, a size-1 leaf and a 1-D leaf shorter than 4.
LEAVES = {
    "dense": (16, 12),
    "conv1d": (8, 4, 5),
    "conv2d": (6, 4, 3, 3),
    "embed": (16, 10),
    "bias_big": (20,),
    "bias_small": (8,),
    "thin": (2, 12),
    "scalar": (),
    "one": (1,),
    "short": (3,),
}

C2 = 0.05
CONFIGS = {
    # LAdamW modes x stencils
    "adam_variance_9": ("adam", dict(c2=C2)),
    "adam_variance_5": ("adam", dict(c2=C2, stencil="5point")),
    "adam_update_9": ("adam", dict(c2=C2, mode="update_lap")),
    "adam_update_5": ("adam", dict(c2=C2, mode="update_lap", stencil="5point")),
    "adam_weight_9": ("adam", dict(c2=C2, mode="weight_lap")),
    "adam_weight_5": ("adam", dict(c2=C2, mode="weight_lap", stencil="5point")),
    "adam_wave_9": ("adam", dict(c2=C2, mode="wave_variance")),
    "adam_wave_5": ("adam", dict(c2=C2, mode="wave_variance", stencil="5point")),
    "adam_wave_e0": ("adam", dict(c2=C2, mode="wave_variance", wave_E0=0.05,
                                  wave_dt=0.2, wave_kappa=0.3,
                                  wave_damping=0.7)),
    # hyperparameters and edge cases
    "adam_wd_betas": ("adam", dict(c2=C2, weight_decay=0.1, betas=(0.8, 0.99),
                                   eps=1e-6)),
    "adam_floor": ("adam", dict(c2=0.5)),  # smoothed variance hits the floor
    "adam_min_size_2": ("adam", dict(c2=C2, min_spatial_size=2)),
    "adam_min_size_170": ("adam", dict(c2=C2, min_spatial_size=170)),
    "adam_c2_zero": ("adam", dict(c2=0.0)),
    # LRMSProp
    "rms_plain": ("rms", dict(c2=C2)),
    "rms_momentum_wd": ("rms", dict(c2=C2, momentum=0.9, weight_decay=0.05,
                                    alpha=0.9)),
    "rms_5_min2": ("rms", dict(c2=C2, stencil="5point", min_spatial_size=2)),
    # LAdaGrad
    "adagrad_plain": ("adagrad", dict(c2=C2)),
    "adagrad_decay_wd": ("adagrad", dict(c2=C2, lr_decay=0.01,
                                         weight_decay=0.05)),
    "adagrad_5_min2": ("adagrad", dict(c2=C2, stencil="5point",
                                       min_spatial_size=2)),
}
LR = {"adam": 1e-2, "rms": 1e-2, "adagrad": 5e-2}
CLASSES = {"adam": LAdamW, "rms": LRMSProp, "adagrad": LAdaGrad}


def run(kind, kwargs, params0, grads, dtype):
  params = [torch.nn.Parameter(torch.tensor(params0[k], dtype=dtype))
            for k in LEAVES]
  opt = CLASSES[kind](params, lr=LR[kind], **kwargs)
  for t in range(STEPS):
    for p, k in zip(params, LEAVES):
      p.grad = torch.tensor(grads[k][t], dtype=dtype)
    opt.step()
  return {k: p.detach().numpy().copy() for p, k in zip(params, LEAVES)}


def main():
  rng = np.random.default_rng(SEED)
  params0 = {k: (0.1 * rng.standard_normal(s)).astype(np.float64)
             for k, s in LEAVES.items()}
  # Gradients with a smooth part (so the Laplacian has structure to act on),
  # noise, and a per-step scale; stored as float32 values.
  grads = {}
  for k, s in LEAVES.items():
    smooth = np.cos(np.arange(int(np.prod(s))) * 0.3).reshape(s)
    g = np.stack([(0.5 * smooth * (1 + 0.1 * t) +
                   rng.standard_normal(s)) * (0.01 + 0.01 * (t % 5))
                  for t in range(STEPS)])
    grads[k] = g.astype(np.float32).astype(np.float64)
  out = {}
  for k in LEAVES:
    out[f"params0/{k}"] = params0[k]
    out[f"grads/{k}"] = grads[k].astype(np.float32)
  for name, (kind, kwargs) in CONFIGS.items():
    for dtype, tag in ((torch.float64, "f64"), (torch.float32, "f32")):
      snaps = run(kind, kwargs, params0, grads, dtype)
      for key, value in snaps.items():
        out[f"{name}/{tag}/{key}"] = value
  meta = dict(steps=STEPS, leaves={k: list(s) for k, s in LEAVES.items()},
              lr=LR, configs={n: [kind, {k: v for k, v in kw.items()}]
                              for n, (kind, kw) in CONFIGS.items()},
              torch=torch.__version__,
              ladam=getattr(ladam, "__version__", "0.4.1"))
  out["meta"] = np.array(json.dumps(meta))
  path = os.path.join(os.path.dirname(__file__), "..", "tests", "golden",
                      "reference.npz")
  np.savez_compressed(path, **out)
  print(f"wrote {os.path.normpath(path)} "
        f"({os.path.getsize(path) / 1024:.0f} KiB, {len(CONFIGS)} configs)",
        file=sys.stderr)


def main_reorder():
  """``ladam.compute_neuron_order`` on a few activation matrices."""
  from ladam.reorder import compute_neuron_order  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(SEED + 1)
  latent = rng.standard_normal((128, 3))
  structured = np.maximum(latent @ rng.standard_normal((3, 32)), 0.0)
  structured[:, 7] = 1.0  # a constant unit: its std is clamped at 1e-8
  cases = {
      "gaussian": rng.standard_normal((64, 20)),
      "relu_low_rank": structured + 0.05 * rng.standard_normal((128, 32)),
      "four_units": rng.standard_normal((10, 4)),
  }
  out = {}
  for name, act in cases.items():
    act = act.astype(np.float32)
    out[f"{name}/activations"] = act
    out[f"{name}/order"] = np.asarray(
        compute_neuron_order(torch.tensor(act)), dtype=np.int64)
  path = os.path.join(os.path.dirname(__file__), "..", "tests", "golden",
                      "reorder.npz")
  np.savez_compressed(path, **out)
  print(f"wrote {os.path.normpath(path)}", file=sys.stderr)


# The normalization layers' cases: (layer, constructor kwargs, input shape in
# PyTorch's layout). Parameters are perturbed from their initial values so
# that every one of them matters in the gradients.
NORM_CASES = {
    "wavenorm_2d": ("WaveNorm", {"num_features": 6}, (5, 6)),
    "wavenorm_4d": ("WaveNorm", {"num_features": 4, "n_steps": 4,
                                 "dt": 0.2, "c": 0.7, "chi": 1.3},
                    (2, 4, 3, 5)),
    "damped_2d": ("WaveNormDamped", {"num_features": 6, "init_damping": 0.3},
                  (5, 6)),
    "damped_4d": ("WaveNormDamped", {"num_features": 4, "n_steps": 2},
                  (2, 4, 3, 5)),
    "chinorm_2d": ("ChiNorm", {"num_features": 6, "g_init": 0.2, "tau": 0.3},
                   (5, 6)),
    "chinorm_4d": ("ChiNorm", {"num_features": 4}, (2, 4, 3, 5)),
}
NORM_TRAIN_STEPS = 3  # ChiNorm: training batches before the eval pass


def main_normalization():
  """Forward passes and gradients of WaveNorm, WaveNormDamped and ChiNorm
  (float64, PyTorch layout), ChiNorm in train and eval mode after a few
  training batches (its running energy at every step)."""
  from ladam import normalization  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(SEED + 2)
  out = {}
  for name, (layer, kwargs, shape) in NORM_CASES.items():
    module = getattr(normalization, layer)(**kwargs).double()
    with torch.no_grad():
      for p in module.parameters():
        p.add_(torch.tensor(0.1 * rng.standard_normal(tuple(p.shape))))
    for pname, p in module.named_parameters():
      out[f"{name}/params/{pname}"] = p.detach().numpy().copy()
    xs = [rng.standard_normal(shape) * (1 + 0.5 * i)
          for i in range(NORM_TRAIN_STEPS if layer == "ChiNorm" else 1)]
    modes = ["train"] + (["eval"] if layer == "ChiNorm" else [])
    for mode in modes:
      for i, x_np in enumerate(xs if mode == "train" else xs[-1:]):
        module.train(mode == "train")
        x = torch.tensor(x_np, requires_grad=True)
        y = module(x)
        # A fixed weighting, so that every output entry enters the gradient.
        w = torch.tensor(np.cos(np.arange(y.numel())).reshape(y.shape))
        (y * w).sum().backward()
        tag = f"{name}/{mode}/{i}"
        out[f"{tag}/x"] = x_np
        out[f"{tag}/y"] = y.detach().numpy()
        out[f"{tag}/grad_x"] = x.grad.numpy()
        for pname, p in module.named_parameters():
          out[f"{tag}/grad/{pname}"] = p.grad.numpy().copy()
          p.grad = None
        for bname, b in module.named_buffers():
          out[f"{tag}/buffer/{bname}"] = b.numpy().copy()
  out["meta"] = np.array(json.dumps({
      "cases": {k: [l, kw, list(s)] for k, (l, kw, s) in NORM_CASES.items()},
      "train_steps": NORM_TRAIN_STEPS, "torch": torch.__version__,
      "loss": "sum(y * cos(arange(y.size)).reshape(y.shape))"}))
  path = os.path.join(os.path.dirname(__file__), "..", "tests", "golden",
                      "normalization.npz")
  np.savez_compressed(path, **out)
  print(f"wrote {os.path.normpath(path)} "
        f"({os.path.getsize(path) / 1024:.0f} KiB)", file=sys.stderr)


class EquinoxMirror(torch.nn.Module):
  """The PyTorch layers an Equinox model of every layer type mirrors.

  ``tests/test_equinox.py`` builds the same model from ``eqx.nn`` layers
  (Conv1d/2d/3d, ConvTranspose2d, Linear, Embedding, MultiheadAttention with
  separate key and value sizes, LayerNorm), loads these weights into it and
  replays the gradients with ladam_jax on Equinox's layouts.
  """

  def __init__(self):
    super().__init__()
    nn = torch.nn
    self.conv1 = nn.Conv1d(4, 8, 5)
    self.conv2 = nn.Conv2d(6, 16, 3)
    self.conv3 = nn.Conv3d(2, 4, 3)
    self.convt = nn.ConvTranspose2d(8, 12, 3)
    self.linear = nn.Linear(24, 20)
    self.embed = nn.Embedding(30, 12)
    # kdim/vdim != embed_dim: separate q/k/v weights, as Equinox has them.
    self.mha = nn.MultiheadAttention(16, 4, kdim=12, vdim=10, bias=False,
                                     batch_first=True)
    self.norm = nn.LayerNorm(16)


EQX_CONFIGS = {
    "ladamw_variance_9": ("adam", dict(c2=C2, weight_decay=0.01)),
    "ladam_update_5": ("adam", dict(c2=C2, mode="update_lap",
                                    stencil="5point")),
    "lrmsprop": ("rms", dict(c2=C2)),
}


def main_equinox():
  """LAdamW, LAdam (update_lap) and LRMSProp on :class:`EquinoxMirror`'s
  parameters for ``STEPS`` steps of stored gradients (float64)."""
  rng = np.random.default_rng(SEED + 3)
  names = [n for n, _ in EquinoxMirror().named_parameters()]
  shapes = {n: tuple(p.shape) for n, p in EquinoxMirror().named_parameters()}
  params0 = {n: 0.1 * rng.standard_normal(s) for n, s in shapes.items()}
  grads = {}
  for n, s in shapes.items():
    smooth = np.cos(np.arange(int(np.prod(s))) * 0.3).reshape(s)
    grads[n] = np.stack([(0.5 * smooth * (1 + 0.1 * t) +
                          rng.standard_normal(s)) * (0.01 + 0.01 * (t % 5))
                         for t in range(STEPS)]).astype(np.float32)
  out = {}
  for n in names:
    out[f"params0/{n}"] = params0[n]
    out[f"grads/{n}"] = grads[n]  # float32 values, replayed in float64
  for cname, (kind, kwargs) in EQX_CONFIGS.items():
    params = [torch.nn.Parameter(torch.tensor(params0[n], dtype=torch.float64))
              for n in names]
    opt = CLASSES[kind](params, lr=LR[kind], **kwargs)
    for t in range(STEPS):
      for p, n in zip(params, names):
        p.grad = torch.tensor(grads[n][t], dtype=torch.float64)
      opt.step()
    for p, n in zip(params, names):
      out[f"{cname}/{n}"] = p.detach().numpy().copy()
  out["meta"] = np.array(json.dumps({
      "steps": STEPS, "names": names,
      "shapes": {n: list(s) for n, s in shapes.items()}, "lr": LR,
      "configs": {c: [k, kw] for c, (k, kw) in EQX_CONFIGS.items()},
      "torch": torch.__version__}))
  path = os.path.join(os.path.dirname(__file__), "..", "tests", "golden",
                      "equinox.npz")
  np.savez_compressed(path, **out)
  print(f"wrote {os.path.normpath(path)} "
        f"({os.path.getsize(path) / 1024:.0f} KiB)", file=sys.stderr)


if __name__ == "__main__":
  torch.manual_seed(0)
  if "--normalization-only" in sys.argv:
    main_normalization()
    sys.exit(0)
  if "--equinox-only" in sys.argv:
    main_equinox()
    sys.exit(0)
  if "--reorder-only" not in sys.argv:
    main()
  main_reorder()
  main_normalization()
  main_equinox()
