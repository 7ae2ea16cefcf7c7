"""ladam-bench: the reference's experiments (ladam 0.4.1), Adam vs LAdam.

Usage:
    ladam-bench --list                          # every task, one line each
    ladam-bench cnn-denoise                     # ~1 min on 2 CPU cores
    ladam-bench cnn-denoise --full --reference torch
    ladam-bench pinn-wave --seeds 20 --steps 1000
    ladam-bench c2-sweep --sweep-task pinn-wave --sweep-steps 500,1000
    ladam-bench noisy-regression --optimizers ladam,lrmsprop,ladagrad
    ladam-bench cnn-denoise --optimizers adam,ladam,adam-copy,adam-floor,ladam-shuffled

Optimizers are compared paired over random seeds (the same data,
initialisation and batches). The controls: adam-copy is Adam on other
random seeds against Adam (an A/A run: it shows what "no difference" looks
like); adam-floor (Adam with LAdam's eps floor, no Laplacian) and
ladam-shuffled (LAdam coupling randomly permuted entries) are compared
with LAdam: what the Laplacian, and its spatial layout, add. Every run writes DIR/TASK.md (also printed),
DIR/TASK.json (the final metric of every optimizer and random seed) and
DIR/TASK.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from typing import Optional, Sequence

from ladam_jax import _laplacian
from ladam_jax.experiments import _optimizers
from ladam_jax.experiments import _report
from ladam_jax.experiments import _sweep
from ladam_jax.experiments import _tasks
from ladam_jax.experiments import _torch_init
from ladam_jax.experiments import _train

SWEEP = "c2-sweep"
SWEEP_GRID = (1e-5, 1e-4, 1e-3, 1e-2)
# The floor-0 variant isolates c2: at c2 -> 0 it is Adam, while the package's
# eps floor alone already changes Adam (see the README).
SWEEP_OPTIMIZERS = "ladam-floor0"
DEFAULT_OUT = "bench-results"


def _floats(text: str) -> list[float]:
  try:
    values = [float(s) for s in text.split(",") if s.strip()]
  except ValueError:
    raise argparse.ArgumentTypeError(
        f"--c2 takes numbers separated by commas, got {text!r}") from None
  if not values or any(not math.isfinite(v) or v < 0 for v in values):
    raise argparse.ArgumentTypeError(
        f"--c2 takes finite numbers >= 0 separated by commas, got {text!r}")
  return values


def _positive(text: str) -> int:
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(
        f"expected an integer >= 1, got {text!r}") from None
  if value < 1:
    raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
  return value


def _positive_list(text: str) -> list[int]:
  return sorted({_positive(s) for s in text.split(",") if s.strip()})


def _learning_rate(text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(
        f"--lr takes a number, got {text!r}") from None
  if not math.isfinite(value) or value <= 0:
    raise argparse.ArgumentTypeError(
        f"--lr must be a finite number > 0, got {text}")
  return value


def add_impl_argument(parser: argparse.ArgumentParser) -> None:
  """``--impl``: the Laplacian implementation of ladam_jax's optimizers."""
  parser.add_argument(
      "--impl", choices=_laplacian.IMPLS, default=None,
      help="Laplacian implementation of the ladam_jax optimizers (default: "
      "ladam_jax.default_laplacian_impl() for the platform in use)")


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
                 help="the task to run (see --list)")
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
  p.add_argument("--sweep-task", default="cnn-denoise",
                 choices=list(_tasks.TASKS),
                 help="the task c2-sweep runs (default cnn-denoise)")
  p.add_argument("--sweep-steps", type=_positive_list,
                 help="c2-sweep: also compare at these step counts, e.g. "
                 "500,1000 (default: the last step only)")
  p.add_argument("--init", choices=_torch_init.INITS, default="torch",
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
  add_impl_argument(p)
  p.add_argument("--out", default=DEFAULT_OUT,
                 help=f"output directory (default ./{DEFAULT_OUT})")
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


def _runs(task, args, parser) -> list[Run]:
  spec = args.optimizers or (
      SWEEP_OPTIMIZERS if args.task == SWEEP
      else ",".join(task.optimizers or _optimizers.DEFAULT_OPTIMIZERS))
  try:
    names = _optimizers.parse_optimizers(spec)
  except ValueError as e:
    parser.error(str(e))
  lr = task.learning_rate if args.lr is None else args.lr
  if args.task == SWEEP:
    grid = args.c2 or list(SWEEP_GRID)
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
  if args.c2 is not None and len(args.c2) != 1:
    parser.error("--c2 takes one value for this task (a grid only for "
                 "c2-sweep)")
  c2 = task.c2 if args.c2 is None else args.c2[0]
  return [Run(n, _optimizers.OPTIMIZERS[n].baseline,
              _optimizers.OPTIMIZERS[n].label, _optimizers.OPTIMIZERS[n].make,
              lr, c2, _optimizers.OPTIMIZERS[n].seed_offset) for n in names]


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
  return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  if args.list:
    print(list_tasks())
    return 0
  if args.task is None:
    parser.error("a task is required (see --list)")
  if args.sweep_steps and args.task != SWEEP:
    parser.error("--sweep-steps is for c2-sweep only")
  task = _tasks.get_task(args.sweep_task if args.task == SWEEP else args.task)
  size = _size(task, args)
  if args.sweep_steps and max(args.sweep_steps) > size.steps:
    parser.error(f"--sweep-steps {max(args.sweep_steps)} is beyond --steps "
                 f"{size.steps}")
  runs = _runs(task, args, parser)
  txs = {}
  for run in runs:  # invalid hyperparameters fail here, before any training
    try:
      txs[run.name] = run.make(run.lr, run.c2, impl=args.impl,
                               total_steps=size.steps)
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
  prepared = _train.prepare(task, size, args.base_seed)
  for run in runs:
    if bar is not None:
      bar.set_description(run.name)
    results.append(_train.train_seeds(
        task, size, txs[run.name], name=run.name,
        seed_batching=args.seed_batching,
        prepared=(prepared if run.seed_offset == 0 else _train.prepare(
            task, size, args.base_seed + run.seed_offset)),
        progress=bar.update if bar is not None else None,
        eval_steps=sweep_steps))
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

  command = "ladam-bench " + " ".join(
      argv if argv is not None else sys.argv[1:])
  report = _report.Report(
      task=task, title=f"ladam-bench {args.task}" + (
          f" ({task.name})" if args.task == SWEEP else ""),
      stem=(f"{SWEEP}-{task.name}" if args.task == SWEEP else args.task),
      size=size, seeds=prepared.seeds.tolist(),
      results=results, baselines=baselines, labels=labels, settings=settings,
      command=command, seconds=time.perf_counter() - t0, init=args.init,
      sweep=(_sweep.analyze(
          task, [r for r in results if not r.name.startswith("torch-")],
          baselines, settings, sweep_steps) if args.task == SWEEP else None))
  md_path, json_path = report.write(args.out)
  print(f"\n{report.markdown()}")
  print(f"wrote {md_path}\nwrote {json_path}")
  if not args.no_plot:
    png = os.path.join(args.out, f"{report.stem}.png")
    if _report.plot(png, report):
      print(f"wrote {png}")
    else:
      print("matplotlib is not installed: no plot (pip install "
            "'ladam-jax[examples]')")
  return 0
