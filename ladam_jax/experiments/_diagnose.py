"""``ladam-bench --diagnostics``: what the Laplacian did, over training.

For every LAdam run (the optimizers with ``BenchOptimizer.diagnostics``),
at every evaluation step: :func:`ladam_jax.smoothing_stats` of every leaf
(mean over random seeds, into the JSON), and the field of
:func:`ladam_jax.smoothing_step_ratio` for one conv kernel and one dense
kernel of the task (the largest coupled leaf of each kind; random seed 0;
into ``TASK-step-ratio.npz`` and drawn as heatmaps in
``TASK-step-ratio.png``), each shown as the 2-D field the Laplacian smooths.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import ladam_jax
from ladam_jax import _coupling
from ladam_jax import _layout
from ladam_jax.experiments import _report

__all__ = ["pick_leaves", "make_diagnose", "summarize_run", "field_2d",
           "save_fields", "plot_fields", "steps_to_draw", "STATS"]

STATS = ("relative_change", "floor_fraction", "step_ratio_min",
         "step_ratio_median", "step_ratio_max")


def path_name(path) -> str:
  """A leaf's key path as 'Block_0/Conv_1/kernel' (the 'params' level
  dropped)."""
  parts = [str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k))))
           for k in path]
  return "/".join(parts[1:] if parts[:1] == ["params"] and len(parts) > 1
                  else parts)


def pick_leaves(params: Any, c2: float,
                min_spatial_size: int = 16) -> dict[str, str]:
  """{'conv kernel' | 'dense kernel': leaf path} of one random seed's params:
  the largest coupled leaf with 3+ axes, and with 2."""
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  plans = _coupling.plan(params, jnp.zeros([], jnp.int32), c2=c2,
                         layout="flax", min_spatial_size=min_spatial_size)
  picked = {}
  for kind, ok in (("conv kernel", lambda n: n >= 3),
                   ("dense kernel", lambda n: n == 2)):
    cands = [(int(np.size(x)), path_name(path))
             for (path, x), leaf in zip(flat, plans)
             if leaf.use_lap is True and ok(np.ndim(x))]
    if cands:
      picked[kind] = max(cands)[1]
  return picked


def make_diagnose(kwargs: dict, leaves: dict[str, str]
                  ) -> Callable[[Any], dict]:
  """state → {'stats': {path: {stat: scalar}}, 'ratio': {kind: field}}."""
  def diagnose(state):
    stats = ladam_jax.smoothing_stats(state, **kwargs)
    ratio = ladam_jax.smoothing_step_ratio(state, **kwargs)
    is_stats = lambda x: isinstance(x, ladam_jax.SmoothingStats)  # noqa: E731
    flat = jax.tree_util.tree_flatten_with_path(stats, is_leaf=is_stats)[0]
    by_path = {path_name(p): s._asdict() for p, s in flat}
    fields = {path_name(p): x for p, x in
              jax.tree_util.tree_flatten_with_path(ratio)[0]}
    return {"stats": by_path,
            "ratio": {kind: fields[path] for kind, path in leaves.items()}}
  return diagnose


def summarize_run(steps, diags: list) -> dict:
  """The JSON record of one run: per leaf and statistic, the mean over
  random seeds at each evaluation step (``steps``)."""
  paths = list(diags[0]["stats"])
  return {"steps": [int(s) for s in steps], "leaves": {
      p: {k: [float(np.mean(d["stats"][p][k])) for d in diags]
          for k in STATS} for p in paths}}


def field_2d(x: np.ndarray) -> np.ndarray:
  """A leaf as the 2-D field(s) the Laplacian smooths (flax layout),
  independent fields stacked along the rows; a 1-D field as one row."""
  x = np.asarray(x)
  spec = _layout.field_spec(x.shape, _layout.resolve_layouts(
      "flax", {"x": x})[0])
  if spec is None:
    return x.reshape(1, -1)
  f = np.transpose(x, spec.perm).reshape(spec.batch, *spec.field)
  return f.reshape(-1, f.shape[-1]) if f.ndim == 3 else f.reshape(
      spec.batch, -1)


def save_fields(path: str, fields: dict) -> None:
  """``fields``: {(run, kind, leaf path, step): array} → one .npz."""
  np.savez_compressed(path, **{f"{r}|{k}|{p}|{s}": np.asarray(v, np.float32)
                               for (r, k, p, s), v in fields.items()})


def plot_fields(path: str, fields: dict, title: str) -> bool:
  """Heatmaps of log10(step ratio LAdam / Adam): a row per (run, kernel),
  a column per step. False (nothing written) without matplotlib."""
  plt = _report.pyplot()
  if plt is None:
    return False
  rows = sorted({(r, k, p) for r, k, p, _ in fields})
  steps = sorted({s for *_, s in fields})
  if not rows:
    return False
  logs = {key: np.log10(field_2d(v)) for key, v in fields.items()}
  lim = max(1e-3, max(float(np.max(np.abs(v))) for v in logs.values()))
  fig, axes = plt.subplots(len(rows), len(steps), squeeze=False,
                           figsize=(4.2 * len(steps) + 1.5, 2.8 * len(rows)),
                           constrained_layout=True)
  im = None
  for i, (r, k, p) in enumerate(rows):
    for j, s in enumerate(steps):
      ax = axes[i, j]
      v = logs.get((r, k, p, s))
      if v is None:
        ax.axis("off")
        continue
      im = ax.imshow(v, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto",
                     interpolation="nearest")
      ax.set_title(f"{r}: {p}\n({k}, step {s})", fontsize=7)
      ax.tick_params(labelsize=6)
  if im is not None:
    fig.colorbar(im, ax=axes, shrink=0.8,
                 label="log10 step ratio LAdam / Adam")
  fig.suptitle(title, fontsize=9)
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  fig.savefig(path, dpi=90)
  plt.close(fig)
  return True


def steps_to_draw(schedule: list, n: int = 3) -> list:
  """``n`` evaluation steps spread over training, step 0 left out."""
  later = [s for s in schedule if s > 0]
  if len(later) <= n:
    return later
  idx = np.unique(np.round(np.linspace(0, len(later) - 1, n)).astype(int))
  return [later[i] for i in idx]
