r"""``ladam-bench tune``: every optimizer tuned with the same budget.

A comparison at one learning rate favours whichever optimizer that rate
suits. Here each optimizer searches its own hyperparameters with the same
number of trials: a scrambled Halton sequence (``scipy.stats.qmc``) over
log-uniform ranges, lr for all, c2 for the Laplacian optimizers and eps for
``adam-eps`` (Adam whose eps gets the budget LAdam's c2 gets: LAdam acts
much like Adam with a neighbour-dependent epsilon, so this is its control).
Every trial trains on the tuning random seeds (``base_seed +
TUNE_SEED_OFFSET, ...``); the trial with the best mean final metric is then
re-run on the held-out random seeds (``base_seed, ...``, those of the other
tables) and compared, paired, with tuned Adam and tuned ``adam-eps``.

All the trials of one optimizer are one compiled program: the optimizer is
built with ``optax.inject_hyperparams`` and the trials' values are set in
its state, seed by seed (see :func:`~ladam_jax.experiments._train.
train_seeds`).

:func:`summarize` combines the ``tune-TASK.json`` of several tasks: a
performance profile (Dolan and Moré, 2002) and Holm-corrected p-values.
"""

from __future__ import annotations

import dataclasses
import math
import os
import textwrap
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

import ladam_jax
from ladam_jax import _smoothing
from ladam_jax.experiments import _report
from ladam_jax.experiments import _stats
from ladam_jax.experiments import _style
from ladam_jax.experiments import _tasks
from ladam_jax.experiments import _train

__all__ = ["Dim", "TuneOptimizer", "TUNABLE", "DEFAULT_TUNE_OPTIMIZERS",
           "TUNE_SEED_OFFSET", "search_points", "tune", "TuneReport",
           "holm", "performance_profile", "summarize", "is_tune_record"]

# The tuning random seeds are this far from the held-out ones (and from
# the A/A control's, _optimizers.AA_SEED_OFFSET).
TUNE_SEED_OFFSET = 20_000


@dataclasses.dataclass(frozen=True)
class Dim:
  """A log-uniform search range: 10**low to 10**high.

  With ``relative`` the range is relative to the task's learning rate
  (``low = -1, high = 1``: a tenth of it to ten times it).
  """
  name: str
  low: float
  high: float
  relative: bool = False

  def bounds(self, task_lr: float) -> tuple[float, float]:
    shift = math.log10(task_lr) if self.relative else 0.0
    return 10.0 ** (self.low + shift), 10.0 ** (self.high + shift)


LR = Dim("learning_rate", -1.0, 1.0, relative=True)
C2 = Dim("c2", -6.0, -1.0)      # 1e-6 … 1e-1 (the 9-point bound is 0.1875)
EPS = Dim("eps", -10.0, -2.0)   # 1e-10 … 1e-2
SIGMA = Dim("sigma", -2.0, 2.0)  # 0.01 … 100 (any sigma >= 0 is stable)


@dataclasses.dataclass(frozen=True)
class TuneOptimizer:
  """An optimizer to tune: ``factory(**hyperparameters)`` for
  ``optax.inject_hyperparams``, searched over ``dims``."""
  name: str
  label: str
  factory: Callable[..., optax.GradientTransformation]
  dims: tuple
  fixed: dict = dataclasses.field(default_factory=dict)

  def build(self, values: dict) -> optax.GradientTransformation:
    """``inject_hyperparams(factory)`` at ``values`` (hyperparameters in state)."""
    return optax.inject_hyperparams(self.factory)(
        **self.fixed, **{k: float(v) for k, v in values.items()})


def _ladam(floor: bool):
  """LAdam with the package's floor (eps) or the scripts' (0): lr and c2
  injectable, everything else static."""
  def factory(learning_rate, c2):
    return ladam_jax.ladam(learning_rate, c2=c2,
                           variance_floor="eps" if floor else 0.0)
  return factory


def _lsadam(learning_rate, sigma):
  """LS-Adam with lr and sigma injectable, everything else static."""
  return _smoothing.lsadam(learning_rate, sigma=sigma)


