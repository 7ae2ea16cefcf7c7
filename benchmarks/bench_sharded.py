"""The sharded optimizer update on 8 forced CPU devices, against optax.adam.

For each mesh (``('x',)`` = 8 with Explicit axes, the same with Auto axes,
``('data', 'model')`` = (2, 4) with Explicit axes: FSDP on one axis, tensor
parallel on the other) and each optimizer (``optax.adam``, ``ladam``,
``lsadam``: Laplacian smoothing of the gradient, then Adam):

- the time of one donated, jitted update + ``optax.apply_updates`` on a
  sharded tree (medians over interleaved rounds, ``benchmarks/timing.py``),
  as a ratio to ``optax.adam``'s;
- the collectives in the compiled update (all-gather, all-reduce,
  all-to-all, collective-permute, reduce-scatter);
- the per-device memory of the compiled update on a tree of about 100M
  float32 parameters (``compiled.memory_analysis()``, compiled from
  ``jax.ShapeDtypeStruct``s with shardings: nothing is allocated).

Writes ``benchmarks/sharded.json`` and, with ``--results``, replaces its
section of ``benchmarks/RESULTS.md``::

    python benchmarks/bench_sharded.py --rounds 20 --results
    python benchmarks/bench_sharded.py --render --results  # from the JSON
    python benchmarks/bench_sharded.py --tiny   # a smoke run, writes nothing
"""

from __future__ import annotations

import os

