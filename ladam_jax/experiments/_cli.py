"""ladam-bench: the reference's experiments (ladam 0.4.1), Adam vs LAdam.

Commands:
    ladam-bench TASK [options]        run one task (see --list), e.g.
                                      ladam-bench cnn-denoise (~1 min on 2
                                      CPU cores)
    ladam-bench c2-sweep [options]    c2 (x steps) sweep over a task
    ladam-bench tune TASK [options]   equal-budget tuning of every optimizer
    ladam-bench tune-summary DIR      across the tasks tuned into DIR
    ladam-bench report DIR            redraw DIR's reports (md, png) from
                                      their JSON, without training
    ladam-bench --list                every task, one line each
Each command takes --help.

Examples:
    ladam-bench cnn-denoise --full --reference torch
    ladam-bench pinn-wave --seeds 20 --steps 1000
    ladam-bench c2-sweep --sweep-task pinn-wave --sweep-steps 500,1000
    ladam-bench noisy-regression --optimizers ladam,lrmsprop,ladagrad
    ladam-bench cnn-denoise --optimizers ladam,adam-copy,adam-floor
    ladam-bench tune cnn-denoise --budget 8
    ladam-bench tune-summary bench-results

Optimizers are compared paired over random seeds (the same data,
initialisation and batches). The optimizer ladam is labelled
"floor eps, package": LAdam as the reference's package ships it, the
smoothed variance floored at eps (ladam_jax.ladam(...,
variance_floor='eps')). ladam-floor0 is labelled "floor 0, scripts":
LAdam as the reference's documented maths and experiment scripts have it
(floored at 0; ladam_jax.ladam's default); the scripts produced the
reference's results table. The
controls: adam-copy is Adam on other random seeds against Adam (an A/A
run: it shows what "no difference" looks like); adam-floor (Adam with
LAdam's eps floor, no Laplacian) and ladam-shuffled (LAdam coupling
randomly permuted entries) are compared with LAdam: what the Laplacian,
and its spatial layout, add. Every run writes DIR/TASK.md
(also printed; it opens with a verdict: significant means p < 0.05 on the
paired Wilcoxon signed-rank test), DIR/TASK.json (every number of the
report) and DIR/TASK.png.

Needs the [bench] extra (pip install "ladam-jax[bench]") to run a task.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import math
import os
import sys
import time
from typing import Optional, Sequence

import jax

from ladam_jax.experiments import _diagnose
from ladam_jax.experiments import _optimizers
from ladam_jax.experiments import _report
from ladam_jax.experiments import _sweep
from ladam_jax.experiments import _task
from ladam_jax.experiments import _tasks
from ladam_jax.experiments import _train
from ladam_jax.experiments import _tune

# What running a task imports beyond the library (the [bench] extra):
# module → the pip package that brings it. matplotlib and tqdm (also in the
# extra) are optional: without them a run draws no plot, no progress bar.
BENCH_MODULES = {"flax": "flax", "scipy": "scipy", "sklearn": "scikit-learn",
                 "mnist1d": "mnist1d"}
BENCH_EXTRA = 'pip install "ladam-jax[bench]"'

SWEEP = "c2-sweep"
SWEEP_GRID = (1e-5, 1e-4, 1e-3, 1e-2)
# The floor-0 variant isolates c2: at c2 -> 0 it is Adam, while the package's
# eps floor alone already changes Adam (see the README).
SWEEP_OPTIMIZERS = "ladam-floor0"
DEFAULT_OUT = "bench-results"


def missing_bench_modules() -> list[str]:
  """The pip packages of the [bench] extra that cannot be imported."""
  import importlib  # pylint: disable=import-outside-toplevel
  missing = []
  for module, package in BENCH_MODULES.items():
    try:
      importlib.import_module(module)
    except ImportError:
      missing.append(package)
  return missing


def _need_bench() -> Optional[int]:
  """None if the [bench] extra is installed; else prints one line naming
  it (on stderr) and returns the exit status 2."""
  missing = missing_bench_modules()
  if not missing:
    return None
  print(f"ladam-bench needs the [bench] extra (missing: "
        f"{', '.join(missing)}): {BENCH_EXTRA}", file=sys.stderr)
  return 2


def _checked(text: str, parse, valid, unparsable: str, invalid: str):
  """``parse(text)`` if it parses and the value is ``valid``; otherwise an
  ``argparse`` error with the message ``unparsable`` or ``invalid``."""
  try:
    value = parse(text)
  except ValueError:
    raise argparse.ArgumentTypeError(unparsable) from None
  if not valid(value):
    raise argparse.ArgumentTypeError(invalid)
  return value


def _floats(text: str) -> list[float]:
  return _checked(
      text, lambda t: [float(s) for s in t.split(",") if s.strip()],
      lambda values: bool(values) and all(math.isfinite(v) and v >= 0
                                    for v in values),
      f"--c2 takes numbers separated by commas, got {text!r}",
      f"--c2 takes finite numbers >= 0 separated by commas, got {text!r}")


def _positive(text: str) -> int:
  return _checked(text, int, lambda value: value >= 1,
                  f"expected an integer >= 1, got {text!r}",
                  f"expected an integer >= 1, got {text}")


def _positive_list(text: str) -> list[int]:
  return sorted({_positive(s) for s in text.split(",") if s.strip()})


def _learning_rate(text: str) -> float:
  return _checked(text, float,
                  lambda value: math.isfinite(value) and value > 0,
                  f"--lr takes a number, got {text!r}",
                  f"--lr must be a finite number > 0, got {text}")


def _task_defaults() -> str:
  lines = ["task defaults (default size / --full):"]
  for t in _tasks.TASKS.values():
    lines.append(
        f"  {t.name:<19} lr {t.learning_rate:g}, c2 {t.c2:g}; "
        f"{t.default.seeds} random seeds x {t.default.steps} steps / "
        f"{t.full.seeds} x {t.full.steps}"
        + (f"; optimizers {','.join(t.optimizers)}" if t.optimizers else ""))
  lines.append(f"  {SWEEP:<19} the --sweep-task's sizes; c2 grid "
               f"{','.join(f'{c:g}' for c in SWEEP_GRID)}; optimizer "
               f"{SWEEP_OPTIMIZERS}")
  return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog="ladam-bench", description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog=_task_defaults())
  p.add_argument("task", nargs="?", choices=list(_tasks.TASKS) + [SWEEP],
                 metavar="TASK",
                 help="the task to run: " + ", ".join(list(_tasks.TASKS)
                                                       + [SWEEP])
                 + f" (see --list); or one of the commands {TUNE}, "
                 f"{TUNE_SUMMARY}, {REPORT} (see above)")
  p.add_argument("--list", action="store_true",
                 help="print every task with a one-line description and exit")
  p.add_argument("--seeds", type=_positive,
                 help="number of random seeds (default: the task's, below)")
  p.add_argument("--base-seed", type=int, default=0,
                 help="the random seeds are BASE, BASE+1, ... (default 0, as "
                 "the reference's scripts: range(20))")
  p.add_argument("--steps", type=_positive,
                 help="training steps per random seed (default: the task's)")
  p.add_argument("--eval-every", type=_positive,
                 help="steps between evaluations (default: the task's)")
  p.add_argument("--c2", type=_floats,
                 help="c2 of the Laplacian optimizers (default: the task's; "
                 "for c2-sweep a comma-separated grid, default "
                 f"{','.join(f'{c:g}' for c in SWEEP_GRID)})")
  p.add_argument("--lr", type=_learning_rate,
                 help="learning rate of every optimizer (default: the task's)")
  p.add_argument("--optimizers",
                 help="comma-separated, from: " + ", ".join(
                     _optimizers.OPTIMIZERS) + "; each one's baseline is "
                 f"added (default {','.join(_optimizers.DEFAULT_OPTIMIZERS)} "
                 "or the task's own, below; for c2-sweep "
                 f"{SWEEP_OPTIMIZERS})")
  p.add_argument("--variants",
                 help="for tasks with model variants (wavenorm-regression: "
                 "batchnorm, wavenorm, wavenorm-damped, layernorm, chinorm, "
                 "none): the comma-separated ones to run, the first the "
                 "baseline of the others (default: the task's)")
  p.add_argument("--sweep-task", default="cnn-denoise",
                 choices=list(_tasks.TASKS),
                 help="the task c2-sweep runs (default cnn-denoise)")
  p.add_argument("--sweep-steps", type=_positive_list,
                 help="c2-sweep: also compare at these step counts, e.g. "
                 "500,1000 (default: the last step only)")
  p.add_argument("--init", choices=_task.INITS, default="torch",
                 help="initialisation: PyTorch's defaults, as the reference's "
                 "scripts (default), or Flax's")
  size = p.add_mutually_exclusive_group()
  size.add_argument("--full", action="store_true",
                    help="the reference's sizes (random seeds and steps of "
                    "its scripts)")
  size.add_argument("--tiny", action="store_true",
                    help="a seconds-long smoke run (tests)")
  p.add_argument("--reference", choices=["torch"],
                 help="also run the PyTorch package ladam 0.4.1 on the same "
                 "random seeds, data and batches (needs torch and ladam)")
  p.add_argument("--seed-batching", choices=list(_train.SEED_BATCHING),
                 help="vmap over random seeds or loop over them (default: "
                 "the faster on CPU for the task)")
  p.add_argument("--out", default=DEFAULT_OUT,
                 help=f"output directory (default ./{DEFAULT_OUT})")
  p.add_argument("--diagnostics", action="store_true",
                 help="log ladam_jax.smoothing_stats of every LAdam run over "
                 "training into the JSON, and draw the step ratio LAdam / "
                 "Adam of one conv and one dense kernel (TASK-step-ratio.png"
                 ", .npz)")
  p.add_argument("--no-plot", action="store_true", help="write no PNG")
  p.add_argument("--quiet", action="store_true", help="no progress bar")
  return p


def _size(task: _tasks.Task, args) -> _tasks.Size:
  size = task.full if args.full else task.tiny if args.tiny else task.default
  changes = {}
  if args.seeds:
    changes["seeds"] = args.seeds
  if args.steps:
    changes["steps"] = args.steps
  if args.eval_every:
    changes["eval_every"] = args.eval_every
  size = dataclasses.replace(size, **changes)
  size = dataclasses.replace(size, options=dict(size.options, init=args.init))
  if size.eval_every > size.steps:
    size = dataclasses.replace(size, eval_every=size.steps)
  return size


@dataclasses.dataclass(frozen=True)
class Run:
  """One optimizer run: its name, baseline, label, factory, lr and c2."""
  name: str
  baseline: Optional[str]
  label: str
  make: object
  lr: float
  c2: float
  seed_offset: int = 0
  diagnostics: object = None
  # Size options of this run (a model variant: {'variant': name}).
  options: tuple = ()

  @classmethod
  def of(cls, opt: _optimizers.BenchOptimizer, lr: float, c2: float) -> Run:
    """The run of the bench optimizer ``opt`` at ``lr`` and ``c2``."""
    return cls(opt.name, opt.baseline, opt.label, opt.make, lr, c2,
               opt.seed_offset, opt.diagnostics)


def _run_size(size, run: Run):
  return (dataclasses.replace(size, options=dict(size.options, **dict(
      run.options))) if run.options else size)


def _variant_runs(runs: list[Run], variants) -> list[Run]:
  """Every optimizer run once per model variant: named 'VARIANT:OPTIMIZER',
  paired with the first variant under the same optimizer, and (first
  variant only) with the optimizer's baseline."""
  base = variants[0]
  out = []
  for variant in variants:
    for r in runs:
      baseline = (f"{base}:{r.name}" if variant != base else
                  f"{base}:{r.baseline}" if r.baseline else None)
      out.append(dataclasses.replace(
          r, name=f"{variant}:{r.name}", baseline=baseline,
          label=f"{variant}, {r.label}", options=(("variant", variant),)))
  return out