def _lsadam_nu(learning_rate, sigma):
  """Adam with v̂ smoothed implicitly; lr and sigma injectable."""
  return _smoothing.lsadam(learning_rate, sigma=sigma, target="nu")


TUNABLE = {o.name: o for o in (
    TuneOptimizer("adam", "Adam (lr tuned)", optax.adam, (LR,)),
    TuneOptimizer("adam-eps", "Adam (lr and eps tuned; control)", optax.adam,
                  (LR, EPS)),
    TuneOptimizer("ladam", "LAdam, floor eps (lr and c2 tuned)", _ladam(True),
                  (LR, C2)),
    TuneOptimizer("ladam-floor0", "LAdam, floor 0 (lr and c2 tuned)",
                  _ladam(False), (LR, C2)),
    TuneOptimizer("lsadam", "LS-Adam, gradient smoothed (lr and sigma tuned)",
                  _lsadam, (LR, SIGMA)),
    TuneOptimizer("lsadam-nu", "Adam, v̂ smoothed implicitly (lr and sigma "
                  "tuned)", _lsadam_nu, (LR, SIGMA)),
)}
DEFAULT_TUNE_OPTIMIZERS = ("adam", "adam-eps", "ladam", "ladam-floor0",
                           "lsadam", "lsadam-nu")
# (candidate, baseline): every tuned optimizer against tuned Adam, and the
# Laplacian optimizers against Adam whose eps had the same budget.
# LS-Adam answers the reference's FAQ: smooth the variance (LAdam) or the
# gradient (Osher et al.)?
COMPARISONS = (("adam-eps", "adam"), ("ladam", "adam"), ("ladam-floor0", "adam"),
               ("ladam", "adam-eps"), ("ladam-floor0", "adam-eps"),
               ("lsadam", "adam"), ("lsadam-nu", "adam"), ("ladam", "lsadam"),
               ("ladam-floor0", "lsadam"), ("lsadam-nu", "ladam-floor0"))


def search_points(dims: Sequence[Dim], budget: int, task_lr: float,
                  seed: int = 0) -> dict[str, np.ndarray]:
  """``budget`` quasi-random settings: name → (budget,) values.

  A scrambled Halton sequence in the unit cube, mapped log-uniformly onto
  each range; the same ``seed`` gives the same points.
  """
  from scipy.stats import qmc  # pylint: disable=import-outside-toplevel
  if budget < 1:
    raise ValueError(f"`budget` must be >= 1, got {budget}.")
  u = qmc.Halton(d=len(dims), scramble=True, seed=seed).random(budget)
  out = {}
  for j, dim in enumerate(dims):
    lo, hi = dim.bounds(task_lr)
    out[dim.name] = 10.0 ** (math.log10(lo) + u[:, j] * (
        math.log10(hi) - math.log10(lo)))
  return out


def _tile(prepared: _train.Prepared, n: int) -> _train.Prepared:
  """``n`` copies of every random seed, trial-major (trial i, seed j at
  ``i * n_seeds + j``)."""
  def tile(x):
    return jnp.concatenate([x] * n)
  return _train.Prepared(np.tile(prepared.seeds, n),
                         jax.tree.map(tile, prepared.params),
                         jax.tree.map(tile, prepared.data),
                         tile(prepared.batch_keys))


def _score(per_seed: np.ndarray, higher: bool) -> np.ndarray:
  """Mean over the tuning random seeds; a trial that diverged on any is
  worst."""
  mean = per_seed.mean(axis=-1)
  worst = -np.inf if higher else np.inf
  return np.where(np.all(np.isfinite(per_seed), axis=-1), mean, worst)


def _best(scores: np.ndarray, higher: bool) -> int:
  return int(np.argmax(scores) if higher else np.argmin(scores))


