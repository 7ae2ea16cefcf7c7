"""What ``ladam-bench`` writes: a markdown table, a JSON record and a plot."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import textwrap
from typing import Any, Optional, Sequence

import jax
import numpy as np

from ladam_jax.experiments import _controls
from ladam_jax.experiments import _stats
from ladam_jax.experiments import _tasks
from ladam_jax.experiments._train import RunResult

__all__ = ["Report", "plot", "versions", "paired_finite", "write_files",
           "pyplot"]


def _fmt(x: float) -> str:
  if not np.isfinite(x):
    return "diverged"
  if x == 0 or 1e-3 <= abs(x) < 1e4:
    return f"{x:.4g}"
  return f"{x:.3e}"


def versions(extra: Sequence[str] = ()) -> dict:
  """Versions of Python and the packages behind a run (None if absent)."""
  out = {"python": platform.python_version()}
  for name in ("ladam-jax", "jax", "jaxlib", "optax", "flax", *extra):
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      out[name] = None
  return out


def paired_finite(cand, base, higher: bool):
  """(paired stats over the random seeds where both are finite, n diverged)."""
  cand, base = np.asarray(cand, np.float64), np.asarray(base, np.float64)
  ok = np.isfinite(cand) & np.isfinite(base)
  n_bad = int((~ok).sum())
  if not ok.any():
    return None, n_bad
  return _stats.paired(cand[ok], base[ok], higher), n_bad


@dataclasses.dataclass
class Report:
  """Everything one ``ladam-bench`` run produced."""
  task: _tasks.Task
  title: str
  stem: str
  size: _tasks.Size
  seeds: list
  results: Sequence[RunResult]
  baselines: dict
  labels: dict
  settings: dict
  command: str
  seconds: float
  init: str = "torch"
  sweep: Optional[dict] = None
  # run name → _diagnose.summarize_run(...) plus its drawn kernels
  diagnostics: Optional[dict] = None

  @property
  def by_name(self) -> dict:
    return {r.name: r for r in self.results}

  def label(self, name: str) -> str:
    return self.labels.get(name, name)

  # ---- markdown --------------------------------------------------------------

  def header(self) -> str:
    t = self.task
    c2s = sorted({s["c2"] for n, s in self.settings.items()
                  if self.baselines.get(n)})
    return "\n".join([
        f"{t.description}.",
        "",
        f"{self.size.seeds} random seeds ({self.seeds[0]}-{self.seeds[-1]}) × "
        f"{self.size.steps} steps, c2 {', '.join(f'{c:g}' for c in c2s)}, "
        f"{self.init} init; final {t.metric}. Paired: the same "
        "initialisation, data and batches per random seed; win = better "
        "than the baseline by > 0.1 %; Wilcoxon signed-rank, two-sided.",
        f"The reference (ladam 0.4.1): {t.reference}.",
        f"Its claim: {t.claim or '—'}.",
        f"Run: `{self.command}` — JAX {jax.__version__} on "
        f"{jax.default_backend()} ({platform.machine()}), "
        f"{self.seconds:.0f} s.",
    ])

  def table(self) -> str:
    t = self.task
    better = "higher" if t.higher_is_better else "lower"
    extra = [m for m in t.metrics if m != t.metric]
    lines = [
        f"| optimizer | {t.metric} ({better} is better), mean ± std "
        + "".join(f"| {m}, mean " for m in extra)
        + "| vs | mean paired change | win rate | Wilcoxon p | diverged "
        "| seconds |",
        "|---|---|" + "---|" * len(extra) + "---|---|---|---|---|---|",
    ]
    by_name = self.by_name
    for r in self.results:
      finite = r.final[np.isfinite(r.final)]
      if finite.size:
        s = _stats.summarize(finite)
        row = [self.label(r.name), f"{_fmt(s.mean)} ± {_fmt(s.std)}"]
      else:
        row = [self.label(r.name), "diverged"]
      for m in extra:
        v = r.metric_curves[m][:, -1]
        v = v[np.isfinite(v)]
        row.append(_fmt(float(v.mean())) if v.size else "diverged")
      base = self.baselines.get(r.name)
      n_bad = int((~np.isfinite(r.final)).sum())
      if base is not None and base in by_name:
        p, n_bad = paired_finite(r.final, by_name[base].final,
                                 t.higher_is_better)
        if p is None:
          row += [base, "—", "—", "—"]
        else:
          row += [base, f"{100 * p.rel_change:+.2f} %",
                  f"{100 * p.win_rate:.0f} % ({round(p.win_rate * p.n)}/{p.n})",
                  f"{p.p_value:.3g}"]
      else:
        row += ["—", "—", "—", "—"]
      row += [f"{n_bad}/{r.final.size}" if n_bad else "0",
              f"{r.seconds:.0f}"]
      lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)

  def sweep_text(self) -> str:
    if not self.sweep:
      return ""
    sw = self.sweep
    lines = ["| cell | c2 | steps | mean paired change | win rate | "
             "Wilcoxon p |", "|---|---|---|---|---|---|"]
    for c in sw["cells"]:
      lines.append(f"| {self.label(c['name'])} | {c['c2']:g} | {c['steps']} | "
                   f"{100 * c['rel_change']:+.2f} % | "
                   f"{100 * c['win_rate']:.0f} % | {c['p_value']:.3g} |")
    b = sw["in_sample_best"]
    lines += ["", f"In-sample best cell (chosen and measured on all "
              f"{b['n']} random seeds, optimistic): c2 = {b['c2']:g}, "
              f"{b['steps']} steps: {100 * b['rel_change']:+.2f} %, win rate "
              f"{100 * b['win_rate']:.0f} %, p = {b['p_value']:.3g}."]
    for f in sw["held_out"]:
      sel, ev = f["select_seeds"], f["eval_seeds"]
      lines.append(
          f"Held out: chosen on random seeds {self.seeds[sel[0]]}-"
          f"{self.seeds[sel[-1]]} → c2 = {f['chosen']['c2']:g}, "
          f"{f['chosen']['steps']} steps; measured on "
          f"{self.seeds[ev[0]]}-{self.seeds[ev[-1]]}: "
          f"{100 * f['rel_change']:+.2f} %, win rate "
          f"{100 * f['win_rate']:.0f} %, p = {f['p_value']:.3g}.")
    if sw["held_out_rel_change"] is not None:
      lines.append(f"Held-out estimate of the best cell (mean of the two "
                   f"folds): {100 * sw['held_out_rel_change']:+.2f} %.")
    return "\n".join(lines)

  def laplacian_adds(self) -> list[dict]:
    """Each Laplacian optimizer against each control run beside it.

    The controls (``adam-floor``, ``ladam-shuffled``, ...) are compared with
    the Laplacian optimizer they take something from (their baseline); here
    that comparison is turned round, Laplacian optimizer vs control, so that
    a negative change on a lower-is-better metric means the Laplacian (or
    its spatial layout) helped. The A/A control is listed as it is (Adam on
    other random seeds vs Adam).
    """
    by_name, out = self.by_name, []
    for name, what in _controls.CONTROL_MEANING.items():
      base = self.baselines.get(name)
      if name not in by_name or base not in by_name:
        continue
      cand, ref = (name, base) if name == "adam-copy" else (base, name)
      p, n_bad = paired_finite(by_name[cand].final, by_name[ref].final,
                               self.task.higher_is_better)
      out.append({"candidate": cand, "baseline": ref, "isolates": what,
                  "diverged": n_bad, **({} if p is None else {
                      "rel_change": p.rel_change, "win_rate": p.win_rate,
                      "p_value": p.p_value, "n": p.n})})
    return out

  def laplacian_adds_text(self) -> str:
    rows = self.laplacian_adds()
    if not rows:
      return ""
    lines = ["## What the Laplacian adds", "",
             "| comparison | isolates | mean paired change | win rate | "
             "Wilcoxon p |", "|---|---|---|---|---|"]
    for c in rows:
      cells = (["—", "—", "—"] if "rel_change" not in c else [
          f"{100 * c['rel_change']:+.2f} %",
          f"{100 * c['win_rate']:.0f} % ({round(c['win_rate'] * c['n'])}/"
          f"{c['n']})", f"{c['p_value']:.3g}"])
      lines.append(f"| {self.label(c['candidate'])} vs "
                   f"{self.label(c['baseline'])} | {c['isolates']} | "
                   + " | ".join(cells) + " |")
    return "\n".join(lines)

  def markdown(self) -> str:
    parts = [f"# {self.title}", self.header(), self.table()]
    if self.laplacian_adds():
      parts.append(self.laplacian_adds_text())
    if self.sweep:
      parts.append(self.sweep_text())
    return "\n\n".join(parts) + "\n"

  # ---- JSON -----------------------------------------------------------------

  def record(self) -> dict[str, Any]:
    """The machine-readable record (``TASK.json``)."""
    t = self.task
    torch_run = any(r.name.startswith("torch-") for r in self.results)
    steps = np.asarray(self.results[0].steps).tolist()

    def floats(a):
      return [float(x) if np.isfinite(x) else None for x in np.ravel(a)]

    return {
        "task": self.stem if self.stem != t.name else t.name,
        "base_task": t.name,
        "metric": t.metric,
        "higher_is_better": t.higher_is_better,
        "seeds": list(self.seeds),
        "steps": self.size.steps,
        "eval_steps": steps,
        "init": self.init,
        "description": t.description,
        "reference": t.reference,
        "claim": t.claim,
        "command": self.command,
        "seconds": self.seconds,
        "versions": versions(("torch", "ladam") if torch_run else ()),
        "platform": platform.machine(),
        "results": {r.name: floats(r.final) for r in self.results},
        "metrics": {r.name: {m: floats(c[:, -1])
                             for m, c in r.metric_curves.items()}
                    for r in self.results},
        "curves": {r.name: [floats(row) for row in r.curves]
                   for r in self.results},
        "curve_steps": {r.name: np.asarray(r.steps).tolist()
                        for r in self.results},
        "baselines": {r.name: self.baselines.get(r.name)
                      for r in self.results},
        "labels": {r.name: self.label(r.name) for r in self.results},
        "settings": {r.name: self.settings.get(r.name) for r in self.results},
        "run_seconds": {r.name: r.seconds for r in self.results},
        "sweep": self.sweep,
        "laplacian_adds": self.laplacian_adds(),
        "diagnostics": self.diagnostics,
    }

  def write(self, out: str) -> tuple[str, str]:
    return write_files(out, self.stem, self.markdown(), self.record())


def write_files(out: str, stem: str, markdown: str,
                record: dict) -> tuple[str, str]:
  """``out/stem.md`` and ``out/stem.json``; returns their paths."""
  os.makedirs(out, exist_ok=True)
  md, js = (os.path.join(out, f"{stem}.{ext}") for ext in ("md", "json"))
  with open(md, "w", encoding="utf-8") as f:
    f.write(markdown)
  with open(js, "w", encoding="utf-8") as f:
    json.dump(record, f, indent=1)
    f.write("\n")
  return md, js


def pyplot():
  """``matplotlib.pyplot`` on the Agg backend, or None if not installed."""
  try:
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  return plt


def plot(path: str, report: Report) -> bool:
  """Three panels: learning curves, paired change over training, per seed.

  One colour per optimizer in every panel; the paired panels show each
  Laplacian variant against its baseline. Returns False (and writes
  nothing) when matplotlib is not installed.
  """
  try:
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    from matplotlib.ticker import MaxNLocator  # pylint: disable=import-outside-toplevel
  except ImportError:
    return False
  task, results = report.task, report.results
  by_name = report.by_name
  cmap = plt.get_cmap("tab10" if len(results) <= 10 else "tab20")
  colour = {r.name: cmap(i % cmap.N) for i, r in enumerate(results)}
  # PyTorch reference runs dashed: they lie on the ladam_jax curves.
  style = {r.name: "--" if r.name.startswith("torch-") else "-"
           for r in results}
  fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 4.8))
  for r in results:
    mean = np.nanmean(r.curves, axis=0)
    ax1.plot(r.steps, mean, color=colour[r.name], ls=style[r.name],
             label=report.label(r.name))
    ax1.fill_between(r.steps, np.nanmin(r.curves, axis=0),
                     np.nanmax(r.curves, axis=0), color=colour[r.name],
                     alpha=0.12)
  ax1.set_xlabel("step")
  ax1.set_ylabel(task.metric)
  everything = np.concatenate([r.curves.ravel() for r in results])
  everything = everything[np.isfinite(everything)]
  if not task.higher_is_better and everything.size and np.all(everything > 0):
    ax1.set_yscale("log")
  ax1.set_title(f"{task.name}: mean over {results[0].curves.shape[0]} random "
                "seeds (band: min–max)", fontsize=10)
  ax1.legend(fontsize=7)

  pairs = [(r, by_name[report.baselines[r.name]]) for r in results
           if report.baselines.get(r.name) in by_name]
  for r, b in pairs:
    rel = 100 * (r.curves - b.curves) / np.abs(b.curves)
    ax2.plot(r.steps, np.nanmean(rel, axis=0), color=colour[r.name],
             ls=style[r.name],
             label=f"{report.label(r.name)} vs {report.label(b.name)}")
    ax2.fill_between(r.steps, np.nanpercentile(rel, 25, axis=0),
                     np.nanpercentile(rel, 75, axis=0), color=colour[r.name],
                     alpha=0.15)
  ax2.axhline(0.0, color="grey", lw=0.8, ls="--")
  ax2.set_xlabel("step")
  ax2.set_ylabel("paired change vs baseline (% of baseline)")
  ax2.set_title("paired change over training (band: 25–75 % of random "
                "seeds; " + ("higher" if task.higher_is_better else "lower")
                + " is better)", fontsize=10)
  if pairs:
    ax2.legend(fontsize=7)

  for i, (r, b) in enumerate(pairs):
    rel = 100 * (r.final - b.final) / np.abs(b.final)
    x = i + np.linspace(-0.15, 0.15, rel.size) if rel.size > 1 else [i]
    ax3.scatter(x, rel, s=18, color=colour[r.name])
    ax3.hlines(np.nanmean(rel), i - 0.3, i + 0.3, colors="k")
  ax3.axhline(0.0, color="grey", lw=0.8, ls="--")
  ax3.set_xticks(range(len(pairs)))
  ax3.set_xticklabels([textwrap.fill(report.label(r.name), 16)
                       for r, _ in pairs], fontsize=7)
  ax3.set_ylabel("paired change of the final metric (% of baseline)")
  ax3.set_title("final, per random seed, vs its baseline (middle panel's "
                "legend); bar: mean", fontsize=9)
  for ax in (ax1, ax2):
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
  fig.tight_layout()
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return True
