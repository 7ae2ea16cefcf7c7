"""Update-step speed of ladam_jax against optax.adam (and the PyTorch reference).

Ratios are measured in one process, interleaved (each round times every
contender once, in turn), and reported as the median over rounds, because the
machines this runs on are shared and noisy: absolute times mean little.

    python benchmarks/bench_update.py                 # small default (~1 min)
    python benchmarks/bench_update.py --scale 10 --rounds 30
    python benchmarks/bench_update.py --torch         # adds torch ladam.LAdamW
    python benchmarks/bench_update.py --plot out.png  # time vs parameter count
    python benchmarks/bench_update.py --bandwidth     # + a NumPy copy's GB/s
    python benchmarks/bench_update.py --step --torch  # in-place steps, like torch

Every run also times LS-Adam (``lsadam[fft]``: Laplacian smoothing of the
gradient by an FFT solve, then Adam; Osher et al.).

The XLA kernels column is the number of fusions in each compiled JAX
contender: on CPU each costs a few microseconds whatever its size, which is
what the many-small-leaves tree measures. The GB/s column counts the bytes
Adam must move per float32 parameter: 24 for the update (read g, m, v; write
u, m, v), 28 for ``--step`` (read p, g, m, v; write p, m, v);
``--bandwidth`` prints what a plain NumPy copy of 24 bytes per parameter
reaches on the host, for scale.

Trees (``--scale`` multiplies the leaf count, for GPU runs):
  mlp:   4 x (2048, 2048) kernels + biases
  cnn:   8 x (3, 3, 256, 256) Flax conv kernels + biases
  cnn2d: the same kernels reshaped to 2-D (2304, 256) (not a default tree)
  small: 300 x (64, 64) kernels + biases
"""

from __future__ import annotations

import argparse
import statistics
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

import ladam_jax
import _impl  # benchmarks/_impl.py (this script's folder is on sys.path)
import timing  # benchmarks/timing.py (this script's folder is on sys.path)