def tune(task: _tasks.Task, size: _tasks.Size, names: Sequence[str], *,
         budget: int, tune_seeds: int, base_seed: int = 0,
         search_seed: int = 0,
         progress: Optional[Callable[[int], Any]] = None) -> dict:
  """Tunes each optimizer of ``names`` and re-runs its best trial held out.

  Args:
    task: the task.
    size: its size; ``size.seeds`` held-out random seeds.
    names: keys of :data:`TUNABLE`.
    budget: trials per optimizer (the same for each).
    tune_seeds: random seeds each trial trains on.
    base_seed: held-out random seeds are ``base_seed, ...``; tuning ones
      ``base_seed + TUNE_SEED_OFFSET, ...``.
    search_seed: seed of the Halton scrambling.
    progress: called with the number of seed-steps done.

  Returns:
    The record :class:`TuneReport` writes (without the run's metadata).
  """
  higher = task.higher_is_better
  tune_size = dataclasses.replace(size, seeds=tune_seeds)
  tuned = _train.prepare(task, tune_size, base_seed + TUNE_SEED_OFFSET)
  trials_size = dataclasses.replace(size, seeds=tune_seeds * budget)
  trials_prepared = _tile(tuned, budget)
  held = _train.prepare(task, size, base_seed)
  out = {}
  for name in names:
    opt = TUNABLE[name]
    points = search_points(opt.dims, budget, task.learning_rate, search_seed)
    tx = opt.build({k: v[0] for k, v in points.items()})
    run = _train.train_seeds(
        task, trials_size, tx, name=name, prepared=trials_prepared,
        progress=progress,
        hyperparams={k: np.repeat(v, tune_seeds) for k, v in points.items()})
    per_seed = run.final.reshape(budget, tune_seeds)
    scores = _score(per_seed, higher)
    best = _best(scores, higher)
    chosen = {k: float(v[best]) for k, v in points.items()}
    final = _train.train_seeds(task, size, opt.build(chosen), name=name,
                               prepared=held, progress=progress)
    out[name] = {
        "label": opt.label,
        "dims": {d.name: list(d.bounds(task.learning_rate)) for d in opt.dims},
        "fixed": opt.fixed,
        "trials": [{k: float(v[i]) for k, v in points.items()}
                   for i in range(budget)],
        "trial_scores": [float(s) if np.isfinite(s) else None for s in scores],
        "trial_per_seed": [[float(x) if np.isfinite(x) else None for x in row]
                           for row in per_seed],
        "chosen": chosen, "chosen_index": best,
        "held_out": [float(x) if np.isfinite(x) else None
                     for x in final.final],
        "held_out_curve": np.nanmean(final.curves, 0).tolist(),
        "curve_steps": final.steps.tolist(),
        "seconds": run.seconds + final.seconds,
    }
  comps = []
  for cand, base in COMPARISONS:
    if cand in out and base in out:
      p, n_bad = _report.paired_finite(
          np.asarray(out[cand]["held_out"], np.float64),
          np.asarray(out[base]["held_out"], np.float64), higher)
      comps.append({"candidate": cand, "baseline": base, "diverged": n_bad,
                    **({} if p is None else dataclasses.asdict(p))})
  return {"optimizers": out, "comparisons": comps,
          "held_out_seeds": held.seeds.tolist(),
          "tune_seeds": tuned.seeds.tolist(), "budget": budget,
          "search": "scrambled Halton (scipy.stats.qmc), log-uniform ranges, "
                    f"seed {search_seed}"}


def _nan(x):
  return np.nan if x is None else x


def is_tune_record(record: dict) -> bool:
  """Whether ``record`` is a ``tune-TASK.json`` (one tuned task)."""
  return all(k in record for k in ("optimizers", "comparisons", "budget",
                                   "held_out_seeds"))


def _verdict(r: dict) -> str:
  """The tune report's opening sentence and its rule."""
  opts = r["optimizers"]
  rows = [{"name": f"{opts[c['candidate']]['label']} vs "
                   f"{opts[c['baseline']]['label']}",
           "rel_change": c.get("rel_change"), "p_value": c.get("p_value"),
           "diverged": c.get("diverged")} for c in r["comparisons"]]
  sentence = _style.verdict(rows, r["higher_is_better"], r["metric"],
                            len(r["held_out_seeds"]))
  if not sentence:
    return ""
  rule = _style.rule()
  direction = "positive" if r["higher_is_better"] else "negative"
  return (f"**Verdict (held out, tuned vs tuned):** "
          f"{sentence}\n\n"
          f"({rule[0].upper() + rule[1:]}; each change is paired, in % of "
          f"the baseline's {r['metric']}, and a {direction} change is "
          "better.)")


