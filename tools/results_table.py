"""Writes the results tables of the README and the docs from the committed
ladam-bench JSON.

Each table sits between a pair of markers (``<!-- NAME:begin -->`` and
``<!-- NAME:end -->``) in one file (``TARGETS`` below): the README's summary
(``summary``) and its speed line, the tables of ``docs/results.md`` ("Does
it help?") and those of ``docs/performance.md``.
Every number in them comes from

- ``benchmarks/ladam-bench/full/TASK.json`` (the README's summary between
  ``<!-- summary:begin -->`` and ``<!-- summary:end -->``, and the results
  between ``<!-- results:begin -->`` and ``<!-- results:end -->``):
  ``ladam-bench TASK --full
  --reference torch`` (ladam_jax and the PyTorch package on the same random
  seeds, data and batches);
- ``benchmarks/ladam-bench/reference-scripts/TASK.json``:
  ``tools/rerun_reference_scripts.py`` (the reference's own scripts, torch's
  random numbers);
- ``benchmarks/ladam-bench/default/TASK.json`` (the variants table between
  ``<!-- variants:begin -->`` and ``<!-- variants:end -->``): ``ladam-bench
  TASK --optimizers ladam-floor0,lrmsprop,ladagrad,llaprop,lvradam``;
- ``benchmarks/ladam-bench/controls/TASK.json`` (the controls table between
  ``<!-- controls:begin -->`` and ``<!-- controls:end -->``): ``ladam-bench
  TASK --optimizers adam,ladam,ladam-floor0,adam-copy,adam-floor,
  ladam-shuffled,ladam-floor0-shuffled``, and
  ``benchmarks/ladam-bench/controls-full/TASK.json``: ``ladam-bench TASK
  --full --optimizers adam,ladam-floor0,ladam-floor0-shuffled,adam-copy``;
- ``benchmarks/ladam-bench/default/wavenorm-regression.json`` (the
  normalization table between ``<!-- norms:begin -->`` and
  ``<!-- norms:end -->``): ``ladam-bench wavenorm-regression``;
- ``benchmarks/ladam-bench/smoothing/TASK.json`` (the smoothing table
  between ``<!-- smoothing:begin -->`` and ``<!-- smoothing:end -->``):
  ``ladam-bench TASK --optimizers adam,ladam,ladam-floor0,lsadam,lsadam-nu``;
- ``benchmarks/ladam-bench/tune/tune-TASK.json`` and ``tune-summary.json``
  (the tuning table between ``<!-- tune:begin -->`` and
  ``<!-- tune:end -->``): ``ladam-bench tune TASK`` and ``ladam-bench
  tune-summary benchmarks/ladam-bench/tune``;
- ``benchmarks/speed/*.json`` (docs/performance.md's tables between
  ``<!-- speed:begin -->`` and ``<!-- speed:end -->``, and the README's
  line between ``<!-- speed-line:begin -->`` and ``<!-- speed-line:end -->``):
  ``python benchmarks/bench_update.py [--step] [--torch] --json FILE`` and
  ``python benchmarks/bench_step.py --json FILE`` (``SPEED_COMMANDS``).

Usage::

    python tools/results_table.py            # rewrite every generated table
    python tools/results_table.py --check    # exit 1 if any table is stale
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from ladam_jax.experiments import _report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FULL = os.path.join(ROOT, "benchmarks", "ladam-bench", "full")
DEFAULT = os.path.join(ROOT, "benchmarks", "ladam-bench", "default")
SCRIPTS = os.path.join(ROOT, "benchmarks", "ladam-bench", "reference-scripts")
CONTROLS = os.path.join(ROOT, "benchmarks", "ladam-bench", "controls")
CONTROLS_FULL = os.path.join(ROOT, "benchmarks", "ladam-bench",
                             "controls-full")
README = os.path.join(ROOT, "README.md")
RESULTS_PAGE = os.path.join(ROOT, "docs", "results.md")
PERFORMANCE_PAGE = os.path.join(ROOT, "docs", "performance.md")
RBEGIN, REND = "<!-- summary:begin -->", "<!-- summary:end -->"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
VBEGIN, VEND = "<!-- variants:begin -->", "<!-- variants:end -->"
CBEGIN, CEND = "<!-- controls:begin -->", "<!-- controls:end -->"
TBEGIN, TEND = "<!-- tune:begin -->", "<!-- tune:end -->"
NBEGIN, NEND = "<!-- norms:begin -->", "<!-- norms:end -->"
SBEGIN, SEND = "<!-- smoothing:begin -->", "<!-- smoothing:end -->"
SMOOTHING = os.path.join(ROOT, "benchmarks", "ladam-bench", "smoothing")
# (candidate, baseline): the three ways of smoothing against Adam, and the
# FAQ's claim (smoothing the variance beats smoothing the gradient).
SMOOTHING_PAIRS = (("ladam-floor0", "adam"), ("lsadam", "adam"),
                   ("lsadam-nu", "adam"), ("ladam-floor0", "lsadam"))
TUNE = os.path.join(ROOT, "benchmarks", "ladam-bench", "tune")
# The tuning table's comparisons: (candidate, baseline).
TUNE_PAIRS = (("ladam", "adam"), ("ladam-floor0", "adam"),
              ("adam-eps", "adam"), ("ladam", "adam-eps"),
              ("ladam-floor0", "adam-eps"), ("lsadam", "adam"),
              ("lsadam-nu", "adam"), ("ladam", "lsadam"))
# The controls table: (candidate, baseline, column title). Oriented as
# "what the Laplacian adds": the LAdam run against each control.
CONTROL_PAIRS = (
    ("adam-copy", "adam", "A/A: Adam (other random seeds) vs Adam"),
    ("ladam", "adam", "LAdam floor eps vs Adam"),
    ("ladam", "adam-floor", "the Laplacian adds: LAdam floor eps vs Adam "
     "with LAdam's eps floor"),
    ("ladam", "ladam-shuffled", "the layout adds: LAdam floor eps vs the "
     "same on shuffled entries"),
    ("ladam-floor0", "adam", "LAdam floor 0 vs Adam"),
    ("ladam-floor0", "ladam-floor0-shuffled", "the layout adds: LAdam floor "
     "0 vs the same on shuffled entries"))
# The variants table: (candidate, baseline) pairs, one column each.
VARIANTS = (("ladam-floor0", "adam"), ("lrmsprop", "rmsprop"),
            ("ladagrad", "adagrad"), ("llaprop", "laprop"), ("vradam", "adam"),
            ("lvradam", "vradam"))

# The reference's results table, row by row: (row, claim, ladam-bench task).
ROWS = (
    ("CNN denoising, 1-D CNN", "test MSE 0.0138 → 0.0135, −2.2 %, 80 % wins, "
     "20 random seeds", "cnn-denoise"),
    ("Wave-equation PINN, 5×128 MLP", "MSE 0.00105 → 0.000387, −63.3 %, 70 % "
     "wins, 20 random seeds", "pinn-wave"),
    ("FashionMNIST transformer", "accuracy 89.46 % → 89.66 %, +0.20 %, "
     "p = 0.0005, 5 random seeds", "image-transformer"),
    ("Noisy regression, wide MLP", "MSE 0.446 → 0.441, −1.1 %, one run",
     "noisy-regression"),
    ("CIFAR-10 ResNet + Chi-Anneal", "accuracy 67.96 % → 73.39 %, +5.43 %, "
     "3 random seeds", "resnet-chi-anneal"),
    ("FashionMNIST MLP", "accuracy 89.10 % → 89.12 %, +0.02 % (n.s.), one run",
     "image-mlp"),
    ("GPT-2 fine-tuning", "perplexity: LAdam worse than Adam, one run",
     "char-lm"),
)


def _load(folder, task):
  path = os.path.join(folder, f"{task}.json")
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _fmt(x):
  if x == 0 or 1e-2 <= abs(x) < 1e4:
    return f"{x:.4g}"
  return f"{x:.3g}"


def _floats(values):
  """JSON numbers (None for a diverged run) as a float array (NaN)."""
  return None if values is None else np.array(
      [np.nan if x is None else x for x in values], np.float64)


def _values(record, name, step=None):
  """Final metric per random seed (or the metric after ``step`` steps)."""
  if step is None:
    return _floats(record["results"].get(name))
  curve = record["curves"].get(name)
  return None if curve is None else _floats(
      [row[record["curve_steps"][name].index(step)] for row in curve])


def paired_cell(record, name, base="adam", step=None):
  """'mean, ±x.xx %, wins a/n, p = …' of ``name`` against ``base`` ('—'
  where the record lacks either).

  The statistics are ladam-bench's own (``_report.paired_finite``: over the
  random seeds where both are finite; win = better by > 0.1 %; two-sided
  Wilcoxon signed-rank).
  """
  c, b = _values(record, name, step), _values(record, base, step)
  if c is None or b is None:
    return "—"
  p, bad = _report.paired_finite(c, b, record["higher_is_better"])
  if p is None:
    return f"diverged {bad}"
  mean = c[np.isfinite(c) & np.isfinite(b)].mean()
  text = (f"{_fmt(mean)}, {100 * p.rel_change:+.2f} %, wins "
          f"{round(p.win_rate * p.n)}/{p.n}, p = {p.p_value:.2g}")
  return text + (f", diverged {bad}" if bad else "")


def _mean_std(record, name):
  v = _values(record, name)
  if v is None:
    return "—"
  v = v[np.isfinite(v)]
  return f"{_fmt(v.mean())} ± {_fmt(v.std(ddof=1) if v.size > 1 else 0.0)}"


def main_table() -> str:
  lines = [
      "| reference row (ladam 0.4.1) | its claim | the reference's script "
      "rerun (PyTorch): Adam → LAdam floor 0 | ladam_jax task, metric | "
      "Adam (ladam_jax) mean ± std | LAdam floor 0 (default; scripts) vs Adam | "
      "LAdam floor eps (package's clamp) vs Adam | n |",
      "|---|---|---|---|---|---|---|---|",
  ]
  for row, claim, task in ROWS:
    full, script = _load(FULL, task), _load(SCRIPTS, task)
    script_cell = "—"
    if script is not None:
      script_cell = (f"{_fmt(np.mean(script['results']['adam']))} → "
                     + paired_cell(script, "ladam-floor0")
                     + f" ({script['metric']}, {script['steps']} steps, "
                     f"{len(script['seeds'])} random seeds)")
    if full is None:
      lines.append(f"| {row} | {claim} | {script_cell} | `{task}`: not run "
                   "yet | — | — | — | — |")
      continue
    lines.append(
        f"| {row} | {claim} | {script_cell} | `{task}`, {full['metric']}, "
        f"{full['steps']} steps | {_mean_std(full, 'adam')} | "
        f"{paired_cell(full, 'ladam-floor0')} | {paired_cell(full, 'ladam')} "
        f"| {len(full['seeds'])} |")
  return "\n".join(lines)


MAIN_PAIRS = {("ladam", "adam"), ("ladam-floor0", "adam")}
# Comparisons the reference's table made that the bench's own baselines do
# not: task -> (candidate, baseline, note).
EXTRA_PAIRS = {"resnet-chi-anneal": (
    ("ladam-chi", "adam", " (the reference's comparison: schedule and "
     "Laplacian confounded)"),)}


def other_pairs_table() -> str:
  """Every other paired comparison in the full runs (schedules, 2 × 2 …)."""
  lines = ["| task | optimizer | vs | mean, paired change, wins, p |",
           "|---|---|---|---|"]
  for _, _, task in ROWS:
    full = _load(FULL, task)
    if full is None:
      continue
    for name, base in full["baselines"].items():
      if (base is None or name.startswith("torch-")
          or (name, base) in MAIN_PAIRS):
        continue
      lines.append(f"| `{task}` | {full['labels'][name]} | "
                   f"{full['labels'][base]} | "
                   f"{paired_cell(full, name, base)} |")
    for name, base, note in EXTRA_PAIRS.get(task, ()):
      if name in full["results"] and base in full["results"]:
        lines.append(f"| `{task}` | {full['labels'][name]}{note} | "
                     f"{full['labels'][base]} | "
                     f"{paired_cell(full, name, base)} |")
  return "\n".join(lines)


def metrics_table() -> str:
  """Mean of every metric a task records (e.g. the PINN's RMSE and MSE)."""
  names = ("adam", "ladam-floor0", "ladam")
  lines = ["| task | metric | " + " | ".join(names) + " |",
           "|---|---|" + "---|" * len(names)]
  for _, _, task in ROWS:
    full = _load(FULL, task)
    if full is None:
      continue
    for metric in full["metrics"]["adam"]:
      cells = []
      for n in names:
        v = _floats(full["metrics"].get(n, {}).get(metric))
        cells.append("—" if v is None else _fmt(np.nanmean(v)))
      lines.append(f"| `{task}` | {metric} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


# Step counts a reference script swept within one run: task -> steps.
SWEPT_STEPS = {"pinn-wave": (500, 1000)}


def steps_table() -> str:
  """The metric at each step count the script swept (same runs)."""
  lines = ["| task | steps | Adam mean | LAdam floor 0 (default; scripts) vs Adam | "
           "LAdam floor eps (package's clamp) vs Adam |", "|---|---|---|---|---|"]
  for task, steps in SWEPT_STEPS.items():
    full = _load(FULL, task)
    if full is None:
      continue
    for step in steps:
      a = _values(full, "adam", step)
      lines.append(f"| `{task}` | {step} | {_fmt(np.nanmean(a))} | "
                   f"{paired_cell(full, 'ladam-floor0', step=step)} | "
                   f"{paired_cell(full, 'ladam', step=step)} |")
  return "\n".join(lines)


def sweep_table() -> str:
  """Each committed c2-sweep: in-sample best cell and held-out estimate."""
  lines = ["| sweep | cells (c2 × steps) | in-sample best cell: change, wins, "
           "p | held out: chosen on one half of the random seeds, measured "
           "on the other | held-out estimate |", "|---|---|---|---|---|"]
  for name in sorted(os.listdir(FULL)) if os.path.isdir(FULL) else []:
    if not (name.startswith("c2-sweep-") and name.endswith(".json")):
      continue
    with open(os.path.join(FULL, name), encoding="utf-8") as f:
      record = json.load(f)
    sw = record["sweep"]
    c2s = sorted({c["c2"] for c in sw["cells"]})
    steps = sorted({c["steps"] for c in sw["cells"]})
    b = sw["in_sample_best"]
    folds = "; ".join(
        f"c2 {f['chosen']['c2']:g}, {f['chosen']['steps']} steps: "
        f"{100 * f['rel_change']:+.2f} %, wins "
        f"{round(f['win_rate'] * f['n'])}/{f['n']}" for f in sw["held_out"])
    lines.append(
        f"| `{record['base_task']}` ({record['metric']}, {len(record['seeds'])}"
        f" random seeds) | {', '.join(f'{c:g}' for c in c2s)} × "
        f"{', '.join(map(str, steps))} | c2 {b['c2']:g}, {b['steps']} steps: "
        f"{100 * b['rel_change']:+.2f} %, wins "
        f"{round(b['win_rate'] * b['n'])}/{b['n']}, p = {b['p_value']:.2g} | "
        f"{folds} | {100 * sw['held_out_rel_change']:+.2f} % |")
  return "\n".join(lines)


def parity_table() -> str:
  lines = ["| task | optimizer | ladam_jax mean | PyTorch ladam 0.4.1 mean "
           "(same data, init, batches) | mean abs. paired difference "
           "(relative) |", "|---|---|---|---|---|"]
  for _, _, task in ROWS:
    full = _load(FULL, task)
    if full is None:
      continue
    for name in full["results"]:
      if name.startswith("torch-") or f"torch-{name}" not in full["results"]:
        continue
      ours, ref = _values(full, name), _values(full, f"torch-{name}")
      ok = np.isfinite(ours) & np.isfinite(ref)
      diff = np.mean(np.abs(ours[ok] - ref[ok]) / np.abs(ref[ok]))
      lines.append(f"| `{task}` | {name} | {_fmt(ours[ok].mean())} | "
                   f"{_fmt(ref[ok].mean())} | {100 * diff:.2g} % |")
  return "\n".join(lines)


def section() -> str:
  return "\n".join([
      BEGIN,
      "<!-- generated by `python tools/results_table.py` from "
      "benchmarks/ladam-bench/{full,reference-scripts}/*.json; do not edit "
      "by hand -->",
      "",
      main_table(),
      "",
      "Every metric the tasks record (mean over random seeds):",
      "",
      metrics_table(),
      "",
      "The other comparisons in the same runs (Chi-Anneal on the learning "
      "rate or on c2, the 2 × 2 design):",
      "",
      other_pairs_table(),
      "",
      "The same runs at each step count the reference's script swept "
      "(`_true_pinn_test.py`: 500 and 1000 steps; the metric after step 500 "
      "of the 1000-step run is that of a 500-step run, the learning rate "
      "being constant):",
      "",
      steps_table(),
      "",
      "c2 sweeps as the reference's scripts ran them (`ladam-bench c2-sweep "
      "--full`, LAdam floor 0 against Adam; cells ranked by mean paired "
      "change). The in-sample best cell is what a results table that "
      "reports the best cell shows; the held-out estimate chooses the cell "
      "on half the random seeds and measures it on the other half:",
      "",
      sweep_table(),
      "",
      "PyTorch package on the same random seeds, data, initialisation and "
      "batches (`--reference torch`), final metric:",
      "",
      parity_table(),
      END,
  ])


def variants_section() -> str:
  """Every Laplacian variant against its plain optimizer (default sizes)."""
  lines = [VBEGIN, "<!-- generated by `python tools/results_table.py` from "
           "benchmarks/ladam-bench/default/*.json; do not edit by hand -->",
           "", "| task (random seeds) | " + " | ".join(
               f"{c} vs {b}" for c, b in VARIANTS) + " |",
           "|---|" + "---|" * len(VARIANTS)]
  for _, _, task in ROWS:
    record = _load(DEFAULT, task)
    if record is None:
      continue
    cells = [paired_cell(record, c, b) for c, b in VARIANTS]
    lines.append(f"| `{task}` ({len(record['seeds'])}) | "
                 + " | ".join(cells) + " |")
  lines.append(VEND)
  return "\n".join(lines)


def controls_section() -> str:
  """LAdam, the A/A run and the controls (default sizes)."""
  lines = [CBEGIN, "<!-- generated by `python tools/results_table.py` from "
           "benchmarks/ladam-bench/controls{,-full}/*.json; do not edit by "
           "hand -->",
           "", "| task, size | " + " | ".join(
               t for _, _, t in CONTROL_PAIRS) + " |",
           "|---|" + "---|" * len(CONTROL_PAIRS)]
  for folder, size in ((CONTROLS, "default"), (CONTROLS_FULL, "--full")):
    for _, _, task in ROWS:
      record = _load(folder, task)
      if record is None:
        continue
      cells = [paired_cell(record, c, b) for c, b, _ in CONTROL_PAIRS]
      lines.append(f"| `{task}` {size}, {len(record['seeds'])} random seeds "
                   "| " + " | ".join(cells) + " |")
  lines.append(CEND)
  return "\n".join(lines)


def tune_section() -> str:
  """Held-out results of every optimizer tuned with the same budget."""
  lines = [TBEGIN, "<!-- generated by `python tools/results_table.py` from "
           "benchmarks/ladam-bench/tune/*.json; do not edit by hand -->", ""]
  summary = _load(TUNE, "tune-summary")
  if summary is None:
    lines += ["(no tuning runs committed yet)", TEND]
    return "\n".join(lines)
  holm = {(r["candidate"], r["baseline"], r["task"]): r["p_holm"]
          for r in summary["comparisons"]}
  lines += ["| task (held-out random seeds, budget) | chosen lr / c2 / eps "
            "| " + " | ".join(f"{c} vs {b}" for c, b in TUNE_PAIRS) + " |",
            "|---|---|" + "---|" * len(TUNE_PAIRS)]
  for task in summary["tasks"]:
    rec = _load(TUNE, f"tune-{task}")
    opts = rec["optimizers"]
    chosen = "; ".join(
        f"{n}: " + ", ".join(f"{_fmt(v)}" for v in o["chosen"].values())
        for n, o in opts.items())
    cells = []
    comps = {(c["candidate"], c["baseline"]): c for c in rec["comparisons"]}
    for pair in TUNE_PAIRS:
      c = comps.get(pair)
      if c is None or "rel_change" not in c:
        cells.append("—")
        continue
      cells.append(f"{100 * c['rel_change']:+.2f} %, wins "
                   f"{round(c['win_rate'] * c['n'])}/{c['n']}, p = "
                   f"{c['p_value']:.2g} (Holm {holm[(*pair, task)]:.2g})")
    lines.append(f"| `{task}` ({len(rec['held_out_seeds'])}, "
                 f"{rec['budget']}) | {chosen} | " + " | ".join(cells) + " |")
  lines += ["", "Performance profile (held out; share of tasks on which the "
            "optimizer is within a factor τ of the best one's cost: the "
            "metric, or the error rate for accuracy):", "",
            "| optimizer | τ = 1 | τ = 1.01 | τ = 1.05 |", "|---|---|---|---|"]
  taus = np.asarray(summary["taus"])
  for name, row in zip(summary["optimizers"], summary["profile"]):
    lines.append(f"| {name} | " + " | ".join(
        f"{row[int(np.argmin(np.abs(taus - t)))]:.2f}" for t in (1.0, 1.01, 1.05))
                 + " |")
  lines.append(TEND)
  return "\n".join(lines)


def smoothing_section() -> str:
  """LAdam, LS-Adam and LS-Adam on v against Adam (default sizes)."""
  lines = [SBEGIN, "<!-- generated by `python tools/results_table.py` from "
           "benchmarks/ladam-bench/smoothing/*.json; do not edit by hand -->",
           "", "| task, metric (random seeds) | Adam, mean ± std | "
           + " | ".join(f"{c} vs {b}" for c, b in SMOOTHING_PAIRS) + " |",
           "|---|---|" + "---|" * len(SMOOTHING_PAIRS)]
  found = False
  for _, _, task in ROWS:
    record = _load(SMOOTHING, task)
    if record is None:
      continue
    found = True
    cells = [paired_cell(record, c, b) for c, b in SMOOTHING_PAIRS]
    lines.append(f"| `{task}`, {record['metric']} ({len(record['seeds'])}) | "
                 f"{_mean_std(record, 'adam')} | " + " | ".join(cells) + " |")
  if not found:
    lines = lines[:3] + ["(no run committed yet)"]
  lines.append(SEND)
  return "\n".join(lines)


def norms_section() -> str:
  """wavenorm-regression: each normalization against BatchNorm, per
  optimizer (benchmarks/ladam-bench/default/wavenorm-regression.json)."""
  lines = [NBEGIN, "<!-- generated by `python tools/results_table.py` from "
           "benchmarks/ladam-bench/default/wavenorm-regression.json; do not "
           "edit by hand -->", ""]
  record = _load(DEFAULT, "wavenorm-regression")
  if record is None:
    lines += ["(no run committed yet)", NEND]
    return "\n".join(lines)
  variants = list(dict.fromkeys(n.split(":")[0] for n in record["results"]))
  base = variants[0]
  lines += [f"| normalization ({len(record['seeds'])} random seeds) | "
            "test MSE with Adam, mean ± std | vs BatchNorm, Adam | "
            "vs BatchNorm, LAdam | LAdam vs Adam |", "|---|---|---|---|---|"]
  for v in variants:
    cells = [_mean_std(record, f"{v}:adam")]
    lap = ("ladam-floor0" if f"{base}:ladam-floor0" in record["results"]
           else "ladam")  # ladam_jax.ladam's default (floor 0)
    for opt in ("adam", lap):
      cells.append("—" if v == base else paired_cell(
          record, f"{v}:{opt}", f"{base}:{opt}"))
    cells.append(paired_cell(record, f"{v}:{lap}", f"{v}:adam"))
    lines.append(f"| {v} | " + " | ".join(cells) + " |")
  lines.append(NEND)
  return "\n".join(lines)


def _short(record, name, base="adam"):
  """'±x.xx %, wins a/n, p = …' (no mean: the README's compact cell)."""
  cell = paired_cell(record, name, base)
  return cell if cell == "—" or cell.startswith("diverged") else (
      cell.split(", ", 1)[1])


def _better(record, name, base="adam"):
  """'yes' / 'no' / 'worse': is ``name`` better than ``base`` at p < 0.05?"""
  c, b = _values(record, name), _values(record, base)
  if c is None or b is None:
    return None
  p, _ = _report.paired_finite(c, b, record["higher_is_better"])
  if p is None:
    return None
  gain = p.rel_change > 0 if record["higher_is_better"] else p.rel_change < 0
  if p.p_value >= 0.05:
    return "no"
  return "yes" if gain else "worse"


def readme_section() -> str:
  """The README's "does it help?" table: every row of the reference's
  results table, the reference's script rerun, and ladam_jax's full run."""
  lines = [RBEGIN, "<!-- generated by `python tools/results_table.py` from "
           "benchmarks/ladam-bench/{full,reference-scripts}/*.json; do not "
           "edit by hand -->", "",
           "| the reference's row | its claim | its script rerun (PyTorch), "
           "LAdam floor 0 vs Adam | ladam_jax task (random seeds) | "
           "`ladam_jax.ladam` (floor 0, default; the scripts' LAdam) vs "
           "Adam | `variance_floor='eps'` (the package's clamp) vs Adam | "
           "better than Adam at p < 0.05? |",
           "|---|---|---|---|---|---|---|"]
  for row, claim, task in ROWS:
    full, script = _load(FULL, task), _load(SCRIPTS, task)
    script_cell = "—" if script is None else (
        _short(script, "ladam-floor0") + f" ({len(script['seeds'])})")
    if full is None:
      lines.append(f"| {row} | {claim} | {script_cell} | `{task}`: not run "
                   "| — | — | — |")
      continue
    verdict = "; ".join(
        f"{label}: {_better(full, name)}" for label, name in
        (("ladam", "ladam-floor0"), ("floor eps", "ladam"))
        if _better(full, name) is not None)
    lines.append(
        f"| {row} | {claim} | {script_cell} | `{task}`, {full['metric']} "
        f"({len(full['seeds'])}) | {_short(full, 'ladam-floor0')} | "
        f"{_short(full, 'ladam')} | {verdict} |")
  lines.append(REND)
  return "\n".join(lines)


SPEED = os.path.join(ROOT, "benchmarks", "speed")
PBEGIN, PEND = "<!-- speed:begin -->", "<!-- speed:end -->"
LBEGIN, LEND = "<!-- speed-line:begin -->", "<!-- speed-line:end -->"
SPEED_COMMANDS = (
    "python benchmarks/bench_update.py --torch --json "
    "benchmarks/speed/update-cpu.json",
    "python benchmarks/bench_update.py --step --torch --json "
    "benchmarks/speed/step-cpu.json",
    "python benchmarks/bench_step.py --json benchmarks/speed/train-step-cpu.json")
def _tree_label(record, tree) -> str:
  """'`mlp` (16.8M parameters)': bench_update.py's tree, with its size."""
  n = next(r["params"] for r in record["rows"] if r["tree"] == tree)
  return f"`{tree}` ({n / 1e6:.3g}M parameters)"


def _speed_records():
  """Every committed speed JSON (benchmarks/speed/*.json), by file name."""
  if not os.path.isdir(SPEED):
    return {}
  out = {}
  for name in sorted(os.listdir(SPEED)):
    if name.endswith(".json"):
      with open(os.path.join(SPEED, name), encoding="utf-8") as f:
        out[name] = json.load(f)
  return out


def _speed_table(record) -> list:
  """One table per speed JSON: ratios to optax.adam (bench_update.py) or
  to Adam's training step (bench_step.py)."""
  lines = [f"`{record['command']}`: {record['backend']} "
           f"({record['device']}), jax {record['versions']['jax']}, optax "
           f"{record['versions']['optax']}.", ""]
  if record["what"] == "train-step":
    lines += ["| task | optimizer | ms per step | ratio to Adam's step |",
              "|---|---|---|---|"]
    lines += [f"| `{r['task']}` | {r['optimizer']} | "
              f"{1e3 * r['median_s']:.3g} | {r['ratio']:.3f}× |"
              for r in record["rows"]]
    return lines
  trees = list(dict.fromkeys(r["tree"] for r in record["rows"]))
  names = [n for n in dict.fromkeys(r["contender"] for r in record["rows"])
           if n != "optax.adam"]
  what = ("in-place step (update + apply_updates, donated)"
          if record["what"] == "step" else "update")
  lines += [f"| tree ({what}) | optax.adam ms | " + " | ".join(
      f"{n} / optax.adam" for n in names) + " |",
            "|---|---|" + "---|" * len(names)]
  for tree in trees:
    t = {r["contender"]: r["median_s"] for r in record["rows"]
         if r["tree"] == tree}
    base = t["optax.adam"]
    cells = [f"{t[n] / base:.2f}×" if n in t else "—" for n in names]
    lines.append(f"| {_tree_label(record, tree)} | {1e3 * base:.3g} | "
                 + " | ".join(cells) + " |")
  torch = "torch ladam.LAdamW"
  if torch in names and "ladam[flat]" in names:
    lines += ["", "ladam_jax (`ladam[flat]`, the default on one device) "
              "against the PyTorch reference on the same tree: " + "; ".join(
                  f"{_tree_label(record, tree)} {t[torch] / t['ladam[flat]']:.1f}× "
                  "faster" for tree in trees
                  for t in [{r["contender"]: r["median_s"]
                             for r in record["rows"] if r["tree"] == tree}]
                  if torch in t and "ladam[flat]" in t) + "."]
  return lines


def speed_section() -> str:
  """docs/performance.md's speed tables, from benchmarks/speed/*.json."""
  lines = [PBEGIN, "<!-- generated by `python tools/results_table.py` from "
           "benchmarks/speed/*.json; do not edit by hand -->", ""]
  records = _speed_records()
  if not records:
    lines += ["(No speed run committed: run "
              + ", ".join(f"`{c}`" for c in SPEED_COMMANDS)
              + ", then `python tools/results_table.py`.)"]
  for record in records.values():
    lines += _speed_table(record) + [""]
  if lines[-1] == "":
    lines.pop()
  lines.append(PEND)
  return "\n".join(lines)


def speed_line() -> str:
  """The README's one line on speed, from benchmarks/speed/update-*.json."""
  lines = [LBEGIN]
  record = next((r for r in _speed_records().values()
                 if r["what"] == "update"), None)
  if record is None:
    lines.append("Speed: not measured in this checkout (see the docs' "
                 "performance page).")
  else:
    ratios = []
    for tree in dict.fromkeys(r["tree"] for r in record["rows"]):
      t = {r["contender"]: r["median_s"] for r in record["rows"]
           if r["tree"] == tree}
      ours = t.get("ladam[flat]", next(
          (v for k, v in t.items() if k.startswith("ladam")), None))
      if ours is not None and "optax.adam" in t:
        ratios.append(f"{ours / t['optax.adam']:.2f}× on "
                      f"{_tree_label(record, tree)}")
    lines.append(f"**Speed:** LAdam's update costs {', '.join(ratios)}"
                 + f" against `optax.adam`'s ({record['backend']}; "
                 f"`{record['command']}`).")
  lines.append(LEND)
  return "\n".join(lines)


# Which generated tables live in which file: path -> (begin, end, maker).
TARGETS = {
    README: ((RBEGIN, REND, readme_section),
             (LBEGIN, LEND, speed_line)),
    PERFORMANCE_PAGE: ((PBEGIN, PEND, speed_section),),
    RESULTS_PAGE: ((BEGIN, END, section),
                   (VBEGIN, VEND, variants_section),
                   (CBEGIN, CEND, controls_section),
                   (TBEGIN, TEND, tune_section),
                   (SBEGIN, SEND, smoothing_section),
                   (NBEGIN, NEND, norms_section)),
}


def render(text: str, sections) -> str:
  """``text`` with every (begin, end, maker) section regenerated."""
  for begin, end, make in sections:
    i, j = text.index(begin), text.index(end) + len(end)
    text = text[:i] + make() + text[j:]
  return text


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--check", action="store_true",
                 help="exit 1 if a generated table is not up to date")
  args = p.parse_args(argv)
  stale = []
  for path, sections in TARGETS.items():
    with open(path, encoding="utf-8") as f:
      text = f.read()
    new = render(text, sections)
    if new == text:
      continue
    stale.append(os.path.relpath(path, ROOT))
    if not args.check:
      with open(path, "w", encoding="utf-8") as f:
        f.write(new)
  if args.check and stale:
    print(f"generated tables are stale in {', '.join(stale)}: run python "
          "tools/results_table.py", file=sys.stderr)
    return 1
  if not args.check:
    print("rewrote " + (", ".join(stale) if stale else "nothing (up to date)"))
  return 0


if __name__ == "__main__":
  sys.exit(main())
