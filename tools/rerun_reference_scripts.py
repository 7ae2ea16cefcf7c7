"""Reruns the reference's own experiment scripts (PyTorch) and records JSON.

The reference package's sdist (ladam 0.4.1) ships the scripts behind its
results table under ``experiment_scripts/``. Several run their whole sweep at
import time, so this tool does not import them: it parses each script and
executes only its imports, classes, functions and constant assignments, then
calls the script's own training function for every random seed, exactly as
the script's sweep does (the script's data generation, torch RNG seeding,
initialisation, batching and LAdam, which floors the smoothed variance at 0).

Run by hand, with torch installed (not needed by the test suite)::

    python tools/rerun_reference_scripts.py --tasks cnn-denoise,noisy-regression
    python tools/rerun_reference_scripts.py --tasks pinn-wave --seeds 20

Writes ``benchmarks/ladam-bench/reference-scripts/TASK.json`` in the format of
``ladam-bench``'s JSON (``results``: optimizer name → final metric per
random seed), which ``tools/results_table.py`` puts in the README and
``docs/results.md``.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SDIST = os.path.join(ROOT, "..", "shared", "reference", "ladam-0.4.1")
OUT = os.path.join(ROOT, "benchmarks", "ladam-bench", "reference-scripts")


def load_definitions(path: str) -> dict:
  """The script's imports, classes, functions and constants, not its sweep."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), filename=path)
  keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
  body = [node for node in tree.body
          if isinstance(node, keep)
          or (isinstance(node, ast.Assign)
              and isinstance(node.value, (ast.Dict, ast.Constant)))]
  namespace = {"__name__": "reference_script", "__file__": path}
  exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"),  # pylint: disable=exec-used
       namespace)
  return namespace


def _cnn(ns, seed, steps, c2):
  r = ns["run_denoising"](1e-3, c2, steps, seed, channels=32, noise=0.3)
  return {name: {"test MSE": v["test_rmse"] ** 2, "test RMSE": v["test_rmse"]}
          for name, v in r.items()}


def _pinn(ns, seed, steps, c2):
  r = ns["train_true_pinn"](1e-3, c2, steps, seed, hidden=128)
  return {name: {"grid RMSE": v, "grid MSE": v ** 2} for name, v in r.items()}


def _regression(ns, seed, steps, c2):
  r = ns["run_one"](seed, 1e-3, c2, steps, 256)
  return {name: {"MSE (noisy targets)": v} for name, v in r.items()}


# task -> (script, call, metric, c2, steps)
SCRIPTS = {
    "cnn-denoise": ("_cnn_test.py", _cnn, "test MSE", 1e-3, 300),
    "pinn-wave": ("_true_pinn_test.py", _pinn, "grid RMSE", 1e-5, 1000),
    "noisy-regression": ("_nr_c2_sweep.py", _regression,
                         "MSE (noisy targets)", 1e-5, 500),
}
NAMES = {"Adam": "adam", "LAdam": "ladam-floor0"}


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--tasks", default=",".join(SCRIPTS))
  p.add_argument("--seeds", type=int, default=20)
  p.add_argument("--steps", type=int, help="override the script's steps")
  p.add_argument("--sdist", default=DEFAULT_SDIST,
                 help="the reference's sdist folder")
  p.add_argument("--out", default=OUT)
  args = p.parse_args(argv)
  import torch  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(max(1, os.cpu_count() or 1))
  os.makedirs(args.out, exist_ok=True)
  for task in args.tasks.split(","):
    script, call, metric, c2, steps = SCRIPTS[task]
    steps = args.steps or steps
    ns = load_definitions(os.path.join(args.sdist, "experiment_scripts",
                                       script))
    t0 = time.perf_counter()
    per_seed = []
    for seed in range(args.seeds):
      per_seed.append(call(ns, seed, steps, c2))
      print(f"{task} seed {seed}: "
            + ", ".join(f"{n} {v[metric]:.5g}"
                        for n, v in per_seed[-1].items()),
            flush=True)
    metrics = {NAMES[n]: {m: [r[n][m] for r in per_seed]
                          for m in per_seed[0][n]} for n in per_seed[0]}
    record = {
        "task": task, "metric": metric, "higher_is_better": False,
        "seeds": list(range(args.seeds)), "steps": steps,
        "source": f"experiment_scripts/{script} (ladam 0.4.1 sdist), run "
                  "as its sweep runs it: torch RNG, its data, init, "
                  "batches and LAdam (floor 0)",
        "settings": {"adam": {"lr": 1e-3, "c2": 0.0},
                     "ladam-floor0": {"lr": 1e-3, "c2": c2}},
        "command": "python tools/rerun_reference_scripts.py "
                   + " ".join(argv if argv is not None else sys.argv[1:]),
        "seconds": time.perf_counter() - t0,
        "versions": {"python": platform.python_version(),
                     "torch": torch.__version__, "numpy": np.__version__},
        "results": {n: v[metric] for n, v in metrics.items()},
        "metrics": metrics,
        "baselines": {"adam": None, "ladam-floor0": "adam"},
    }
    path = os.path.join(args.out, f"{task}.json")
    with open(path, "w", encoding="utf-8") as f:
      json.dump(record, f, indent=1)
      f.write("\n")
    print(f"wrote {path} ({record['seconds']:.0f} s)")


if __name__ == "__main__":
  main()