@dataclasses.dataclass
class TuneReport:
  """The record of one ``ladam-bench tune`` run and what it writes."""
  record: dict

  @property
  def stem(self) -> str:
    return f"tune-{self.record['task']}"

  def markdown(self) -> str:
    r = self.record
    opts = r["optimizers"]
    better = "higher" if r["higher_is_better"] else "lower"
    lines = [f"# ladam-bench tune {r['task']}", ""]
    verdict = _verdict(r)
    if verdict:
      lines += [verdict, ""]
    notes = _style.label_notes([o["label"] for o in opts.values()])
    if notes:
      lines += [notes, ""]
    lines += [
        f"{r['description']}.", "",
        f"Each optimizer: {r['budget']} trials ({r['search']}) on "
        f"{len(r['tune_seeds'])} tuning random seeds ({r['tune_seeds'][0]}-"
        f"{r['tune_seeds'][-1]}), the best mean final {r['metric']} re-run "
        f"on {len(r['held_out_seeds'])} held-out random seeds "
        f"({r['held_out_seeds'][0]}-{r['held_out_seeds'][-1]}); "
        f"{r['steps']} steps; {r['init']} init. Paired: the same "
        "initialisation, data and batches per random seed; Wilcoxon "
        "signed-rank, two-sided.",
        f"Run: `{r['command']}` — JAX {r['versions']['jax']} on "
        f"{r['backend']} ({r['platform']}), {r['seconds']:.0f} s.", "",
        f"| optimizer | search ranges | chosen | best tuning score | "
        f"held-out {r['metric']} ({better} is better), mean ± std | "
        "diverged trials |", "|---|---|---|---|---|---|"]
    for name, o in opts.items():
      ranges = ", ".join(f"{k} {lo:.3g}–{hi:.3g}"
                         for k, (lo, hi) in o["dims"].items())
      chosen = ", ".join(f"{k} {v:.3g}" for k, v in o["chosen"].items())
      held = np.asarray([_nan(x) for x in o["held_out"]], np.float64)
      ok = held[np.isfinite(held)]
      s = _stats.summarize(ok) if ok.size else None
      n_div = sum(x is None for x in o["trial_scores"])
      score = o["trial_scores"][o["chosen_index"]]
      lines.append(
          f"| {o['label']} | {ranges} | {chosen} | "
          f"{_report._fmt(_nan(score))} | "  # pylint: disable=protected-access
          + (f"{_report._fmt(s.mean)} ± {_report._fmt(s.std)}"  # pylint: disable=protected-access
             if s else "diverged")
          + (f" ({held.size - ok.size} diverged)" if ok.size < held.size
             else "") + f" | {n_div}/{len(o['trial_scores'])} |")
    lines += ["", "| held out: tuned vs tuned | mean paired change | win rate "
              "| Wilcoxon p |", "|---|---|---|---|"]
    for c in r["comparisons"]:
      cells = (["—"] * 3 if "rel_change" not in c else [
          f"{100 * c['rel_change']:+.2f} %",
          f"{100 * c['win_rate']:.0f} % ({round(c['win_rate'] * c['n'])}/"
          f"{c['n']})", f"{c['p_value']:.3g}"])
      lines.append(f"| {opts[c['candidate']]['label']} vs "
                   f"{opts[c['baseline']]['label']} | " + " | ".join(cells)
                   + " |")
    return "\n".join(lines) + "\n"

  def write(self, out: str) -> tuple[str, str]:
    return _report.write_files(out, self.stem, self.markdown(), self.record)

  def plot(self, path: str) -> bool:
    """Learning-rate sensitivity, the second hyperparameter, held out.

    One colour per optimizer, the same as in every other report
    (:mod:`~ladam_jax.experiments._style`); one legend, below the panels.
    """
    plt = _report.pyplot()
    if plt is None:
      return False
    r = self.record
    opts = r["optimizers"]
    higher, metric = r["higher_is_better"], r["metric"]
    comps = [c for c in r["comparisons"] if "rel_change" in c]
    fig, (ax1, ax2, ax3) = plt.subplots(
        1, 3, figsize=(18, max(5.2, 1.6 + 0.42 * len(comps))),
        layout="constrained")
    handles = {}
    scores_all = []
    for name, o in opts.items():
      s = _style.style(name, is_baseline=name == "adam")
      lr = np.asarray([t["learning_rate"] for t in o["trials"]])
      score = np.asarray([_nan(s) for s in o["trial_scores"]], np.float64)
      scores_all.append(score)
      order = np.argsort(lr)
      (handles[name],) = ax1.plot(lr[order], score[order], **dict(
          s, ms=5, marker=s["marker"] if s["marker"] != "none" else "o"))
      ax1.plot(lr[o["chosen_index"]], score[o["chosen_index"]], "*", ms=14,
               color=s["color"], mec="k", zorder=5)
      other = [d for d in o["dims"] if d != "learning_rate"]
      if other:
        x = np.asarray([t[other[0]] for t in o["trials"]])
        ax2.scatter(x, score, s=22, color=s["color"], marker=s["marker"],
                    zorder=s["zorder"])
        ax2.plot(x[o["chosen_index"]], score[o["chosen_index"]], "*", ms=14,
                 color=s["color"], mec="k", zorder=5)
    values = np.concatenate(scores_all)
    values = values[np.isfinite(values)]
    for ax, xl in ((ax1, "learning rate (log)"),
                   (ax2, "c2 (LAdam), eps (adam-eps) or sigma (LS-Adam), "
                    "log")):
      ax.set_xscale("log")
      if (not higher and values.size and np.all(values > 0)
          and values.max() / values.min() > 3.0):
        ax.set_yscale("log")
      ax.set_xlabel(xl)
      ax.set_ylabel(_style.axis_label(
          f"{metric}, mean over the tuning random seeds", higher))
    ax1.set_title(f"{r['task']}: learning-rate sensitivity ({r['budget']} "
                  "trials each)\nstar: the trial chosen; diverged trials not "
                  "drawn", fontsize=9)
    ax2.set_title("the second hyperparameter of each optimizer", fontsize=9)
    for i, c in enumerate(comps):
      cand = np.asarray([_nan(x) for x in opts[c["candidate"]]["held_out"]],
                        np.float64)
      base = np.asarray([_nan(x) for x in opts[c["baseline"]]["held_out"]],
                        np.float64)
      with np.errstate(invalid="ignore", divide="ignore"):
        rel = 100 * (cand - base) / np.abs(base)
      y = i + (np.linspace(-0.18, 0.18, rel.size) if rel.size > 1 else
               np.zeros(1))
      ax3.scatter(rel, y, s=16, color=_style.colour(c["candidate"]),
                  zorder=3)
      if np.isfinite(rel).any():
        ax3.vlines(np.nanmean(rel), i - 0.32, i + 0.32, colors="k", lw=1.6,
                   zorder=4)
    ax3.axvline(0.0, color="grey", lw=0.8, ls="--")
    ax3.set_yticks(range(len(comps)))
    ax3.set_yticklabels([f"{c['candidate']} vs {c['baseline']}"
                         for c in comps], fontsize=8)
    ax3.set_ylim(len(comps) - 0.5, -0.5)
    ax3.yaxis.tick_right()
    ax3.grid(axis="x", alpha=0.3)
    ax3.set_xlabel(f"held-out paired change in {metric}, % of baseline ("
                   + ("positive" if higher else "negative") + " is better)")
    ax3.set_title("held out, tuned vs tuned: one dot per random seed; bar: "
                  "mean", fontsize=9)
    fig.legend(list(handles.values()),
               [f"{n}: {opts[n]['label']}" for n in handles],
               loc="outside lower center", ncol=min(3, len(handles)),
               fontsize=8, frameon=False)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def holm(p_values: Sequence[float]) -> list[float]:
  """Holm–Bonferroni adjusted p-values (same order as given).

  The i-th smallest of m p-values is multiplied by m − i + 1 (i from 1),
  made monotone and capped at 1; reject where the adjusted value is at most
  the family-wise level.
  """
  p = np.asarray(p_values, np.float64)
  m = p.size
  order = np.argsort(p, kind="stable")
  adjusted = np.empty(m)
  running = 0.0
  for rank, i in enumerate(order):
    running = max(running, min(1.0, (m - rank) * p[i]))
    adjusted[i] = running
  return adjusted.tolist()


