"""Full training-step time on the bench's tasks: LAdam vs optax.adam.

One jitted step (loss, gradients, optimizer update, ``apply_updates``, params
and state donated) of one random seed of ``ladam-bench``'s tasks at the
reference's sizes: the wave-equation PINN (tanh MLP 2 -> 128 x 4 -> 1, PDE + BC +
IC collocation batch) and the 1-D CNN denoiser. Both optimizers run the same
task, data and batch keys; ratios are medians over interleaved rounds, each
round timing ``--steps`` consecutive steps per optimizer::

    python benchmarks/bench_step.py                    # ~1 min
    python benchmarks/bench_step.py --tasks pinn-wave --rounds 41
    python benchmarks/bench_step.py --tiny --rounds 2 --steps 1   # smoke
    python benchmarks/bench_step.py --impl pallas      # on a GPU
"""

from __future__ import annotations

import argparse
import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax

from ladam_jax.experiments import _optimizers
from ladam_jax.experiments import _tasks
from ladam_jax.experiments import _train
import _impl  # benchmarks/_impl.py (this script's folder is on sys.path)
import timing  # benchmarks/timing.py (this script's folder is on sys.path)


def step_runner(task, size, tx, prepared):
  """A function running ``n`` jitted training steps of seed 0 with ``tx``."""
  params, data, keys = jax.tree.map(lambda x: x[0], (
      prepared.params, prepared.data, prepared.batch_keys))
  loss_and_grad = jax.value_and_grad(task.loss)
  def step(p, s, i):
    idx = _tasks.batch_indices(task, size, keys, i)
    loss, grads = loss_and_grad(p, data, idx, size)
    updates, s = tx.update(grads, s, p)
    return optax.apply_updates(p, updates), s, loss

  step = jax.jit(step, donate_argnums=(0, 1))
  state = {"p": jax.tree.map(jnp.copy, params)}  # the step donates it
  state["s"] = jax.jit(tx.init)(state["p"])
  counter = [0]

  def run(n):
    p, s = state["p"], state["s"]
    for _ in range(n):
      p, s, loss = step(p, s, counter[0])
      counter[0] += 1
    jax.block_until_ready(loss)
    state["p"], state["s"] = p, s

  run(2)  # compile
  return run


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tasks", default="pinn-wave,cnn-denoise")
  parser.add_argument("--rounds", type=int, default=21)
  parser.add_argument("--steps", type=int, default=10,
                      help="steps per timed block")
  parser.add_argument("--optimizers", default="adam,ladam,ladam-floor0")
  _impl.add_argument(parser)
  parser.add_argument("--tiny", action="store_true",
                      help="the tasks' tiny sizes (smoke test)")
  parser.add_argument("--json", default=None,
                      help="also write the rows to this JSON file (the docs' "
                      "speed tables are generated from it)")
  args = parser.parse_args(argv)
  names = [n for n in args.optimizers.split(",") if n]
  print(f"# full training step, median of {args.rounds} interleaved rounds of "
        f"{args.steps} steps; backend={jax.default_backend()}")
  print("| task | optimizer | ms / step | ratio vs adam |")
  print("|---|---|---|---|")
  rows = []
  for name in args.tasks.split(","):
    task = _tasks.get_task(name)
    size = dataclasses.replace(task.tiny if args.tiny else task.full, seeds=1)
    prepared = _train.prepare(task, size)
    with _impl.using(args.impl):
      runners = {n: step_runner(task, size, _optimizers.OPTIMIZERS[n].make(
          task.learning_rate, task.c2, total_steps=size.steps), prepared)
                 for n in names}
    # One sample = one block of --steps consecutive steps, per step.
    meds = timing.medians(timing.time_interleaved(
        {n: functools.partial(run, args.steps) for n, run in runners.items()},
        args.rounds))
    base = meds[names[0]] / args.steps
    for n in names:
      med = meds[n] / args.steps
      rows.append((name, n, med, med / base))
      print(f"| {name} | {n} | {med * 1e3:.3f} | {med / base:.3f}x |",
            flush=True)
  if args.json:
    import json  # pylint: disable=g-import-not-at-top
    import sys  # pylint: disable=g-import-not-at-top
    record = {
        "what": "train-step",
        "command": " ".join(["python benchmarks/bench_step.py"] + list(
            sys.argv[1:] if argv is None else argv)),
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0].device_kind),
        "versions": {"jax": jax.__version__, "optax": optax.__version__},
        "rows": [{"task": t, "optimizer": n, "median_s": float(m),
                  "ratio": float(r)} for t, n, m, r in rows],
    }
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump(record, f, indent=1)
    print(f"wrote {args.json}")
  return rows


if __name__ == "__main__":
  main()