def _sweep_runs(names: list[str], lr: float, grid) -> list[Run]:
  """c2-sweep's runs: a baseline once (at c2 0), every other optimizer once
  per c2 of ``grid`` (named by :func:`_sweep.cell_name`)."""
  runs = []
  for name in names:
    opt = _optimizers.OPTIMIZERS[name]
    if opt.baseline is None:
      runs.append(Run(name, None, opt.label, opt.make, lr, 0.0))
      continue
    for c2 in grid:
      runs.append(Run(_sweep.cell_name(name, c2), opt.baseline,
                      f"{opt.label} c2={c2:g}", opt.make, lr, c2))
  return runs


def _optimizer_names(task, args, parser) -> list[str]:
  """--optimizers (or the default of the task or of c2-sweep), checked,
  with the baselines added."""
  spec = args.optimizers or (
      SWEEP_OPTIMIZERS if args.task == SWEEP
      else ",".join(task.optimizers or _optimizers.DEFAULT_OPTIMIZERS))
  try:
    return _optimizers.parse_optimizers(spec)
  except ValueError as e:
    parser.error(str(e))


def _variants(task, args, parser) -> tuple:
  """The model variants to run: --variants, checked, or the task's own."""
  if args.variants and not task.variants:
    parser.error(f"--variants: {task.name} has no model variants")
  if not args.variants:
    return task.variants
  variants = tuple(dict.fromkeys(
      v.strip() for v in args.variants.split(",") if v.strip()))
  bad = [v for v in variants if v not in _task.NORMS]
  if bad or not variants:
    parser.error(f"--variants: unknown {bad or variants!r}; choose from "
                 f"{_task.NORMS}")
  return variants