def performance_profile(costs: np.ndarray, taus: np.ndarray) -> np.ndarray:
  """Dolan–Moré profile: ``costs`` (tasks, solvers), lower is better, > 0.

  Returns (solvers, len(taus)): the share of tasks on which a solver is
  within a factor tau of the best solver of that task (a diverged solver,
  cost inf or nan, is within no factor).
  """
  costs = np.asarray(costs, np.float64)
  costs = np.where(np.isfinite(costs), costs, np.inf)
  best = np.min(costs, axis=1, keepdims=True)
  ratio = costs / best
  return np.stack([np.mean(ratio[:, j][:, None] <= taus[None, :], axis=0)
                   for j in range(costs.shape[1])])


def _cost(mean: float, higher: bool) -> float:
  """A positive, lower-is-better cost: the metric, or 100 − accuracy %."""
  if mean is None or not np.isfinite(mean):
    return np.inf
  return (100.0 - mean) if higher else mean


def _summary_verdict(rows: Sequence[dict], higher: dict) -> str:
  """The summary's opening sentence: which comparisons hold after Holm.

  ``higher``: task → whether its metric is better higher.
  """
  sig = [r for r in rows if r["p_holm"] < _style.SIGNIFICANCE]
  rule = (f"significant: Holm-corrected p < {_style.SIGNIFICANCE:g}, from "
          "the paired two-sided Wilcoxon signed-rank test on each task's "
          "held-out random seeds, corrected over the tasks within each "
          "comparison; changes paired, in % of the baseline's metric")
  if not sig:
    return (f"**Verdict:** across {len(higher)} tasks, no comparison of "
            f"tuned optimizers is significant on any task ({rule}).")

  def one(r):
    good = (r["rel_change"] > 0) == higher[r["task"]]
    return (f"{r['candidate']} vs {r['baseline']} on {r['task']}: "
            f"{'better' if good else 'worse'}, "
            f"{100 * r['rel_change']:+.2f} %, Holm p = {r['p_holm']:.3g}")

  return (f"**Verdict:** across {len(higher)} tasks, {len(sig)} of "
          f"{len(rows)} task-comparisons are significant ({rule}): "
          + "; ".join(one(r) for r in sig) + "; the others are not.")


