"""LAdam on one global mesh over several processes (multi-host training).

Every process runs this same program: ``jax.distributed.initialize`` joins
them, ``jax.make_mesh`` builds one mesh over all processes' devices, the
parameters are built with ``jax.make_array_from_callback`` and each batch with
``jax.make_array_from_process_local_data`` (each process holds only its rows),
and one jitted step (under ``jax.set_mesh``) trains an MLP regression with
``ladam_jax.ladam``. Process 0 prints the final loss.

One process, 8 devices (8 forced CPU devices when there is no accelerator)::

    python examples/multi_host.py

Two processes of 4 CPU devices each on this machine, the same global mesh of
8 devices, the same result::

    python examples/multi_host.py --num-processes 2 --process-id 0 &
    python examples/multi_host.py --num-processes 2 --process-id 1

On several hosts, run it on each with ``--coordinator HOST0:PORT`` (an
address of process 0 that the others can reach) and that host's
``--process-id``. The mesh axes are Explicit (shardings are part of the
arrays' types; ``jax.make_mesh``'s default), or Auto with ``--axis-types auto``
(shardings of intermediate values left to the compiler).
``--checkpoint-dir DIR --save-at K`` saves parameters, optimizer state and
step with Orbax after step K; ``--resume DIR/step_K`` restores such a
checkpoint, written by any number of processes on any mesh shape, into this
run's mesh and continues.
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import AxisType
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import ladam_jax

SIZES = (16, 64, 16)       # MLP widths: input, hidden, output
BATCH = 32                 # global batch, split over the mesh's 'data' axis
DATA = 512                 # rows of the synthetic regression data set


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--num-processes", type=int, default=1)
  parser.add_argument("--process-id", type=int, default=0)
  parser.add_argument("--coordinator", default="127.0.0.1:12355",
                      help="host:port of process 0 (default %(default)s)")
  parser.add_argument("--devices-per-process", type=int, default=None,
                      help="CPU devices to force in each process "
                           "(default: 8 / --num-processes)")
  parser.add_argument("--mesh-shape", default="2,4",
                      help="'data,model' sizes of the global mesh "
                           "(default %(default)s)")
  parser.add_argument("--axis-types", choices=("explicit", "auto"),
                      default="explicit")
  parser.add_argument("--steps", type=int, default=40)
  parser.add_argument("--checkpoint-dir", default=None)
  parser.add_argument("--save-at", type=int, default=None,
                      help="save a checkpoint after this many steps")
  parser.add_argument("--resume", default=None,
                      help="checkpoint directory to restore and continue from")
  parser.add_argument("--save-result", default=None,
                      help="process 0 writes the loss history, final "
                           "parameters and state (gathered) to this .npz")
  args = parser.parse_args(argv)
  if args.num_processes < 1 or not 0 <= args.process_id < args.num_processes:
    parser.error(f"--process-id must be in [0, {args.num_processes}), got "
                 f"{args.process_id}")
  if (args.save_at is None) != (args.checkpoint_dir is None):
    parser.error("--save-at and --checkpoint-dir go together")
  return args


def initialize(num_processes, process_id, coordinator, devices_per_process):
  """Forces host CPU devices and joins the processes; call before any JAX
  computation."""
  if "xla_force_host_platform_device_count" not in os.environ.get(
      "XLA_FLAGS", ""):
    # Only the CPU backend: accelerators, when present, are used as they are.
    jax.config.update("jax_num_cpu_devices", devices_per_process)
  if num_processes > 1:
    # Collectives between CPU devices of different processes (no-op for GPUs
    # and TPUs, which bring their own).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator,
                               num_processes=num_processes,
                               process_id=process_id)


def make_mesh(shape, axis_types="explicit"):
  """One global mesh over every process's devices, axes ('data', 'model')."""
  kind = {"auto": AxisType.Auto, "explicit": AxisType.Explicit}[axis_types]
  return jax.make_mesh(tuple(shape), ("data", "model"),
                       axis_types=(kind,) * len(shape))


def param_specs():
  """How each parameter is split: kernels by output column ('model'), the
  hidden biases with them, the last bias replicated."""
  specs = {}
  for i in range(len(SIZES) - 1):
    specs[f"dense_{i}"] = {"kernel": P(None, "model"),
                           "bias": P("model") if i < len(SIZES) - 2 else P()}
  return specs


def global_params(seed=0):
  """The initial parameters as host NumPy arrays (the same on every process)."""
  rng = np.random.default_rng(seed)
  return {f"dense_{i}": {
      "kernel": (rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32),
      "bias": np.zeros(b, np.float32)}
          for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:]))}


def shard_params(host_params, mesh):
  """Global arrays: each process fills only the shards of its own devices."""
  return jax.tree.map(
      lambda x, spec: jax.make_array_from_callback(
          x.shape, NamedSharding(mesh, spec), lambda index: x[index]),
      host_params, param_specs())


def dataset(seed=1):
  rng = np.random.default_rng(seed)
  x = rng.uniform(-1, 1, size=(DATA, SIZES[0])).astype(np.float32)
  w = rng.normal(size=(SIZES[0], SIZES[-1])).astype(np.float32)
  return x, np.sin(3 * x @ w / np.sqrt(SIZES[0])).astype(np.float32)