def _runs(task, args, parser) -> list[Run]:
  """Every run of the command line, in order, baselines first."""
  names = _optimizer_names(task, args, parser)
  lr = task.learning_rate if args.lr is None else args.lr
  if args.task == SWEEP:
    return _sweep_runs(names, lr, args.c2 or list(SWEEP_GRID))
  if args.c2 is not None and len(args.c2) != 1:
    parser.error("--c2 takes one value for this task (a grid only for "
                 "c2-sweep)")
  c2 = task.c2 if args.c2 is None else args.c2[0]
  runs = [Run.of(_optimizers.OPTIMIZERS[n], lr, c2) for n in names]
  variants = _variants(task, args, parser)
  return _variant_runs(runs, variants) if variants else runs


def _check_out(out: str, parser) -> None:
  """Fails now, not after training, if ``out`` cannot take the results."""
  if os.path.exists(out) and not os.path.isdir(out):
    parser.error(f"--out {out!r} exists and is not a directory")
  try:
    os.makedirs(out, exist_ok=True)
    probe = os.path.join(out, ".ladam-bench-write-test")
    with open(probe, "w", encoding="utf-8"):
      pass
    os.remove(probe)
  except OSError as e:
    parser.error(f"--out {out!r} is not a writable directory: {e}")


def _progress_bar(total: int, quiet: bool):
  if quiet:
    return None
  try:
    from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  return tqdm(total=total, unit="step", dynamic_ncols=True, file=sys.stderr)