def summarize(records: Sequence[dict], out: str,
              plot: bool = True) -> tuple[str, str, Optional[str]]:
  """Across tasks: Holm-corrected p-values and a performance profile.

  Each comparison (e.g. LAdam vs Adam) is one family over the tasks; its
  p-values are Holm-corrected within it. The profile's cost is the held-out
  mean of the task's metric (lower is better), or 100 − accuracy % for the
  accuracy tasks (the error rate).

  Returns the paths of the markdown, the JSON and the plot (None if not
  drawn).
  """
  if not records:
    raise ValueError("no tune-*.json records to summarize.")
  names = [n for n in DEFAULT_TUNE_OPTIMIZERS
           if all(n in r["optimizers"] for r in records)]
  families = {}
  for r in records:
    for c in r["comparisons"]:
      if "p_value" in c:
        families.setdefault((c["candidate"], c["baseline"]), []).append(
            (r["task"], c))
  rows = []
  for (cand, base), items in families.items():
    adjusted = holm([c["p_value"] for _, c in items])
    for (task, c), adj in zip(items, adjusted):
      rows.append({"candidate": cand, "baseline": base, "task": task,
                   "rel_change": c["rel_change"], "win_rate": c["win_rate"],
                   "n": c["n"], "p_value": c["p_value"], "p_holm": adj,
                   "family_size": len(items)})
  costs = np.asarray([[_cost(np.nanmean(np.asarray(
      [_nan(x) for x in r["optimizers"][n]["held_out"]], np.float64)),
      r["higher_is_better"]) for n in names] for r in records])
  with np.errstate(invalid="ignore", divide="ignore"):
    ratios = costs / np.min(costs, axis=1, keepdims=True)
  ratios = ratios[np.isfinite(ratios)]
  worst = float(ratios.max()) if ratios.size else 2.0
  # τ = 1, 1.01 and 1.05 exactly (the table's), then up to past the worst
  # ratio, so that the profile reaches its final level.
  taus = np.unique(np.concatenate([[1.0, 1.01, 1.05], np.geomspace(
      1.001, max(2.0, 1.05 * worst), 400)]))
  profile = performance_profile(costs, taus)
  summary = {"tasks": [r["task"] for r in records], "optimizers": names,
             "costs": [[c if np.isfinite(c) else None for c in row]
                       for row in costs],
             "comparisons": rows, "taus": taus.tolist(),
             "profile": profile.tolist()}
  lines = ["# ladam-bench tune: across tasks", "",
           _summary_verdict(rows, {r["task"]: r["higher_is_better"]
                                   for r in records}), "",
           f"Tasks: {', '.join(summary['tasks'])}. Held-out results of each "
           "optimizer's tuned setting; p-values Holm-corrected within each "
           "comparison over the tasks.", "",
           "| comparison | task | mean paired change | win rate | "
           "Wilcoxon p | Holm p |", "|---|---|---|---|---|---|"]
  for row in rows:
    lines.append(f"| {row['candidate']} vs {row['baseline']} | {row['task']} "
                 f"| {100 * row['rel_change']:+.2f} % | "
                 f"{100 * row['win_rate']:.0f} % | {row['p_value']:.3g} | "
                 f"{row['p_holm']:.3g} |")
  at = {t: int(np.argmin(np.abs(taus - t))) for t in (1.0, 1.01, 1.05)}
  lines += ["", "Performance profile (share of tasks within a factor τ of the "
            "best optimizer's cost):", "",
            "| optimizer | " + " | ".join(f"τ = {t:g}" for t in at) + " |",
            "|---|" + "---|" * len(at)]
  for j, n in enumerate(names):
    lines.append(f"| {n} | " + " | ".join(
        f"{profile[j, i]:.2f}" for i in at.values()) + " |")
  md, js = _report.write_files(out, "tune-summary", "\n".join(lines) + "\n",
                               summary)
  png = None
  plt = _report.pyplot() if plot else None
  if plt is not None:
    fig, ax = plt.subplots(figsize=(9, 4.8), layout="constrained")
    for j, n in enumerate(names):
      s = _style.style(n, is_baseline=n == "adam")
      ax.step(taus, profile[j], where="post", label=n, color=s["color"],
              ls=s["ls"], lw=s["lw"], zorder=s["zorder"], alpha=s["alpha"])
    ax.set_xscale("log")
    ticks = [x for x in (1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)
             if x <= taus.max()]
    ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
    ax.set_xticks([], minor=True)
    ax.set_xlabel("τ: cost within a factor τ of the task's best optimizer "
                  "(log)")
    ax.set_ylabel("share of tasks (higher is better)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(textwrap.fill(
        "Performance profile, held-out tuned results over "
        f"{len(records)} tasks (cost: the metric, or the error % for "
        "accuracy); a curve higher and further left is better", 70),
                 fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False)
    png = os.path.join(out, "tune-summary.png")
    fig.savefig(png, dpi=100)
    plt.close(fig)
  return md, js, png
