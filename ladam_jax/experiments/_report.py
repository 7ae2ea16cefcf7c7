"""What ``ladam-bench`` writes: a report, its JSON record and a plot.

The record (``TASK.json``) holds every number; the report (``TASK.md``,
opening with its verdict) and the plot (``TASK.png``) are drawn from the
record alone (:func:`render_markdown`, :func:`plot_record`), so that
``ladam-bench report DIR`` redraws them without training.
"""

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
from ladam_jax.experiments import _style
from ladam_jax.experiments import _tasks
from ladam_jax.experiments._train import RunResult

__all__ = ["Report", "plot", "plot_record", "render_markdown", "versions",
           "paired_finite", "write_files", "pyplot", "is_task_record"]


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


def _arr(values) -> np.ndarray:
  """JSON floats (None for a diverged value) as a float64 array (NaN)."""
  return np.asarray([np.nan if v is None else v for v in values], np.float64)


def title_of(record: dict) -> str:
  """The report's title: 'ladam-bench TASK' ('... c2-sweep (TASK)')."""
  if record.get("title"):
    return record["title"]
  if record.get("sweep"):
    return f"ladam-bench c2-sweep ({record['base_task']})"
  return f"ladam-bench {record['task']}"


def header_text(record: dict) -> str:
  """The run's description, its sizes, the reference's claim, the command."""
  r = record
  settings, baselines = r["settings"], r["baselines"]
  c2s = sorted({s["c2"] for n, s in settings.items()
                if s is not None and baselines.get(n)})
  seeds = r["seeds"]
  backend = f" on {r['backend']}" if r.get("backend") else ""
  return "\n".join([
      f"{r['description']}.",
      "",
      f"{len(seeds)} random seeds ({seeds[0]}-{seeds[-1]}) × "
      f"{r['steps']} steps, c2 {', '.join(f'{c:g}' for c in c2s)}, "
      f"{r['init']} init; final {r['metric']}. Paired: the same "
      "initialisation, data and batches per random seed; win = better "
      "than the baseline by > 0.1 %; Wilcoxon signed-rank, two-sided.",
      f"The reference (ladam 0.4.1): {r['reference']}.",
      f"Its claim: {r['claim'] or '—'}.",
      f"Run: `{r['command']}` — JAX {r['versions']['jax']}{backend} "
      f"({r['platform']}), {r['seconds']:.0f} s.",
  ])


def table_text(record: dict) -> str:
  """One row per run: mean ± std, the other metrics, the paired stats."""
  r = record
  higher, metric = r["higher_is_better"], r["metric"]
  names = list(r["results"])
  extra = [m for m in r["metrics"][names[0]] if m != metric]
  lines = [
      f"| optimizer | {_style.axis_label(metric, higher)}, mean ± std "
      + "".join(f"| {m}, mean " for m in extra)
      + "| vs | mean paired change | win rate | Wilcoxon p | diverged "
      "| seconds |",
      "|---|---|" + "---|" * len(extra) + "---|---|---|---|---|---|",
  ]
  for name in names:
    final = _arr(r["results"][name])
    finite = final[np.isfinite(final)]
    label = r["labels"].get(name, name)
    if finite.size:
      s = _stats.summarize(finite)
      row = [label, f"{_fmt(s.mean)} ± {_fmt(s.std)}"]
    else:
      row = [label, "diverged"]
    for m in extra:
      v = _arr(r["metrics"][name][m])
      v = v[np.isfinite(v)]
      row.append(_fmt(float(v.mean())) if v.size else "diverged")
    base = r["baselines"].get(name)
    n_bad = int((~np.isfinite(final)).sum())
    if base is not None and base in r["results"]:
      p, n_bad = paired_finite(final, _arr(r["results"][base]), higher)
      if p is None:
        row += [base, "—", "—", "—"]
      else:
        row += [base, f"{100 * p.rel_change:+.2f} %",
                f"{100 * p.win_rate:.0f} % ({round(p.win_rate * p.n)}/{p.n})",
                f"{p.p_value:.3g}"]
    else:
      row += ["—", "—", "—", "—"]
    row += [f"{n_bad}/{final.size}" if n_bad else "0",
            f"{r['run_seconds'][name]:.0f}"]
    lines.append("| " + " | ".join(row) + " |")
  return "\n".join(lines)