def list_tasks() -> str:
  lines = [f"{t.name:<19} {t.summary}" for t in _tasks.TASKS.values()]
  lines.append(f"{SWEEP:<19} c2 (x steps) sweep over any task; held-out "
               "estimate of the best cell")
  lines.append(f"{TUNE + ' TASK':<19} equal-budget tuning of lr (and c2, "
               "eps) per optimizer, then held out")
  lines.append(f"{TUNE_SUMMARY + ' DIR':<19} across tuned tasks: performance "
               "profile, Holm-corrected p-values")
  lines.append(f"{REPORT + ' DIR':<19} redraw DIR's reports (md, png) from "
               "their JSON, no training")
  return "\n".join(lines)


TUNE, TUNE_SUMMARY, REPORT = "tune", "tune-summary", "report"
TUNE_HELP = f"""ladam-bench tune: every optimizer tuned with the same budget.

Each optimizer gets --budget trials over its own hyperparameters, drawn
from a scrambled Halton sequence over log-uniform ranges: lr from a tenth to
ten times the task's (the same lr points for every optimizer), c2 from 1e-6
to 0.1 for LAdam, eps from 1e-10 to 1e-2 for adam-eps (Adam whose eps gets
the budget LAdam's c2 gets: its control), sigma from 0.01 to 100 for lsadam
(Adam on gradients smoothed by (I - sigma L)^-1, Osher et al.: smoothing the
gradient instead of the variance) and lsadam-nu (Adam's variance smoothed
by that solve). Every trial trains on
--tune-seeds random seeds (BASE+{_tune.TUNE_SEED_OFFSET}, ...); the trial
with the best mean final metric (a trial that diverged on any is worst) is
re-run on the held-out random seeds (BASE, ..., those of the other tables)
and compared, paired, with tuned Adam and tuned adam-eps. All the trials of
one optimizer run as one compiled program (optax.inject_hyperparams).

Writes DIR/tune-TASK.md (also printed), .json and .png (lr sensitivity: the
tuning score against lr, one curve per optimizer; the score against c2 or
eps; the held-out paired changes). "ladam-bench tune-summary DIR" then
combines the tasks tuned into DIR: a performance profile and p-values
Holm-corrected over the tasks.
"""


