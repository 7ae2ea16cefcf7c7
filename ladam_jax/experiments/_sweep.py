"""``c2-sweep``: every (c2, steps) cell paired against its baseline, with an
honest estimate of the best cell.

The reference's ``_true_pinn_test.py`` sweeps c2 × steps over 20 random seeds
and its results table reports a chosen cell. Choosing the best of many cells
on the same random seeds that then measure it is optimistic (the winner's
curse). Next to that in-sample best, :func:`analyze` reports a held-out
estimate: the cell is chosen on one half of the random seeds and its paired
change measured on the other half, both ways round (two-fold cross-fitting).
Cells are ranked by mean paired change (in the task's better direction).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ladam_jax.experiments import _stats

__all__ = ["cell_name", "analyze"]


def cell_name(optimizer: str, c2: float) -> str:
  return f"{optimizer} c2={c2:g}"


def _paired(cand, base, higher):
  p = _stats.paired(cand, base, higher)
  return {"rel_change": p.rel_change, "win_rate": p.win_rate,
          "p_value": p.p_value, "n": p.n}


def _score(rel_change: float, higher: bool) -> float:
  return rel_change if higher else -rel_change


def _best(cells, values, higher, idx):
  """The cell with the best mean paired change on the random seeds ``idx``."""
  scores = [_score(_stats.paired(values[c["name"], c["steps"]][0][idx],
                                 values[c["name"], c["steps"]][1][idx],
                                 higher).rel_change, higher) for c in cells]
  return cells[int(np.argmax(scores))]


def analyze(task, results, baselines: dict, settings: dict,
            steps: Sequence[int]) -> Optional[dict]:
  """Cells, the in-sample best cell and the two-fold held-out estimate.

  Args:
    task: the task (direction of the metric).
    results: the runs (:class:`~ladam_jax.experiments._train.RunResult`), each
      evaluated at every step of ``steps``.
    baselines: run name → baseline run name (None for baselines).
    settings: run name → {"lr", "c2"}.
    steps: the step counts of the sweep.

  Returns:
    ``{"cells": [...], "in_sample_best": cell, "held_out": [fold, fold],
    "held_out_rel_change": mean over the folds}``, or None when no run has
    a baseline. A cell is ``{"name", "c2", "steps", "baseline", "rel_change",
    "win_rate", "p_value", "n"}``; a fold is ``{"select_seeds",
    "eval_seeds", "chosen": {"name", "c2", "steps"}, "rel_change",
    "win_rate", "p_value", "n"}`` (seeds as indices into the run's seeds).
  """
  higher = task.higher_is_better
  by_name = {r.name: r for r in results}
  cells, values = [], {}
  for r in results:
    base = baselines.get(r.name)
    if base not in by_name:
      continue
    for s in steps:
      cand, ref = r.at_step(s), by_name[base].at_step(s)
      values[r.name, s] = (cand, ref)
      cells.append({"name": r.name, "c2": settings[r.name]["c2"], "steps": s,
                    "baseline": base, **_paired(cand, ref, higher)})
  if not cells:
    return None
  best = max(cells, key=lambda c: _score(c["rel_change"], higher))
  n = len(next(iter(values.values()))[0])
  halves = (np.arange(n // 2), np.arange(n // 2, n))
  folds = []
  if n >= 2:
    for select, evaluate in (halves, halves[::-1]):
      chosen = _best(cells, values, higher, select)
      cand, ref = values[chosen["name"], chosen["steps"]]
      folds.append({"select_seeds": select.tolist(),
                    "eval_seeds": evaluate.tolist(),
                    "chosen": {k: chosen[k] for k in ("name", "c2", "steps")},
                    **_paired(cand[evaluate], ref[evaluate], higher)})
  return {"cells": cells, "in_sample_best": best, "held_out": folds,
          "held_out_rel_change": (float(np.mean([f["rel_change"]
                                                 for f in folds]))
                                  if folds else None)}
