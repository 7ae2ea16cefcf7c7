"""``ladam-bench``: the seed's experiments, Adam vs LAdam, with paired statistics.

Usage::

    ladam-bench cnn-denoise                     # ~1-2 min on 2 CPU cores
    ladam-bench pinn-wave --seeds 20 --steps 5000
    ladam-bench transformer-digits --full
    ladam-bench c2-sweep --sweep-task cnn-denoise --c2 0,1e-5,1e-4,1e-3,1e-2
    ladam-bench noisy-regression --optimizers ladam,lrmsprop,ladagrad
    ladam-bench cnn-denoise --reference torch   # also the PyTorch package

Writes ``DIR/TASK.md`` (also printed) and ``DIR/TASK.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from typing import Optional, Sequence

import jax

from ladam_jax import _laplacian
from ladam_jax.bench import _optimizers
from ladam_jax.bench import _report
from ladam_jax.bench import _tasks
from ladam_jax.bench import _train

SWEEP = "c2-sweep"
SWEEP_GRID = (1e-5, 1e-4, 1e-3, 1e-2)
# The floor-0 variant isolates c2: at c2 -> 0 it is Adam, while the package's
# eps floor alone already changes Adam (see the README).
SWEEP_OPTIMIZERS = "ladam-floor0"


def _floats(text: str) -> list[float]:
  try:
    values = [float(s) for s in text.split(",") if s.strip()]
  except ValueError:
    raise argparse.ArgumentTypeError(
        f"--c2 takes numbers separated by commas, got {text!r}") from None
  if not values or any(v < 0 for v in values):
    raise argparse.ArgumentTypeError(
        f"--c2 takes numbers >= 0 separated by commas, got {text!r}")
  return values


def _positive(text: str) -> int:
  value = int(text)
  if value < 1:
    raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
  return value


def add_impl_argument(parser: argparse.ArgumentParser) -> None:
  """``--impl``: the Laplacian implementation of ladam_jax's optimizers."""
  parser.add_argument(
      "--impl", choices=_laplacian.IMPLS, default=None,
      help="Laplacian implementation of the ladam_jax optimizers (default: "
      "ladam_jax.default_laplacian_impl() for the platform in use)")


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog="ladam-bench", description=__doc__.splitlines()[0],
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog="tasks: " + ", ".join(list(_tasks.TASKS) + [SWEEP]))
  p.add_argument("task", choices=list(_tasks.TASKS) + [SWEEP])
  p.add_argument("--seeds", type=_positive, help="number of seeds")
  p.add_argument("--steps", type=_positive, help="training steps per seed")
  p.add_argument("--eval-every", type=_positive,
                 help="steps between test evaluations")
  p.add_argument("--c2", type=_floats,
                 help="c2 (for c2-sweep: a comma-separated grid)")
  p.add_argument("--lr", type=float, help="learning rate (task default)")
  p.add_argument("--optimizers",
                 help="comma-separated, from: " + ", ".join(
                     _optimizers.OPTIMIZERS) + " (baselines are added; "
                 f"default {','.join(_optimizers.DEFAULT_OPTIMIZERS)}, for "
                 f"c2-sweep {SWEEP_OPTIMIZERS})")
  p.add_argument("--sweep-task", default="cnn-denoise",
                 choices=list(_tasks.TASKS), help="the task c2-sweep runs")
  size = p.add_mutually_exclusive_group()
  size.add_argument("--full", action="store_true",
                    help="the seed's sizes: 20 seeds, full step counts")
  size.add_argument("--tiny", action="store_true",
                    help="a seconds-long smoke run (tests)")
  p.add_argument("--reference", choices=["torch"],
                 help="also run the PyTorch package ladam (needs torch, ladam)")
  p.add_argument("--seed-batching", choices=list(_train.SEED_BATCHING),
                 help="vmap over seeds or loop over them (task default: the "
                 "faster on CPU)")
  add_impl_argument(p)
  p.add_argument("--base-seed", type=int, default=0)
  p.add_argument("--out", default="bench-results", help="output directory")
  p.add_argument("--no-plot", action="store_true")
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
  if size.eval_every > size.steps:
    size = dataclasses.replace(size, eval_every=size.steps)
  return size