def build_tune_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog=f"ladam-bench {TUNE}", description=TUNE_HELP,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("task", choices=list(_tasks.TASKS))
  p.add_argument("--budget", type=_positive, default=8,
                 help="trials per optimizer, the same for each (default 8)")
  p.add_argument("--tune-seeds", type=_positive,
                 help="random seeds each trial trains on (default: half the "
                 "task's random seeds, at least 2)")
  p.add_argument("--seeds", type=_positive,
                 help="held-out random seeds (default: the task's)")
  p.add_argument("--base-seed", type=int, default=0,
                 help="held-out random seeds BASE, BASE+1, ...; tuning ones "
                 f"BASE+{_tune.TUNE_SEED_OFFSET}, ... (default 0)")
  p.add_argument("--steps", type=_positive,
                 help="training steps (default: the task's)")
  p.add_argument("--eval-every", type=_positive,
                 help="steps between evaluations (default: the task's)")
  p.add_argument("--optimizers", default=",".join(
      _tune.DEFAULT_TUNE_OPTIMIZERS),
                 help="comma-separated, from: " + ", ".join(_tune.TUNABLE)
                 + f" (default {','.join(_tune.DEFAULT_TUNE_OPTIMIZERS)})")
  p.add_argument("--search-seed", type=int, default=0,
                 help="seed of the Halton sequence's scrambling (default 0)")
  p.add_argument("--init", choices=_task.INITS, default="torch",
                 help="initialisation (default torch)")
  size = p.add_mutually_exclusive_group()
  size.add_argument("--full", action="store_true",
                    help="the reference's sizes")
  size.add_argument("--tiny", action="store_true",
                    help="a seconds-long smoke run (tests)")
  p.add_argument("--out", default=DEFAULT_OUT,
                 help=f"output directory (default ./{DEFAULT_OUT})")
  p.add_argument("--no-plot", action="store_true", help="write no PNG")
  p.add_argument("--quiet", action="store_true", help="no progress bar")
  return p


