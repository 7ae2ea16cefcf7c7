"""Markdown tables and PNG plots of ``ladam-bench`` results."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from ladam_jax.bench import _stats
from ladam_jax.bench import _tasks
from ladam_jax.bench._train import RunResult

__all__ = ["markdown_table", "write_markdown", "plot"]


def _fmt(x: float) -> str:
  if x == 0 or 1e-3 <= abs(x) < 1e4:
    return f"{x:.4g}"
  return f"{x:.3e}"


def markdown_table(task: _tasks.Task, results: Sequence[RunResult],
                   baselines: dict[str, Optional[str]],
                   labels: Optional[dict[str, str]] = None) -> str:
  """One row per optimizer; paired columns against its baseline (if any).

  Args:
    task: the task (metric name and direction).
    results: one :class:`RunResult` per optimizer, same seeds.
    baselines: optimizer name -> baseline name (or None).
    labels: optional display labels.

  Returns:
    The table as markdown text.
  """
  labels = labels or {}
  by_name = {r.name: r for r in results}
  better = "higher" if task.higher_is_better else "lower"
  lines = [
      f"| optimizer | {task.metric} ({better} is better), mean ± std "
      "| vs | mean paired change | win rate | Wilcoxon p | seconds |",
      "|---|---|---|---|---|---|---|",
  ]
  for r in results:
    s = _stats.summarize(r.final)
    row = [labels.get(r.name, r.name), f"{_fmt(s.mean)} ± {_fmt(s.std)}"]
    base = baselines.get(r.name)
    if base is not None and base in by_name:
      p = _stats.paired(r.final, by_name[base].final, task.higher_is_better)
      row += [base, f"{100 * p.rel_change:+.2f} %",
              f"{100 * p.win_rate:.0f} % ({round(p.win_rate * p.n)}/{p.n})",
              f"{p.p_value:.3g}"]
    else:
      row += ["—", "—", "—", "—"]
    row.append(f"{r.seconds:.0f}")
    lines.append("| " + " | ".join(row) + " |")
  return "\n".join(lines)


def write_markdown(path: str, title: str, header: str, table: str) -> None:
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    f.write(f"# {title}\n\n{header}\n\n{table}\n")


def plot(path: str, task: _tasks.Task, results: Sequence[RunResult],
         baselines: dict[str, Optional[str]],
         labels: Optional[dict[str, str]] = None) -> bool:
  """Learning curves (mean, band = min..max over seeds) and paired differences.

  Returns False (and writes nothing) when matplotlib is not installed.
  """
  try:
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  except ImportError:
    return False
  labels = labels or {}
  by_name = {r.name: r for r in results}
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
  for r in results:
    mean = r.curves.mean(axis=0)
    line, = ax1.plot(r.steps, mean, label=labels.get(r.name, r.name))
    ax1.fill_between(r.steps, r.curves.min(axis=0), r.curves.max(axis=0),
                     color=line.get_color(), alpha=0.15)
  ax1.set_xlabel("step")
  ax1.set_ylabel(task.metric)
  if not task.higher_is_better and np.all(
      np.concatenate([r.curves.ravel() for r in results]) > 0):
    ax1.set_yscale("log")
  ax1.set_title(f"{task.name}: mean over {results[0].curves.shape[0]} seeds "
                "(band: min–max)")
  ax1.legend(fontsize=8)

  pairs = [(r, by_name[baselines[r.name]]) for r in results
           if baselines.get(r.name) in by_name]
  for i, (r, b) in enumerate(pairs):
    rel = 100 * (r.final - b.final) / np.abs(b.final)
    x = i + np.linspace(-0.15, 0.15, rel.size) if rel.size > 1 else [i]
    ax2.scatter(x, rel, s=18)
    ax2.hlines(rel.mean(), i - 0.3, i + 0.3, colors="k")
  ax2.axhline(0.0, color="grey", lw=0.8, ls="--")
  ax2.set_xticks(range(len(pairs)))
  ax2.set_xticklabels([f"{r.name}\nvs {b.name}" for r, b in pairs], fontsize=8)
  ax2.set_ylabel(f"paired change of final {task.metric} (%)")
  ax2.set_title("per seed (" + ("higher" if task.higher_is_better else "lower")
                + " is better); bar: mean")
  fig.tight_layout()
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return True
