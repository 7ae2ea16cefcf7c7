"""What LAdam's sharded update spends on its halo exchange, on 8 forced CPU
devices (Explicit meshes).

Times, interleaved in one run (medians, ``benchmarks/timing.py``), on the
timed tree of ``bench_sharded.py``:

- ``optax.adam``;
- ``ladam`` (c2 = 1e-4);
- ``ladam`` whose blocks read their own wrapped edges instead of the
  received halos: the same per-device arithmetic without any
  ``ppermute`` (its numbers are wrong; it only prices the collectives);
- ``ladam`` with c2 = 0 (Adam through LAdam's code);
- ``optax.adam`` followed by two ``ppermute`` of one row of one leaf (one
  each way around all the mesh's devices): what the smallest possible halo
  exchange adds to Adam's own update on these devices.

Prints each as a ratio to ``optax.adam``'s time; ``--single`` times each
kind of leaf of the tree alone (a row-split and a column-split kernel, the
conv kernel split on its output channels, a bias). ``--smoothing`` prices
the all-to-alls of Laplacian smoothing the same way: ``optax.adam``,
``lsadam`` (sigma = 1), and ``lsadam`` whose all-to-alls are local copies
of the same shapes (each device's block cut and joined as the all-to-all
would, without sending anything: wrong numbers, the same FFTs)::

    python benchmarks/bench_halo_cost.py --rounds 30
    python benchmarks/bench_halo_cost.py --rounds 30 --single
    python benchmarks/bench_halo_cost.py --rounds 30 --smoothing
    python benchmarks/bench_halo_cost.py --rounds 15 --side 4096 --layers 1
    python benchmarks/bench_halo_cost.py --rounds 30 --stencil 5point
"""

from __future__ import annotations

import os