if "--xla_force_host_platform_device_count" not in os.environ.get(
    "XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + " --xla_force_host_platform_device_count=8")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from jax.sharding import AxisType  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from timing import medians, time_interleaved  # noqa: E402  pylint: disable=g-import-not-at-top

import ladam_jax  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
COLLECTIVES = ("all-gather", "all-reduce", "all-to-all", "collective-permute",
               "reduce-scatter")
MESHES = {
    "x8-explicit": ((8,), ("x",), AxisType.Explicit),
    "x8-auto": ((8,), ("x",), AxisType.Auto),
    "data2xmodel4-explicit": ((2, 4), ("data", "model"), AxisType.Explicit),
}
BEGIN, END = "<!-- bench_sharded:begin -->", "<!-- bench_sharded:end -->"


def optimizers():
  return {"optax.adam": optax.adam(1e-3),
          "ladam": ladam_jax.ladam(1e-3, c2=1e-4),
          "lsadam": ladam_jax.lsadam(1e-3, sigma=1.0)}


def tree_specs(side: int, layers: int, two_d: bool):
  """Shapes and specs: ``layers`` row-sharded and ``layers`` column-sharded
  (side, side) kernels, a conv kernel (3, 3, side/8, side/8) sharded on its
  output channels, and a (side,) bias per kernel."""
  rows, cols = (P("data", "model"), P("model", "data")) if two_d else (
      P("x", None), P(None, "x"))
  out = P(None, None, "data", "model") if two_d else P(None, None, None, "x")
  bias = P("model") if two_d else P("x")
  tree = {}
  for i in range(layers):
    tree[f"rows{i}"] = ((side, side), rows)
    tree[f"cols{i}"] = ((side, side), cols)
    tree[f"bias{i}"] = ((side,), bias)
  c = max(side // 8, 8)
  tree["conv"] = ((3, 3, c, c), out)
  return tree


def collectives(hlo_text: str) -> dict[str, int]:
  return {op: len(re.findall(rf"\b{op}(?:-start)?\(", hlo_text))
          for op in COLLECTIVES}


def make_mesh(name):
  shape, names, kind = MESHES[name]
  return jax.make_mesh(shape, names, axis_types=(kind,) * len(names))


def update_step(tx):
  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state
  return step


def compile_from_shapes(tx, mesh, specs):
  """The donated update compiled from ShapeDtypeStructs (no allocation)."""
  params = {k: jax.ShapeDtypeStruct(shape, jnp.float32,
                                    sharding=NamedSharding(mesh, spec))
            for k, (shape, spec) in specs.items()}
  # The state as tx.init(params) makes it on sharded params: every leaf of
  # a param's shape under that param's key (the moments) sharded as the
  # param, the rest (step counts) replicated.
  def state_leaf(path, x):
    key = getattr(path[-1], "key", None) if path else None
    sharding = (params[key].sharding
                if key in params and x.shape == params[key].shape
                else NamedSharding(mesh, P()))
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)

  state = jax.tree_util.tree_map_with_path(
      state_leaf, jax.eval_shape(tx.init, params))
  return jax.jit(update_step(tx), donate_argnums=(0, 1)).lower(
      params, state, params).compile()


def memory(compiled) -> dict[str, int]:
  """Per-device bytes of a compiled program."""
  m = compiled.memory_analysis()
  args, out = m.argument_size_in_bytes, m.output_size_in_bytes
  temp, alias = m.temp_size_in_bytes, m.alias_size_in_bytes
  return {"arguments": args, "outputs": out, "temporaries": temp,
          "aliased": alias, "peak_estimate": args + out + temp - alias}


def timed(txs, mesh, specs, rounds):
  """Medians (s) of the donated update on real sharded arrays, and the
  collectives of each compiled update."""
  key = jax.random.key(0)
  fns, ops = {}, {}
  for name, tx in txs.items():
    params = {}
    for i, (k, (shape, spec)) in enumerate(specs.items()):
      params[k] = jax.device_put(
          jax.random.normal(jax.random.fold_in(key, i), shape),
          NamedSharding(mesh, spec))
    grads = jax.tree.map(lambda x: 1e-2 * x + 1e-3, params)
    state = tx.init(params)
    compiled = jax.jit(update_step(tx), donate_argnums=(0, 1)).lower(
        params, state, grads).compile()
    ops[name] = collectives(compiled.as_text())
    box = [params, state]

    def run(compiled=compiled, box=box, grads=grads):
      box[0], box[1] = compiled(box[0], box[1], grads)
      jax.block_until_ready(box)

    run()  # warm-up
    fns[name] = run
  return medians(time_interleaved(fns, rounds)), ops


def run(args) -> dict:
  txs = optimizers()
  out = {"command": "python benchmarks/bench_sharded.py " + " ".join(
      args.argv), "date": datetime.date.today().isoformat(),
         "jax": jax.__version__, "optax": optax.__version__,
         "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, "
                    f"{jax.device_count()} forced CPU devices",
         "rounds": args.rounds, "meshes": {}}
  for mesh_name in args.meshes.split(","):
    mesh = make_mesh(mesh_name)
    two_d = len(mesh.axis_names) == 2
    with jax.set_mesh(mesh):
      speed_specs = tree_specs(args.side, args.layers, two_d)
      times, ops = timed(txs, mesh, speed_specs, args.rounds)
      mem_specs = tree_specs(args.mem_side, args.mem_layers, two_d)
      mem = {name: memory(compile_from_shapes(tx, mesh, mem_specs))
             for name, tx in txs.items()}
    n_speed = sum(_size(s) for s, _ in speed_specs.values())
    n_mem = sum(_size(s) for s, _ in mem_specs.values())
    out["meshes"][mesh_name] = {
        "speed_tree_params": n_speed, "memory_tree_params": n_mem,
        "median_s": times,
        "ratio_to_adam": {k: v / times["optax.adam"] for k, v in times.items()},
        "collectives": ops, "memory_bytes_per_device": mem}
  return out


def _size(shape):
  n = 1
  for d in shape:
    n *= d
  return n


def markdown(res: dict) -> str:
  lines = [
      f"### {res['date']}: the sharded update, 8 forced CPU devices",
      "",
      f"<!-- generated by `{res['command']}` from benchmarks/sharded.json; "
      "do not edit by hand -->",
      "",
      f"JAX {res['jax']}, Optax {res['optax']}, {res['machine']}; median of "
      f"{res['rounds']} interleaved rounds of one donated jitted update + "
      "`apply_updates`. Memory: per device, from `compiled.memory_analysis()`"
      " of the same update compiled from `ShapeDtypeStruct`s (nothing "
      "allocated); peak estimate = arguments + outputs + temporaries − "
      "aliased (donated) buffers.",
      "",
      "| mesh | optimizer | time / adam | collectives in the update | "
      "MiB per device (peak est.) | temporaries MiB |",
      "|---|---|---|---|---|---|",
  ]
  for mesh_name, m in res["meshes"].items():
    for name in m["median_s"]:
      ops = ", ".join(f"{k} {v}" for k, v in m["collectives"][name].items()
                      if v) or "none"
      mem = m["memory_bytes_per_device"][name]
      lines.append(
          f"| {mesh_name} | {name} | {m['ratio_to_adam'][name]:.2f}x "
          f"({m['median_s'][name] * 1e3:.1f} ms) | {ops} | "
          f"{mem['peak_estimate'] / 2**20:.1f} | "
          f"{mem['temporaries'] / 2**20:.1f} |")
  first = next(iter(res["meshes"].values()))
  shard_mib = first["memory_tree_params"] * 4 / 8 / 2**20
  lines += ["", f"Timed tree: {first['speed_tree_params']:,} parameters; "
            f"memory tree: {first['memory_tree_params']:,} float32 "
            f"parameters, {shard_mib:.1f} MiB per device "
            "(row- and column-sharded square kernels, a conv kernel sharded "
            "on its output channels, sharded biases).", ""]
  for mesh_name, m in res["meshes"].items():
    mem = m["memory_bytes_per_device"]
    parts = []
    for name in ("ladam", "lsadam"):
      if name in mem:
        extra = (mem[name]["peak_estimate"]
                 - mem["optax.adam"]["peak_estimate"]) / 2**20
        parts.append(f"{name} {m['ratio_to_adam'][name]:.1f}x adam's time, "
                     f"+{extra:.0f} MiB per device "
                     f"({extra / shard_mib:.1f} param shards)")
    lines.append(f"- {mesh_name}: " + "; ".join(parts) + ".")
  lines += [
      "",
      "Reading: both transforms keep every leaf sharded (no all-gather in "
      "any update above) and the state has the params' shardings. On these "
      "forced CPU devices (8 XLA devices sharing the machine's cores; a "
      "collective is a memory copy) a collective costs more than on a real "
      "interconnect. LAdam's stencil takes one path on every mesh: on an "
      "Explicit mesh (the leaves' types) inside one `jax.shard_map`, on an "
      "Auto mesh (XLA's choice of sharding) inside one `custom_partitioning` "
      "op; each device runs the stencil on its own block as on one device "
      "and reads, at the block's edges only, one row or column from each "
      "mesh neighbour. The halos of all leaves that cross the same devices "
      "travel together: one `ppermute` per ring of devices and direction "
      "(one for both directions on a ring of two devices), in one round on "
      "the 1-D meshes (2 in all) and in two on the 2-D mesh, where kernels "
      "split on both field axes send the halos of one ring after those of "
      "the other, which bring the 9-point stencil's corners: first the "
      "'data' ring of two devices (1), whichever field axis it splits, "
      "then the 'model' ring of four (2): 3 in all. What the smallest exchange (two `ppermute` of one row) "
      "adds to `optax.adam` on these devices is measured by "
      "`benchmarks/bench_halo_cost.py`. Laplacian smoothing moves each "
      "leaf through two all-to-alls (four for a 1-D bias) and its FFTs are "
      "O(n log n) against Adam's O(n). Not measured: accelerators with a "
      "real interconnect."]
  return "\n".join(lines) + "\n"


def write_results(path: pathlib.Path, text: str):
  """Replaces this script's section of RESULTS.md (or appends it)."""
  body = path.read_text()
  block = f"{BEGIN}\n{text}{END}\n"
  if BEGIN in body and END in body:
    start, end = body.index(BEGIN), body.index(END) + len(END) + 1
    body = body[:start] + block + body[end:]
  else:
    body = body.rstrip("\n") + "\n\n" + block
  path.write_text(body)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=30)
  parser.add_argument("--side", type=int, default=1024,
                      help="side of the timed tree's square kernels")
  parser.add_argument("--layers", type=int, default=2)
  parser.add_argument("--mem-side", type=int, default=4096,
                      help="side of the memory tree's kernels (4096 x 3 x "
                      "2 layers: about 100M parameters)")
  parser.add_argument("--mem-layers", type=int, default=3)
  parser.add_argument("--meshes", default=",".join(MESHES))
  parser.add_argument("--json", default=str(HERE / "sharded.json"))
  parser.add_argument("--results", action="store_true",
                      help="replace this script's section of RESULTS.md")
  parser.add_argument("--tiny", action="store_true",
                      help="a smoke run on small trees; writes nothing")
  parser.add_argument("--render", action="store_true",
                      help="no run: the markdown of the --json results")
  args = parser.parse_args(argv)
  args.argv = list(sys.argv[1:] if argv is None else argv)
  if args.render:
    text = markdown(json.loads(pathlib.Path(args.json).read_text()))
    print(text)
    if args.results:
      write_results(HERE / "RESULTS.md", text)
    return
  if args.tiny:
    args.side, args.layers, args.mem_side, args.mem_layers = 64, 1, 64, 1
    args.rounds = min(args.rounds, 2)
    args.meshes = "x8-explicit"
  if jax.device_count() < 8:
    # JAX started before this script could ask for 8 host devices (e.g.
    # under pytest): run again in a fresh process that has them.
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=8")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__),
                           *args.argv], env=env, capture_output=True,
                          text=True, check=False)
    print(proc.stdout)
    if proc.returncode:
      raise SystemExit(proc.stderr[-4000:])
    return
  res = run(args)
  text = markdown(res)
  print(text)
  if not args.tiny:
    pathlib.Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    if args.results:
      write_results(HERE / "RESULTS.md", text)


if __name__ == "__main__":
  main()
