"""Paired statistics over seeds: LAdam variant vs its baseline, seed by seed."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = ["Summary", "Paired", "summarize", "paired", "wilcoxon_p"]

WIN_MARGIN = 1e-3  # a "win" is better by more than 0.1 % (relative)


@dataclasses.dataclass(frozen=True)
class Summary:
  mean: float
  std: float  # sample standard deviation (ddof=1); 0 for one seed
  n: int


@dataclasses.dataclass(frozen=True)
class Paired:
  """``candidate`` vs ``baseline`` over the same seeds."""
  rel_change: float  # mean over seeds of (candidate − baseline)/|baseline|
  win_rate: float    # share of seeds where the candidate is better by > 0.1 %
  p_value: float     # two-sided Wilcoxon signed-rank test on the differences
  n: int


def summarize(values) -> Summary:
  v = np.asarray(values, dtype=np.float64)
  std = float(v.std(ddof=1)) if v.size > 1 else 0.0
  return Summary(float(v.mean()), std, int(v.size))


def wilcoxon_p(differences) -> float:
  """Two-sided p-value of the Wilcoxon signed-rank test (1.0 if all are 0).

  Exact for small samples without ties (``scipy.stats.wilcoxon``'s default),
  zero differences dropped ("wilcox").
  """
  from scipy import stats  # pylint: disable=import-outside-toplevel
  d = np.asarray(differences, dtype=np.float64)
  if d.size == 0 or not np.any(d != 0):
    return 1.0
  p = float(stats.wilcoxon(d, zero_method="wilcox").pvalue)
  return 1.0 if math.isnan(p) else p


def paired(candidate, baseline, higher_is_better: bool) -> Paired:
  """Paired comparison of two per-seed result vectors (same seeds, same order)."""
  c = np.asarray(candidate, dtype=np.float64)
  b = np.asarray(baseline, dtype=np.float64)
  if c.shape != b.shape or c.ndim != 1:
    raise ValueError(
        f"`candidate` and `baseline` must be 1-D and of one shape, got "
        f"{c.shape} and {b.shape}.")
  rel = (c - b) / np.abs(b)
  better = rel > WIN_MARGIN if higher_is_better else rel < -WIN_MARGIN
  return Paired(rel_change=float(rel.mean()), win_rate=float(better.mean()),
                p_value=wilcoxon_p(c - b), n=int(c.size))