def tune_main(argv: Sequence[str]) -> int:
  """``ladam-bench tune TASK ...``."""
  parser = build_tune_parser()
  args = parser.parse_args(argv)
  status = _need_bench()
  if status is not None:
    return status
  names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
  bad = [n for n in names if n not in _tune.TUNABLE]
  if bad or not names:
    parser.error(f"--optimizers: unknown {bad or names!r}; choose from "
                 f"{tuple(_tune.TUNABLE)}")
  names = list(dict.fromkeys(names))
  task = _tasks.get_task(args.task)
  size = _size(task, args)
  tune_seeds = args.tune_seeds or max(2, size.seeds // 2)
  _check_out(args.out, parser)
  bar = _progress_bar(
      len(names) * size.steps * (tune_seeds * args.budget + size.seeds),
      args.quiet)
  t0 = time.perf_counter()
  record = _tune.tune(task, size, names, budget=args.budget,
                      tune_seeds=tune_seeds, base_seed=args.base_seed,
                      search_seed=args.search_seed,
                      progress=bar.update if bar is not None else None)
  if bar is not None:
    bar.close()
  import platform  # pylint: disable=import-outside-toplevel
  record = {"task": task.name, "metric": task.metric,
            "higher_is_better": task.higher_is_better,
            "description": task.description, "steps": size.steps,
            "init": args.init,
            "command": "ladam-bench " + " ".join([TUNE, *argv]),
            "seconds": time.perf_counter() - t0,
            "versions": _report.versions(), "backend": jax.default_backend(),
            "platform": platform.machine(), **record}
  report = _tune.TuneReport(record)
  md, js = report.write(args.out)
  print(f"\n{report.markdown()}\nwrote {md}\nwrote {js}")
  if not args.no_plot:
    png = os.path.join(args.out, f"{report.stem}.png")
    if report.plot(png):
      print(f"wrote {png}")
  return 0


def _read_json(path: str):
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _tune_records(directory: str) -> list[dict]:
  """Every ``tune-TASK.json`` of ``directory`` (not tune-summary.json),
  in the order of their paths."""
  paths = sorted(glob.glob(os.path.join(directory, "tune-*.json")))
  return [_read_json(p) for p in paths if not p.endswith("tune-summary.json")]


def tune_summary_main(argv: Sequence[str]) -> int:
  """``ladam-bench tune-summary DIR``: every DIR/tune-TASK.json together."""
  p = argparse.ArgumentParser(
      prog=f"ladam-bench {TUNE_SUMMARY}",
      description="Across the tasks tuned into DIR: Holm-corrected p-values "
      "of each comparison and a performance profile (DIR/tune-summary.md, "
      ".json, .png).")
  p.add_argument("dir", help="the --out directory of the tune runs")
  p.add_argument("--no-plot", action="store_true", help="write no PNG")
  p.add_argument("--quiet", action="store_true",
                 help="no progress bar (tune-summary trains nothing, so it "
                 "never shows one; accepted as by every command)")
  args = p.parse_args(argv)
  records = _tune_records(args.dir)
  if not records:
    p.error(f"no tune-TASK.json in {args.dir!r}: run `ladam-bench tune TASK "
            f"--out {args.dir}` first")
  md, js, png = _tune.summarize(records, args.dir, plot=not args.no_plot)
  with open(md, encoding="utf-8") as f:
    print(f.read())
  print("\n".join(f"wrote {x}" for x in (md, js, png) if x))
  return 0


def _backend_of(md_path: str) -> Optional[str]:
  """The backend named in an existing report's 'Run:' line, if any."""
  import re  # pylint: disable=import-outside-toplevel
  try:
    with open(md_path, encoding="utf-8") as f:
      match = re.search(r"^Run: .* — JAX \S+ on (\w+) \(", f.read(), re.M)
  except OSError:
    return None
  return match.group(1) if match else None


def _redrawn(record: dict, stem: str, plot: bool):
  """(markdown, PNG path or None) of a task or tune record, the PNG drawn
  at ``stem.png`` when ``plot``; None for any other JSON."""
  if _report.is_task_record(record):
    if not record.get("backend"):
      record = dict(record, backend=_backend_of(stem + ".md"))
    md = _report.render_markdown(record)
    draw = lambda png: _report.plot_record(png, record)  # noqa: E731
  elif _tune.is_tune_record(record):
    report = _tune.TuneReport(record)
    md, draw = report.markdown(), report.plot
  else:
    return None
  png = stem + ".png" if plot else None
  return md, (png if png is not None and draw(png) else None)


def report_main(argv: Sequence[str]) -> int:
  """``ladam-bench report DIR``: every report in DIR redrawn from its JSON."""
  p = argparse.ArgumentParser(
      prog=f"ladam-bench {REPORT}",
      description="Redraws the reports in DIR from their JSON records, "
      "without training: DIR/TASK.md and DIR/TASK.png from DIR/TASK.json, "
      "DIR/tune-TASK.md and .png from DIR/tune-TASK.json, and the "
      "tune-summary from the tune records. The records are only read; "
      "tune-summary.json is recomputed from the tune records.")
  p.add_argument("dir", help="a directory of ladam-bench results")
  p.add_argument("--no-plot", action="store_true", help="write no PNG")
  p.add_argument("--quiet", action="store_true",
                 help="print only the paths written")
  args = p.parse_args(argv)
  paths = sorted(glob.glob(os.path.join(args.dir, "*.json")))
  if not paths:
    p.error(f"no .json record in {args.dir!r}")
  written, tuned = [], False
  for path in paths:
    stem = os.path.splitext(path)[0]
    if os.path.basename(path) == "tune-summary.json":
      continue
    record = _read_json(path)
    redrawn = _redrawn(record, stem, plot=not args.no_plot)
    if redrawn is None:
      if not args.quiet:
        print(f"skipped {path}: not a ladam-bench task or tune record")
      continue
    tuned = tuned or _tune.is_tune_record(record)
    md, png = redrawn
    with open(stem + ".md", "w", encoding="utf-8") as f:
      f.write(md)
    written += [stem + ".md"] + ([png] if png else [])
  if tuned and os.path.exists(os.path.join(args.dir, "tune-summary.json")):
    written += [x for x in _tune.summarize(_tune_records(args.dir), args.dir,
                                           plot=not args.no_plot) if x]
  print("\n".join(f"wrote {x}" for x in written))
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if argv and argv[0] == TUNE:
    return tune_main(argv[1:])
  if argv and argv[0] == TUNE_SUMMARY:
    return tune_summary_main(argv[1:])
  if argv and argv[0] == REPORT:
    return report_main(argv[1:])
  parser = build_parser()
  args = parser.parse_args(argv)
  if args.list:
    print(list_tasks())
    return 0
  if args.task is None:
    parser.error("a task is required (see --list)")
  status = _need_bench()
  if status is not None:
    return status
  if args.sweep_steps and args.task != SWEEP:
    parser.error("--sweep-steps is for c2-sweep only")
  if args.diagnostics and args.task == SWEEP:
    parser.error("--diagnostics is for a task, not c2-sweep")
  task = _tasks.get_task(args.sweep_task if args.task == SWEEP else args.task)
  size = _size(task, args)
  if args.sweep_steps and max(args.sweep_steps) > size.steps:
    parser.error(f"--sweep-steps {max(args.sweep_steps)} is beyond --steps "
                 f"{size.steps}")
  runs = _runs(task, args, parser)
  txs = {}
  for run in runs:  # invalid hyperparameters fail here, before any training
    try:
      txs[run.name] = run.make(run.lr, run.c2, total_steps=size.steps)
    except ValueError as e:
      parser.error(f"{run.name}: {e}")
  reference = []
  if args.reference == "torch":
    from ladam_jax.experiments import _torch_reference  # pylint: disable=import-outside-toplevel
    reference = _torch_reference.reference_runs(task, runs, parser)
  _check_out(args.out, parser)
  sweep_steps = args.sweep_steps or [size.steps]

  total = size.seeds * size.steps * (len(runs) + len(reference))
  bar = _progress_bar(total, args.quiet)
  results, baselines, labels, settings = [], {}, {}, {}
  t0 = time.perf_counter()
  prepared_by = {}

  def prepare(run):
    """The set-up of ``run``'s random seeds and size options (cached)."""
    key = (run.seed_offset, run.options)
    if key not in prepared_by:
      prepared_by[key] = _train.prepare(
          task, _run_size(size, run), args.base_seed + run.seed_offset)
    return prepared_by[key]

  prepared = prepare(runs[0])
  diagnostics, fields = {}, {}
  for run in runs:
    if bar is not None:
      bar.set_description(run.name)
    diagnose = leaves = None
    if args.diagnostics and run.diagnostics is not None:
      one = jax.tree.map(lambda x: x[0], prepare(run).params)
      leaves = _diagnose.pick_leaves(one["params"] if task.stateful else one,
                                     run.c2)
      diagnose = _diagnose.make_diagnose(run.diagnostics(run.c2), leaves)
    results.append(_train.train_seeds(
        task, _run_size(size, run), txs[run.name], name=run.name,
        seed_batching=args.seed_batching, prepared=prepare(run),
        progress=bar.update if bar is not None else None,
        eval_steps=sweep_steps, diagnose=diagnose))
    if diagnose is not None:
      r = results[-1]
      later = [int(x) for x in r.steps if x > 0]
      diagnostics[run.name] = dict(
          _diagnose.summarize_run(later, r.diagnostics), kernels=leaves)
      for s in _diagnose.steps_to_draw(later):
        for kind, path in leaves.items():
          fields[run.name, kind, path, s] = r.diagnostics[
              later.index(s)]["ratio"][kind][0]
      r.diagnostics = None  # the fields are kept above, the stats in JSON
    baselines[run.name], labels[run.name] = run.baseline, run.label
    settings[run.name] = {"lr": run.lr, "c2": run.c2}
  for name, base, label, fn, lr, c2 in reference:
    if bar is not None:
      bar.set_description(name)
    results.append(fn(size, prepared, bar.update if bar is not None else None,
                      sweep_steps))
    baselines[name], labels[name] = base, label
    settings[name] = {"lr": lr, "c2": c2}
  if bar is not None:
    bar.close()

  command = "ladam-bench " + " ".join(argv)
  report = _report.Report(
      task=task, title=f"ladam-bench {args.task}" + (
          f" ({task.name})" if args.task == SWEEP else ""),
      stem=(f"{SWEEP}-{task.name}" if args.task == SWEEP else args.task),
      size=size, seeds=prepared.seeds.tolist(),
      results=results, baselines=baselines, labels=labels, settings=settings,
      command=command, seconds=time.perf_counter() - t0, init=args.init,
      sweep=(_sweep.analyze(
          task, [r for r in results if not r.name.startswith("torch-")],
          baselines, settings, sweep_steps) if args.task == SWEEP else None),
      diagnostics=diagnostics or None)
  md_path, json_path = report.write(args.out)
  print(f"\n{report.markdown()}")
  print(f"wrote {md_path}\nwrote {json_path}")
  if fields:
    npz = os.path.join(args.out, f"{report.stem}-step-ratio.npz")
    _diagnose.save_fields(npz, fields)
    print(f"wrote {npz}")
    if not args.no_plot:
      png = os.path.join(args.out, f"{report.stem}-step-ratio.png")
      if _diagnose.plot_fields(png, fields, (
          f"{task.name}: step ratio LAdam / Adam, random seed "
          f"{prepared.seeds[0]} (red: LAdam steps further; the field the "
          "Laplacian smooths)")):
        print(f"wrote {png}")
  elif args.diagnostics:
    print("--diagnostics: no LAdam run (ladam, ladam-floor0, ladam-chi, "
          "ladam-floor0-chi) in --optimizers, nothing to diagnose")
  if not args.no_plot:
    png = os.path.join(args.out, f"{report.stem}.png")
    if _report.plot(png, report):
      print(f"wrote {png}")
    else:
      print("matplotlib is not installed: no plot (pip install "
            "'ladam-jax[bench]')")
  return 0