def _runs(task, args, parser):
  """(run name, baseline, label, optimizer factory, c2) for every run."""
  spec = args.optimizers or (
      SWEEP_OPTIMIZERS if args.task == SWEEP
      else ",".join(_optimizers.DEFAULT_OPTIMIZERS))
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
        runs.append((name, None, opt.label, opt.make, lr, 0.0))
        continue
      for c2 in grid:
        runs.append((f"{name} c2={c2:g}", opt.baseline, f"{opt.label} c2={c2:g}",
                     opt.make, lr, c2))
    return runs
  if args.c2 is not None and len(args.c2) != 1:
    parser.error("--c2 takes one value for this task (a grid only for "
                 "c2-sweep)")
  c2 = task.c2 if args.c2 is None else args.c2[0]
  return [(n, _optimizers.OPTIMIZERS[n].baseline, _optimizers.OPTIMIZERS[n].label,
           _optimizers.OPTIMIZERS[n].make, lr, c2) for n in names]


def _progress_bar(total: int, quiet: bool):
  if quiet:
    return None
  try:
    from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  return tqdm(total=total, unit="step", dynamic_ncols=True, file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  task = _tasks.get_task(args.sweep_task if args.task == SWEEP else args.task)
  size = _size(task, args)
  runs = _runs(task, args, parser)
  reference = []
  if args.reference == "torch":
    from ladam_jax.bench import _torch_reference  # pylint: disable=import-outside-toplevel
    reference = _torch_reference.reference_runs(task, runs, parser)

  total = size.seeds * size.steps * (len(runs) + len(reference))
  bar = _progress_bar(total, args.quiet)
  results, baselines, labels = [], {}, {}
  t0 = time.perf_counter()
  prepared = _train.prepare(task, size, args.base_seed)
  for name, base, label, make, lr, c2 in runs:
    if bar is not None:
      bar.set_description(name)
    results.append(_train.train_seeds(
        task, size, make(lr, c2, impl=args.impl), name=name, base_seed=args.base_seed,
        seed_batching=args.seed_batching, prepared=prepared,
        progress=bar.update if bar is not None else None))
    baselines[name], labels[name] = base, label
  for name, base, label, fn in reference:
    if bar is not None:
      bar.set_description(name)
    results.append(fn(size, prepared,
                      bar.update if bar is not None else None))
    baselines[name], labels[name] = base, label
  if bar is not None:
    bar.close()

  title = f"ladam-bench {args.task}" + (
      f" ({task.name})" if args.task == SWEEP else "")
  c2_text = ("c2 grid " + ", ".join(f"{r[5]:g}" for r in runs if r[1])
             if args.task == SWEEP else f"c2 = {runs[-1][5]:g}")
  header = "\n".join([
      f"{task.description}.",
      "",
      f"{size.seeds} seeds × {size.steps} steps, {c2_text}; final "
      f"{task.metric}. Paired: the same initialisation and batches per seed; "
      "win = better than the baseline by > 0.1 %; Wilcoxon signed-rank, "
      "two-sided.",
      f"Seed page claim: {task.seed_claim or '—'}.",
      f"Run: `ladam-bench {' '.join(argv if argv is not None else sys.argv[1:])}`"
      f" — JAX {jax.__version__} on {jax.default_backend()} "
      f"({platform.machine()}), {time.perf_counter() - t0:.0f} s.",
  ])
  table = _report.markdown_table(task, results, baselines, labels)
  stem = args.task
  md_path = f"{args.out}/{stem}.md"
  _report.write_markdown(md_path, title, header, table)
  print(f"\n## {title}\n\n{header}\n\n{table}\n")
  print(f"wrote {md_path}")
  if not args.no_plot:
    png = f"{args.out}/{stem}.png"
    if _report.plot(png, task, results, baselines, labels):
      print(f"wrote {png}")
    else:
      print("matplotlib is not installed: no plot (pip install "
            "'ladam-jax[examples]')")
  return 0