def sweep_text(record: dict) -> str:
  """The c2-sweep's cells, its in-sample best and held-out estimate."""
  sw, seeds, labels = record.get("sweep"), record["seeds"], record["labels"]
  if not sw:
    return ""
  lines = ["| cell | c2 | steps | mean paired change | win rate | "
           "Wilcoxon p |", "|---|---|---|---|---|---|"]
  for c in sw["cells"]:
    lines.append(f"| {labels.get(c['name'], c['name'])} | {c['c2']:g} | "
                 f"{c['steps']} | {100 * c['rel_change']:+.2f} % | "
                 f"{100 * c['win_rate']:.0f} % | {c['p_value']:.3g} |")
  b = sw["in_sample_best"]
  lines += ["", f"In-sample best cell (chosen and measured on all "
            f"{b['n']} random seeds, optimistic): c2 = {b['c2']:g}, "
            f"{b['steps']} steps: {100 * b['rel_change']:+.2f} %, win rate "
            f"{100 * b['win_rate']:.0f} %, p = {b['p_value']:.3g}."]
  for f in sw["held_out"]:
    sel, ev = f["select_seeds"], f["eval_seeds"]
    lines.append(
        f"Held out: chosen on random seeds {seeds[sel[0]]}-"
        f"{seeds[sel[-1]]} → c2 = {f['chosen']['c2']:g}, "
        f"{f['chosen']['steps']} steps; measured on "
        f"{seeds[ev[0]]}-{seeds[ev[-1]]}: "
        f"{100 * f['rel_change']:+.2f} %, win rate "
        f"{100 * f['win_rate']:.0f} %, p = {f['p_value']:.3g}.")
  if sw["held_out_rel_change"] is not None:
    lines.append(f"Held-out estimate of the best cell (mean of the two "
                 f"folds): {100 * sw['held_out_rel_change']:+.2f} %.")
  return "\n".join(lines)


def laplacian_adds(record: dict) -> list[dict]:
  """Each Laplacian optimizer against each control run beside it.

  The controls (``adam-floor``, ``ladam-shuffled``, ...) are compared with
  the Laplacian optimizer they take something from (their baseline); here
  that comparison is turned round, Laplacian optimizer vs control, so that
  a negative change on a lower-is-better metric means the Laplacian (or
  its spatial layout) helped. The A/A control is listed as it is (Adam on
  other random seeds vs Adam).
  """
  results, out = record["results"], []
  for name, what in _controls.CONTROL_MEANING.items():
    base = record["baselines"].get(name)
    if name not in results or base not in results:
      continue
    cand, ref = (name, base) if name == "adam-copy" else (base, name)
    p, n_bad = paired_finite(_arr(results[cand]), _arr(results[ref]),
                             record["higher_is_better"])
    out.append({"candidate": cand, "baseline": ref, "isolates": what,
                "diverged": n_bad, **({} if p is None else {
                    "rel_change": p.rel_change, "win_rate": p.win_rate,
                    "p_value": p.p_value, "n": p.n})})
  return out