def make_tree(name: str, scale: int = 1, size_div: int = 1):
  """The benchmark trees; ``size_div`` shrinks every side (for quick runs)."""
  key = jax.random.key(0)
  def leaf(shape):
    nonlocal key
    key, sub = jax.random.split(key)
    return jax.random.normal(sub, shape, jnp.float32)
  tree = {}
  if name == "mlp":
    n, d = 4 * scale, 2048 // size_div
    for i in range(n):
      tree[f"dense_{i}"] = {"kernel": leaf((d, d)), "bias": leaf((d,))}
  elif name in ("cnn", "cnn2d"):
    n, c = 8 * scale, 256 // size_div
    for i in range(n):
      kernel = leaf((3, 3, c, c))
      if name == "cnn2d":  # same memory, 2-D: (kh * kw * in, out)
        kernel = kernel.reshape(9 * c, c)
      tree[f"conv_{i}"] = {"kernel": kernel, "bias": leaf((c,))}
  elif name == "small":
    n, d = 300 * scale, max(64 // size_div, 4)
    for i in range(n):
      tree[f"dense_{i}"] = {"kernel": leaf((d, d)), "bias": leaf((d,))}
  else:
    raise ValueError(
        f"unknown tree {name!r}: choose mlp, cnn, cnn2d, small")
  return tree


def jax_update_fn(tx, params):
  state = tx.init(params)
  grads = jax.tree.map(lambda p: p * 1e-3 + 1e-4, params)

  update = jax.jit(lambda grads, state: tx.update(grads, state, params)
                   ).lower(grads, state).compile()

  def run():
    out = update(grads, state)
    jax.block_until_ready(out)
  run()  # warm up
  run.kernels = timing.xla_kernels(update)
  return run


def jax_step_fn(tx, params):
  """The whole step in place, as PyTorch's ``step()`` does it: update +
  ``optax.apply_updates``, jitted with params and state donated."""
  grads = jax.tree.map(lambda p: p * 1e-3 + 1e-4, params)
  live = [jax.tree.map(jnp.copy, params)]  # the step donates it
  live.append(tx.init(live[0]))
  step = timing.donated_step(tx).lower(live[0], live[1], grads).compile()

  def run():
    live[0], live[1] = jax.block_until_ready(step(live[0], live[1], grads))
  run()  # warm up
  run.kernels = timing.xla_kernels(step)
  return run


def torch_update_fn(params):
  """ladam.LAdamW.step on the same tree (PyTorch layout), or None."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
    import ladam  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  tensors = []
  for leaf in jax.tree.leaves(params):
    arr = np.asarray(leaf)
    if arr.ndim > 2:  # Flax (*spatial, in, out) -> PyTorch (out, in, *spatial)
      nd = arr.ndim
      arr = np.transpose(arr, (nd - 1, nd - 2) + tuple(range(nd - 2)))
    p = torch.nn.Parameter(torch.tensor(arr))
    p.grad = torch.full_like(p, 1e-4)
    tensors.append(p)
  opt = ladam.LAdamW(tensors, lr=1e-3, c2=1e-4)
  opt.step()
  return opt.step


def numpy_copy_fn(n_params: int):
  """Copies 12 bytes per parameter into a preallocated buffer: 24 B moved."""
  src = np.ones(3 * n_params, np.float32)
  dst = np.empty_like(src)
  return lambda: np.copyto(dst, src)


def contenders(params, impls, with_torch, step=False):
  """Timed functions: optax.adam, ladam_jax per impl, torch (optional).

  By default the jitted update alone (``scale_by_adam`` vs
  ``scale_by_laplacian_adam``, fresh output buffers). With ``step``, the
  in-place optimizer step (``optax.adam`` vs ``ladam_jax.ladam``, see
  :func:`jax_step_fn`), which is what PyTorch's ``step()`` does.
  """
  if step:
    timed, adam = jax_step_fn, optax.adam(1e-3)
    make_ladam = lambda: ladam_jax.ladam(1e-3, c2=1e-4)
  else:
    timed, adam = jax_update_fn, optax.scale_by_adam()
    make_ladam = lambda: ladam_jax.scale_by_laplacian_adam(c2=1e-4)
  fns = {"optax.adam": timed(adam, params)}
  for impl in impls:  # each built with its Laplacian implementation
    with _impl.using(impl):
      fns[f"ladam[{impl}]"] = timed(make_ladam(), params)
  # LS-Adam (Osher et al.): the FFT solve of (I - sigma L) u = g, then Adam.
  smooth = ladam_jax.scale_by_laplacian_smoothing(1.0)
  fns["lsadam[fft]"] = timed(
      ladam_jax.lsadam(1e-3, sigma=1.0) if step
      else optax.chain(smooth, optax.scale_by_adam()), params)
  if with_torch:
    fn = torch_update_fn(params)
    if fn is None:
      print("torch/ladam not importable: skipping the reference",
            file=sys.stderr)
    else:
      fns["torch ladam.LAdamW"] = fn
  return fns


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--trees", default="mlp,cnn,small")
  parser.add_argument("--scale", type=int, default=1)
  parser.add_argument("--size-div", type=int, default=1,
                      help="divide every leaf side (quick smoke runs)")
  parser.add_argument("--rounds", type=int, default=15)
  parser.add_argument("--impls", type=_impl.parse_list,
                      default="flat,shift,conv",
                      help="comma-separated Laplacian implementations, each "
                      f"timed as ladam[IMPL], from: {', '.join(_impl.IMPLS)} "
                      "(default flat,shift,conv)")
  parser.add_argument("--torch", action="store_true")
  parser.add_argument("--step", action="store_true",
                      help="time the in-place step (update + apply_updates, "
                      "donated) instead of the update alone")
  parser.add_argument("--bandwidth", action="store_true",
                      help="also time a NumPy copy of each tree's bytes")
  parser.add_argument("--plot", default=None,
                      help="PNG: update time vs parameter count")
  parser.add_argument("--json", default=None,
                      help="also write the rows to this JSON file (the docs' "
                      "speed tables are generated from it)")
  args = parser.parse_args(argv)
  impls = args.impls
  what = "in-place step (donated)" if args.step else "update-step time"
  print(f"# {what}, median of {args.rounds} interleaved rounds; "
        f"backend={jax.default_backend()} devices={jax.devices()}")
  print("| tree | params | contender | median ms | ratio vs optax.adam | GB/s "
        "| XLA kernels |")
  print("|---|---|---|---|---|---|---|")
  rows = []
  for name in args.trees.split(","):
    params = make_tree(name, args.scale, args.size_div)
    n = sum(x.size for x in jax.tree.leaves(params))
    fns = contenders(params, impls, args.torch, args.step)
    if args.bandwidth:
      fns["numpy copy (24 B/param)"] = numpy_copy_fn(n)
    times = timing.time_interleaved(fns, args.rounds)
    base = statistics.median(times["optax.adam"])
    moved = 28 if args.step else 24  # bytes per parameter (float32)
    for k, ts in times.items():
      med = statistics.median(ts)
      rows.append((name, n, k, med))
      kernels = getattr(fns[k], "kernels", "")
      print(f"| {name} | {n/1e6:.2f}M | {k} | {med*1e3:.2f} | "
            f"{med/base:.2f}x | {moved * n / med / 1e9:.1f} | {kernels} |",
            flush=True)
  if args.plot:
    plot_scaling(args, impls)
  if args.json:
    write_json(args.json, "step" if args.step else "update", argv, rows)
  return rows


def write_json(path, what, argv, rows):
  """The measured rows (tree, params, contender, median seconds) and how."""
  import json  # pylint: disable=g-import-not-at-top
  import platform  # pylint: disable=g-import-not-at-top
  record = {
      "what": what,
      "command": " ".join(["python benchmarks/bench_update.py"]
                          + list(sys.argv[1:] if argv is None else argv)),
      "backend": jax.default_backend(),
      "device": str(jax.devices()[0].device_kind),
      "machine": f"{platform.machine()}, {jax.device_count()} device(s)",
      "versions": {"jax": jax.__version__, "optax": optax.__version__},
      "rows": [{"tree": t, "params": int(n), "contender": k,
                "median_s": float(m)} for t, n, k, m in rows],
  }
  with open(path, "w", encoding="utf-8") as f:
    json.dump(record, f, indent=1)
  print(f"wrote {path}")


def plot_scaling(args, impls):
  """Update time vs parameter count on the mlp tree at several sizes."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  curves = {}
  for div in (16, 8, 4, 2, 1):
    params = make_tree("mlp", 1, div)
    n = sum(x.size for x in jax.tree.leaves(params))
    fns = contenders(params, impls, args.torch, args.step)
    times = timing.time_interleaved(fns, max(5, args.rounds // 2))
    for k, ts in times.items():
      curves.setdefault(k, []).append((n, statistics.median(ts)))
  fig, ax = plt.subplots(figsize=(6, 4))
  for k, pts in curves.items():
    ax.loglog([p[0] for p in pts], [p[1] * 1e3 for p in pts], "o-", label=k)
  ax.set_xlabel("parameters (4 dense layers)")
  ax.set_ylabel("update time [ms]")
  ax.set_title(f"optimizer update, {jax.default_backend()}")
  ax.legend()
  fig.tight_layout()
  fig.savefig(args.plot, dpi=120)
  print(f"saved {args.plot}")


if __name__ == "__main__":
  main()