def batch_at(step, data, mesh):
  """The global batch of ``step`` from the rows this process holds.

  A real input pipeline reads only this process's rows; here every process
  could compute all of them, and takes its own to show the pattern.
  """
  sharding = NamedSharding(mesh, P("data"))
  lo = (step * BATCH) % DATA
  out = []
  for array in data:
    shape = (BATCH,) + array.shape[1:]
    spans = sorted({index[0].indices(BATCH)[:2] for index in
                    sharding.addressable_devices_indices_map(shape).values()})
    if any(a[1] < b[0] for a, b in zip(spans, spans[1:])):
      raise ValueError(f"this process's rows {spans} are not contiguous")
    start, stop = spans[0][0], spans[-1][1]
    local = array[lo + start:lo + stop]
    out.append(jax.make_array_from_process_local_data(sharding, local, shape))
  return tuple(out)


def reshard(x, spec):
  """Moves ``x`` to ``spec`` inside jit: ``jax.sharding.reshard`` on Explicit
  axes, a sharding constraint on Auto ones."""
  if jax.sharding.get_abstract_mesh().are_all_axes_explicit:
    return jax.sharding.reshard(x, spec)
  return jax.lax.with_sharding_constraint(x, spec)


def forward(params, x):
  n = len(params)
  for i in range(n):
    layer = params[f"dense_{i}"]
    # The kernel is split by output column: gather the input's features (an
    # all-gather over 'model'); the output is split by column again.
    x = reshard(x, P("data", None)) @ layer["kernel"] + layer["bias"]
    if i < n - 1:
      x = jnp.tanh(x)
  return x


def loss_fn(params, x, y):
  return jnp.mean((forward(params, x) - y) ** 2)


def make_optimizer():
  return ladam_jax.ladam(1e-2, c2=1e-3)


def state_shardings(tx, params):
  """The optimizer state's shardings: mu and nu as the parameters, the step
  count replicated (``jax.jit(tx.init)`` alone would leave the placement of
  the zeros to the compiler on Auto axes)."""
  mesh = jax.tree.leaves(params)[0].sharding.mesh
  shapes = jax.eval_shape(tx.init, params)
  return optax.tree_map_params(
      tx, lambda _, sharding: sharding, shapes,
      jax.tree.map(lambda p: p.sharding, params),
      transform_non_params=lambda _: NamedSharding(mesh, P()))


def make_step(tx, params):
  param_sh = jax.tree.map(lambda p: p.sharding, params)
  state_sh = state_shardings(tx, params)
  mesh = jax.tree.leaves(params)[0].sharding.mesh

  def step(params, opt_state, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  init = jax.jit(tx.init, out_shardings=state_sh)
  step = jax.jit(step, out_shardings=(param_sh, state_sh,
                                      NamedSharding(mesh, P())),
                 donate_argnums=(0, 1))
  return init, step


def save_checkpoint(path, params, opt_state, step):
  """Every process writes its own shards of one checkpoint."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  with ocp.StandardCheckpointer() as ckpt:
    ckpt.save(os.path.abspath(path), {"params": params,
                                      "opt_state": opt_state, "step": step})


def restore_checkpoint(path, params, opt_state, step):
  """Restores into the shapes and shardings of the given arrays (this run's
  mesh), whatever mesh and number of processes wrote the checkpoint."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  target = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                        {"params": params, "opt_state": opt_state,
                         "step": step})
  with ocp.StandardCheckpointer() as ckpt:
    out = ckpt.restore(os.path.abspath(path), target)
  return out["params"], out["opt_state"], out["step"]


def gather(tree):
  """Every global array of ``tree`` as one host NumPy array (on every
  process)."""
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return jax.tree.map(np.asarray,
                      multihost_utils.process_allgather(tree, tiled=True))


def save_result(path, losses, params, opt_state):
  flat = jax.tree_util.tree_flatten_with_path(
      gather({"params": params, "opt_state": opt_state}))[0]
  arrays = {jax.tree_util.keystr(k): v for k, v in flat}
  if jax.process_index() == 0:
    np.savez(path, losses=np.asarray(losses, np.float32), **arrays)


def main(argv=None):
  args = parse_args(argv)
  initialize(args.num_processes, args.process_id, args.coordinator,
             args.devices_per_process or max(8 // args.num_processes, 1))
  shape = tuple(int(s) for s in args.mesh_shape.split(","))
  if len(shape) != 2 or np.prod(shape) != jax.device_count():
    raise ValueError(f"--mesh-shape must be two sizes whose product is the "
                     f"{jax.device_count()} devices, got {args.mesh_shape!r}")
  mesh = make_mesh(shape, args.axis_types)
  data = dataset()
  tx = make_optimizer()
  with jax.set_mesh(mesh):
    params = shard_params(global_params(), mesh)
    init, step_fn = make_step(tx, params)
    opt_state = init(params)
    step = jax.device_put(jnp.int32(0), NamedSharding(mesh, P()))
    if args.resume:
      params, opt_state, step = restore_checkpoint(args.resume, params,
                                                   opt_state, step)
    losses = []
    for i in range(int(step), args.steps):
      x, y = batch_at(i, data, mesh)
      params, opt_state, loss = step_fn(params, opt_state, x, y)
      losses.append(loss)
      if args.save_at == i + 1:
        save_checkpoint(os.path.join(args.checkpoint_dir, f"step_{i + 1}"),
                        params, opt_state,
                        jax.device_put(jnp.int32(i + 1),
                                       NamedSharding(mesh, P())))
    losses = [float(loss) for loss in losses]  # replicated: on every process
    if args.save_result:
      save_result(args.save_result, losses, params, opt_state)
  if jax.process_index() == 0:
    print(f"{jax.process_count()} process(es), {jax.device_count()} devices, "
          f"mesh {dict(mesh.shape)} ({args.axis_types} axes): final loss "
          f"{losses[-1] if losses else float('nan'):.6f} after {args.steps} "
          "steps")
  return losses


if __name__ == "__main__":
  main()