def laplacian_adds_text(record: dict) -> str:
  """The section 'What the Laplacian adds': its verdict and its table."""
  rows = laplacian_adds(record)
  if not rows:
    return ""
  labels = record["labels"]
  verdict = _style.verdict(
      [{"name": f"{labels.get(c['candidate'], c['candidate'])} vs "
                f"{labels.get(c['baseline'], c['baseline'])}",
        "rel_change": c.get("rel_change"), "p_value": c.get("p_value"),
        "diverged": c["diverged"]} for c in rows],
      record["higher_is_better"], record["metric"], len(record["seeds"]))
  lines = ["## What the Laplacian adds", "",
           "Each LAdam run against the control beside it, which keeps "
           "everything but one thing (the column \"isolates\"); the A/A run "
           "shows what no difference looks like. Verdict: " + verdict, "",
           "| comparison | isolates | mean paired change | win rate | "
           "Wilcoxon p |", "|---|---|---|---|---|"]
  for c in rows:
    cells = (["—", "—", "—"] if "rel_change" not in c else [
        f"{100 * c['rel_change']:+.2f} %",
        f"{100 * c['win_rate']:.0f} % ({round(c['win_rate'] * c['n'])}/"
        f"{c['n']})", f"{c['p_value']:.3g}"])
    lines.append(f"| {labels.get(c['candidate'], c['candidate'])} vs "
                 f"{labels.get(c['baseline'], c['baseline'])} | "
                 f"{c['isolates']} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def comparisons(record: dict) -> list[dict]:
  """Every run against its baseline (the controls excepted: they are in
  'What the Laplacian adds'), as :func:`_style.verdict` takes them."""
  r, out = record, []
  for name, base in r["baselines"].items():
    if base is None or base not in r["results"] or _is_control(name):
      continue
    p, n_bad = paired_finite(_arr(r["results"][name]),
                             _arr(r["results"][base]), r["higher_is_better"])
    out.append({"name": f"{r['labels'].get(name, name)} vs "
                        f"{r['labels'].get(base, base)}",
                "candidate": name, "baseline": base, "diverged": n_bad,
                "rel_change": None if p is None else p.rel_change,
                "p_value": None if p is None else p.p_value})
  return out


def _is_control(name: str) -> bool:
  """Whether run ``name`` is one of the controls."""
  return name in _controls.CONTROL_MEANING


def _sweep_verdict(record: dict) -> str:
  sw, higher = record["sweep"], record["higher_is_better"]
  cells = sw["cells"]
  good = sum(1 for c in cells if c["p_value"] < _style.SIGNIFICANCE
             and (c["rel_change"] > 0) == higher and c["rel_change"] != 0)
  bad = sum(1 for c in cells if c["p_value"] < _style.SIGNIFICANCE
            and (c["rel_change"] > 0) != higher and c["rel_change"] != 0)
  text = (f"The c2 sweep, {len(cells)} cells against their baselines over "
          f"{len(record['seeds'])} random seeds: {good} significantly "
          f"better, {bad} significantly worse, {len(cells) - good - bad} "
          "with no significant difference (in-sample; the best of several "
          "cells is optimistic)")
  if sw.get("held_out_rel_change") is not None:
    text += (f"; the held-out estimate of the best cell is "
             f"{100 * sw['held_out_rel_change']:+.2f} % {record['metric']}")
  return text + "."


def verdict_text(record: dict) -> str:
  """The sentence a report opens with, and the rule behind it."""
  higher, metric = record["higher_is_better"], record["metric"]
  if record.get("sweep"):
    sentence = _sweep_verdict(record)
  else:
    sentence = _style.verdict(comparisons(record), higher, metric,
                              len(record["seeds"]))
  if not sentence:
    return ""
  direction = "positive" if higher else "negative"
  return (f"**Verdict:** {sentence}\n\n"
          f"({_style.rule()[0].upper() + _style.rule()[1:]}; each change is "
          f"paired, in % of the baseline's {metric}, and a {direction} "
          "change is better.)")


def render_markdown(record: dict) -> str:
  """The report ``TASK.md`` from its record ``TASK.json`` (alone)."""
  parts = [f"# {title_of(record)}"]
  verdict = verdict_text(record)
  if verdict:
    parts.append(verdict)
  notes = _style.label_notes(list(record["labels"].values()))
  if notes:
    parts.append(notes)
  parts += [header_text(record), table_text(record)]
  adds = laplacian_adds_text(record)
  if adds:
    parts.append(adds)
  if record.get("sweep"):
    parts.append(sweep_text(record))
  return "\n\n".join(parts) + "\n"


@dataclasses.dataclass
class Report:
  """Everything one ``ladam-bench`` run produced.

  Its record (:meth:`record`, written as ``TASK.json``) holds all a report
  shows: the markdown and the plot are drawn from it alone
  (:func:`render_markdown`, :func:`plot_record`), so ``ladam-bench report
  DIR`` redraws them from the JSON without training.
  """
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

  def header(self) -> str:
    return header_text(self.record())

  def table(self) -> str:
    return table_text(self.record())

  def sweep_text(self) -> str:
    return sweep_text(self.record())

  def laplacian_adds(self) -> list[dict]:
    return laplacian_adds(self.record())

  def markdown(self) -> str:
    return render_markdown(self.record())

  # ---- JSON -----------------------------------------------------------------

  def record(self) -> dict[str, Any]:
    """The machine-readable record (``TASK.json``)."""
    t = self.task
    torch_run = any(r.name.startswith("torch-") for r in self.results)
    steps = np.asarray(self.results[0].steps).tolist()

    def floats(a):
      return [float(x) if np.isfinite(x) else None for x in np.ravel(a)]

    record = {
        "task": self.stem if self.stem != t.name else t.name,
        "base_task": t.name,
        "title": self.title,
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
        "backend": jax.default_backend(),
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
        "diagnostics": self.diagnostics,
    }
    record["laplacian_adds"] = laplacian_adds(record)
    return record

  def write(self, out: str) -> tuple[str, str]:
    record = self.record()
    return write_files(out, self.stem, render_markdown(record), record)


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


def is_task_record(record: dict) -> bool:
  """Whether ``record`` is a task's ``TASK.json`` (not a tune record)."""
  return all(k in record for k in ("results", "curves", "baselines",
                                   "labels"))


def _mean_curve(rows: np.ndarray) -> np.ndarray:
  """Mean over random seeds of the finite values (NaN where none is)."""
  finite = np.isfinite(rows)
  n = finite.sum(axis=0)
  total = np.where(finite, rows, 0.0).sum(axis=0)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def late_limits(curves: Sequence[np.ndarray], steps: np.ndarray,
                log: bool, late: float = 0.4) -> Optional[tuple]:
  """y-limits that show where the curves differ: the range of the mean
  curves after ``late`` of training (``steps`` None: the curves given are
  that part already), padded by 8 % (in log space if ``log``); None if
  nothing is finite there."""
  if steps is None:  # the curves are already cut to their late part
    values = np.concatenate([np.ravel(c) for c in curves])
  else:
    steps = np.asarray(steps, np.float64)
    keep = steps >= late * steps.max()
    values = np.concatenate([np.asarray(c)[keep] for c in curves])
  values = values[np.isfinite(values)]
  if log:
    values = values[values > 0]
  if not values.size:
    return None
  lo, hi = float(values.min()), float(values.max())
  if log:
    span = max(np.log10(hi / lo), 1e-3)
    return lo / 10 ** (0.08 * span), hi * 10 ** (0.08 * span)
  span = (hi - lo) or max(abs(hi), 1e-12) * 0.05
  return lo - 0.08 * span, hi + 0.08 * span


# Paired changes beyond this (in %) are drawn on a symmetric log scale
# (linear within ±1 %), so that one diverging run does not flatten the rest.
_SYMLOG_ABOVE = 50.0


def _change_label(metric: str, higher: bool, what: str) -> str:
  sign = "positive" if higher else "negative"
  return f"{what} in {metric}, % of baseline\n({sign} is better)"


def plot_record(path: str, record: dict) -> bool:
  """Three panels from a task's record (``TASK.json``) alone.

  Left: mean learning curves, the y-axis on the range where the optimizers
  differ (the last 60 % of training; log scale for a positive
  lower-is-better metric). Middle: each run's paired change against its
  baseline over training. Right: the final paired change of every random
  seed, one row per comparison. One colour per optimizer, the same in every
  panel and report (:mod:`~ladam_jax.experiments._style`); one legend,
  below the panels. Returns False (and writes nothing) when matplotlib is
  not installed.
  """
  plt = pyplot()
  if plt is None:
    return False
  r = record
  higher, metric = r["higher_is_better"], r["metric"]
  names = list(r["results"])
  curves = {n: np.asarray([_arr(row) for row in r["curves"][n]])
            for n in names}
  steps = {n: np.asarray(r["curve_steps"][n]) for n in names}
  finals = {n: _arr(r["results"][n]) for n in names}
  baselines = r["baselines"]
  is_base = {n: not baselines.get(n) for n in names}

  def label(n):
    return r["labels"].get(n, n)

  styles = {n: _style.style(n, is_base[n]) for n in names}
  if r.get("sweep"):  # the cells of one optimizer: one colour per c2
    cells = [n for n in names if baselines.get(n)]
    cmap = plt.get_cmap("viridis")
    for i, n in enumerate(cells):
      styles[n]["color"] = cmap(i / max(len(cells) - 1, 1) * 0.9)
  pairs = [(n, baselines[n]) for n in names if baselines.get(n) in curves]
  n_seeds = len(r["seeds"])

  height = max(5.2, 1.6 + 0.42 * len(pairs))
  fig, (ax1, ax2, ax3) = plt.subplots(
      1, 3, figsize=(18, height), layout="constrained",
      gridspec_kw={"width_ratios": [1.15, 1.15, 1.0]})
  means = {n: _mean_curve(curves[n]) for n in names}
  # Log scale for a positive lower-is-better metric whose late range spans
  # more than a factor 3 (a narrower range reads better on a linear axis).
  positive = late_limits([means[n] for n in names], steps[names[0]], True)
  log = (not higher and positive is not None
         and positive[1] / positive[0] > 3.0)
  # Baselines last, so that they are drawn over the curves that lie on them.
  order = sorted(names, key=lambda n: is_base[n])
  handles = {}
  for n in order:
    s = styles[n]
    # Markers at every 10th evaluation on a line; at every one without.
    every = 1 if s["ls"] == "none" else max(1, len(steps[n]) // 10)
    (line,) = ax1.plot(steps[n], means[n], markevery=every, label=label(n),
                       **s)
    handles[n] = line
    if len(names) <= 3:
      ax1.fill_between(steps[n], np.nanmin(curves[n], axis=0),
                       np.nanmax(curves[n], axis=0), color=s["color"],
                       alpha=0.08, lw=0)
  if log:
    ax1.set_yscale("log")
  limits = late_limits([means[n] for n in names], steps[names[0]], log)
  if limits is not None:
    ax1.set_ylim(*limits)
  ax1.set_xlabel("training step")
  ax1.set_ylabel(_style.axis_label(metric, higher))
  ax1.set_title(f"{r['base_task']}: mean over {n_seeds} random seeds\n"
                "(y-axis: the last 60 % of training, where the optimizers "
                "differ" + ("; min–max band" if len(names) <= 3 else "")
                + ")", fontsize=9)

  changes = []
  for n, b in pairs:
    with np.errstate(invalid="ignore", divide="ignore"):
      rel = 100 * (curves[n] - curves[b]) / np.abs(curves[b])
    rel = np.where(np.isfinite(rel), rel, np.nan)
    s = dict(styles[n], ls="-" if not n.startswith("torch-") else "none")
    mean = _mean_curve(rel)
    late = steps[n] >= 0.4 * steps[n].max()
    changes.append(mean[late])
    ax2.plot(steps[n], mean, markevery=1 if s["ls"] == "none" else max(
        1, len(steps[n]) // 10), **s)
    if len(pairs) <= 3:
      ax2.fill_between(steps[n], np.nanpercentile(rel, 25, axis=0),
                       np.nanpercentile(rel, 75, axis=0),
                       color=s["color"], alpha=0.12, lw=0)
  ax2.axhline(0.0, color="grey", lw=0.8, ls="--")
  if changes:
    limits = late_limits(changes + [np.zeros(1)], None, False)
    if limits is not None:
      ax2.set_ylim(*limits)
      if max(abs(limits[0]), abs(limits[1])) > _SYMLOG_ABOVE:
        ax2.set_yscale("symlog", linthresh=1.0)
  ax2.set_xlabel("training step")
  ax2.set_ylabel(_change_label(metric, higher, "paired change"))
  ax2.set_title("each run against its baseline, mean over random seeds"
                "\n(y-axis: the last 60 % of training"
                + ("; band: 25–75 % of random seeds" if len(pairs) <= 3
                   else "") + ")", fontsize=9)

  for i, (n, b) in enumerate(pairs):
    with np.errstate(invalid="ignore", divide="ignore"):
      rel = 100 * (finals[n] - finals[b]) / np.abs(finals[b])
    y = i + (np.linspace(-0.18, 0.18, rel.size) if rel.size > 1 else
             np.zeros(1))
    ax3.scatter(rel, y, s=16, color=styles[n]["color"], zorder=3,
                marker="x" if n.startswith("torch-") else "o")
    if np.isfinite(rel).any():
      ax3.vlines(np.nanmean(rel), i - 0.32, i + 0.32, colors="k", lw=1.6,
                 zorder=4)
  ax3.axvline(0.0, color="grey", lw=0.8, ls="--")
  spread = [np.nanmax(np.abs(100 * (finals[n] - finals[b]) / np.abs(finals[b])))
            for n, b in pairs if np.isfinite(finals[n] - finals[b]).any()]
  if spread and max(spread) > _SYMLOG_ABOVE:
    ax3.set_xscale("symlog", linthresh=1.0)
  ax3.set_yticks(range(len(pairs)))
  ax3.set_yticklabels([textwrap.fill(f"{label(n)} vs {label(b)}", 38)
                       for n, b in pairs], fontsize=7)
  ax3.set_ylim(len(pairs) - 0.5, -0.5)
  ax3.set_xlabel(_change_label(metric, higher, "final paired change")
                 .replace("\n", " "))
  ax3.set_title("final, one dot per random seed; bar: mean", fontsize=9)
  ax3.grid(axis="x", alpha=0.3)
  if pairs:
    ax3.yaxis.tick_right()
  fig.legend([handles[n] for n in names], [label(n) for n in names],
             loc="outside lower center", ncol=min(4, len(names)), fontsize=8,
             frameon=False)
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return True


def plot(path: str, report: Report) -> bool:
  """:func:`plot_record` of ``report``'s record."""
  return plot_record(path, report.record())
