"""Update time of this checkout against another git revision, in one process.

A change that touches the update's maths (say, the overflow rules) must not
slow it down; absolute times on shared machines move by tens of percent
between runs, so both versions are timed in the same process, interleaved
with ``optax.scale_by_adam``, on the same trees (those of
``bench_update.py``), and compared by the ratio of their medians. The other
revision's package is exported with ``git archive`` and imported under
another name.

    python benchmarks/bench_versions.py --before HEAD~1
    python benchmarks/bench_versions.py --before 5887f24 --dtype bfloat16 \\
        --rounds 60 --trees cnn,mlp
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import io
import pathlib
import statistics
import subprocess
import sys
import tarfile
import tempfile

import jax
import optax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _impl  # pylint: disable=g-import-not-at-top,wrong-import-position
import bench_update  # pylint: disable=g-import-not-at-top,wrong-import-position
import ladam_jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import timing  # benchmarks/timing.py (this script's folder is on sys.path)

_ROOT = pathlib.Path(__file__).resolve().parent.parent
_OLD_NAME = "ladam_jax_before"


def import_revision(rev: str, where: pathlib.Path):
  """``ladam_jax`` as of ``rev``, imported as ``ladam_jax_before``."""
  archive = subprocess.run(
      ["git", "-C", str(_ROOT), "archive", rev, "ladam_jax"],
      check=True, capture_output=True).stdout
  with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
    tar.extractall(where, filter="data")
  package = where / _OLD_NAME
  (where / "ladam_jax").rename(package)
  for path in package.rglob("*.py"):
    text = path.read_text()
    text = text.replace("from ladam_jax", f"from {_OLD_NAME}").replace(
        "import ladam_jax", f"import {_OLD_NAME}")
    path.write_text(text)
  sys.path.insert(0, str(where))
  return importlib.import_module(_OLD_NAME)


def old_scale_by_laplacian_adam(old, impl, **kwargs):
  """``old.scale_by_laplacian_adam(**kwargs)`` with the Laplacian ``impl``:
  passed as ``impl=`` where that version takes it, else built inside its
  own ``_laplacian.using_impl``."""
  factory = old.scale_by_laplacian_adam
  if "impl" in inspect.signature(factory).parameters:
    return factory(impl=impl, **kwargs)
  old_laplacian = importlib.import_module(f"{old.__name__}._laplacian")
  if hasattr(old_laplacian, "using_impl"):
    with old_laplacian.using_impl(impl):
      return factory(**kwargs)
  if impl is not None:
    raise SystemExit(f"--impl: {old.__name__} chooses its Laplacian "
                     "implementation itself")
  return factory(**kwargs)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--before", required=True, help="git revision")
  parser.add_argument("--trees", default="mlp,cnn,small")
  parser.add_argument("--scale", type=int, default=1,
                      help="multiply the leaf count (GPU runs)")
  parser.add_argument("--dtype", default="float32")
  parser.add_argument("--rounds", type=int, default=40)
  _impl.add_argument(parser)
  parser.add_argument("--c2", type=float, default=1e-4)
  args = parser.parse_args(argv)
  with tempfile.TemporaryDirectory() as tmp:
    old = import_revision(args.before, pathlib.Path(tmp))
    print(f"# update time, {args.dtype}, median of {args.rounds} interleaved "
          f"rounds; this checkout vs {args.before}; "
          f"backend={jax.default_backend()}")
    print("| tree | params | before / adam | after / adam | after / before "
          "| kernels before, after |")
    print("|---|---|---|---|---|---|")
    for name in args.trees.split(","):
      params = jax.tree.map(lambda p: p.astype(args.dtype),
                            bench_update.make_tree(name, args.scale))
      n = sum(x.size for x in jax.tree.leaves(params))
      fns = {
          "adam": bench_update.jax_update_fn(optax.scale_by_adam(), params),
          "before": bench_update.jax_update_fn(
              old_scale_by_laplacian_adam(old, args.impl, c2=args.c2),
              params),
      }
      with _impl.using(args.impl):
        fns["after"] = bench_update.jax_update_fn(
            ladam_jax.scale_by_laplacian_adam(c2=args.c2), params)
      med = {k: statistics.median(v) for k, v in
             timing.time_interleaved(fns, args.rounds).items()}
      print(f"| {name} | {n / 1e6:.2f}M | {med['before'] / med['adam']:.2f}x "
            f"| {med['after'] / med['adam']:.2f}x | "
            f"{med['after'] / med['before']:.3f} | "
            f"{fns['before'].kernels}, {fns['after'].kernels} |", flush=True)


if __name__ == "__main__":
  main()