if "--xla_force_host_platform_device_count" not in os.environ.get(
    "XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + " --xla_force_host_platform_device_count=8")

import argparse  # noqa: E402
import math  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402

import jax  # noqa: E402
import optax  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench_sharded  # noqa: E402  pylint: disable=g-import-not-at-top

import jax.numpy as jnp  # noqa: E402
import ladam_jax  # noqa: E402
from ladam_jax import _halo  # noqa: E402
from ladam_jax import _sharded_fft  # noqa: E402
from ladam_jax import _stencil  # noqa: E402

_SEND = _halo._send_all  # pylint: disable=protected-access
_LOCAL = [False]


def _send(messages):
  """The halo exchange, or (while tracing the no-exchange contender) each
  block's own wrapped edges in its place."""
  if _LOCAL[0]:
    return [(m.last, m.first) for m in messages]
  return _SEND(messages)


def without_exchange(tx):
  """``tx`` traced with :func:`_send`'s local edges."""
  def update(updates, state, params=None):
    _LOCAL[0] = True
    try:
      return tx.update(updates, state, params)
    finally:
      _LOCAL[0] = False
  return optax.GradientTransformation(tx.init, update)


class _LocalLax:
  """``jax.lax`` whose ``all_to_all`` moves nothing between devices: the
  block is cut along ``split_axis`` and the pieces joined along
  ``concat_axis``, the shapes and the local copy of the all-to-all."""

  def __getattr__(self, name):
    return getattr(jax.lax, name)

  @staticmethod
  def all_to_all(x, axis_name, split_axis, concat_axis, *, tiled=False,
                 **kwargs):
    del kwargs
    assert tiled
    n = jax.lax.axis_size(axis_name)
    return jnp.concatenate(jnp.split(x, n, axis=split_axis),
                           axis=concat_axis)


def without_all_to_alls(tx):
  """``tx`` traced with :class:`_LocalLax` in the sharded FFT's module."""
  def update(updates, state, params=None):
    _sharded_fft.lax = _LocalLax()
    try:
      return tx.update(updates, state, params)
    finally:
      _sharded_fft.lax = jax.lax
  return optax.GradientTransformation(tx.init, update)


def with_two_ppermutes(tx, mesh, specs):
  """``tx`` followed by two ``ppermute`` of one row of the tree's first
  leaf (forward and backward around the devices of ``mesh`` that split
  it: all of them, for a leaf split on every mesh axis), whose received
  rows enter that leaf's update at weight 1e-30 (so XLA keeps them);
  prices one exchange round, not LAdam."""
  key = next(iter(specs))
  spec = specs[key][1]
  named = {a for part in spec for a in _halo.mesh_axes(part)}
  axes = tuple(a for a in mesh.axis_names if a in named) or tuple(
      mesh.axis_names)
  n = math.prod(mesh.shape[a] for a in axes)
  forward = [(i, (i + 1) % n) for i in range(n)]
  backward = [(j, i) for i, j in forward]

  def exchange(u):
    got = (jax.lax.ppermute(u[-1:], axes, forward)
           + jax.lax.ppermute(u[:1], axes, backward))
    return u + 1e-30 * got

  ring = jax.shard_map(exchange, mesh=mesh, in_specs=spec, out_specs=spec)

  def update(updates, state, params=None):
    updates, state = tx.update(updates, state, params)
    return {**updates, key: ring(updates[key])}, state
  return optax.GradientTransformation(tx.init, update)


def run(name, mesh, specs, rounds, smoothing=False, stencil="9point"):
  """Times the contenders on one tree and prints their ratios to Adam's."""
  if smoothing:
    op = "all-to-all"
    txs = {"optax.adam": optax.adam(1e-3),
           "lsadam": ladam_jax.lsadam(1e-3, sigma=1.0),
           "lsadam, local all-to-alls": without_all_to_alls(
               ladam_jax.lsadam(1e-3, sigma=1.0))}
  else:
    op = "collective-permute"
    ladam = lambda: ladam_jax.ladam(1e-3, c2=1e-4, stencil=stencil)
    txs = {"optax.adam": optax.adam(1e-3),
           "ladam": ladam(),
           "ladam, no exchange": without_exchange(ladam()),
           "ladam c2=0": ladam_jax.ladam(1e-3, c2=0.0),
           "optax.adam + 2 ppermutes": with_two_ppermutes(
               optax.adam(1e-3), mesh, specs)}
  with jax.set_mesh(mesh):
    times, ops = bench_sharded.timed(txs, mesh, specs, rounds)
  what = "lsadam" if smoothing else stencil
  print(f"{name}, {what} ({jax.__version__}, {rounds} rounds):")
  for k, t in times.items():
    print(f"  {k}: {t / times['optax.adam']:.2f}x adam "
          f"({t * 1e3:.1f} ms, {ops[k][op]} {op}s)")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=30)
  parser.add_argument("--side", type=int, default=1024)
  parser.add_argument("--layers", type=int, default=2)
  parser.add_argument("--meshes", default="x8-explicit,data2xmodel4-explicit")
  parser.add_argument("--single", action="store_true",
                      help="time each kind of leaf (rows0, cols0, bias0, "
                      "conv) alone")
  parser.add_argument("--smoothing", action="store_true",
                      help="price Laplacian smoothing's all-to-alls "
                      "instead of LAdam's halos")
  parser.add_argument("--stencil", default="9point",
                      choices=_stencil.STENCILS,
                      help="LAdam's stencil (the 5-point one reads no "
                      "corners: what the corners cost per device)")
  args = parser.parse_args(argv)
  _halo._send_all = _send  # pylint: disable=protected-access
  for name in args.meshes.split(","):
    mesh = bench_sharded.make_mesh(name)
    tree = bench_sharded.tree_specs(args.side, args.layers,
                                    len(mesh.axis_names) == 2)
    if not args.single:
      run(name, mesh, tree, args.rounds, args.smoothing, args.stencil)
      continue
    for key in ("rows0", "cols0", "bias0", "conv"):
      run(f"{name}, {key} alone", mesh, {key: tree[key]}, args.rounds,
          stencil=args.stencil)


if __name__ == "__main__":
  main()
