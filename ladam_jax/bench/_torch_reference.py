"""``--reference torch``: the same tasks trained with the PyTorch package ``ladam``.

The torch models are written functionally over the *same* initial parameters
(Flax kernels transposed to torch's layout), the same data and the same
minibatch indices as the JAX runs, so rows can be compared seed by seed.
Available for cnn-denoise, pinn-wave and noisy-regression; the optimizers with
a reference class are adam (``torch.optim.Adam``), ladam (``ladam.LAdamW``),
rmsprop/lrmsprop (``ladam.LRMSProp``, c2 = 0 / c2) and adagrad/ladagrad
(``ladam.LAdaGrad``).
"""

from __future__ import annotations

import time

import jax
import numpy as np

from ladam_jax.bench import _tasks
from ladam_jax.bench import _train

__all__ = ["reference_runs", "TORCH_TASKS"]

TORCH_TASKS = ("cnn-denoise", "pinn-wave", "noisy-regression")


# Run names with a reference class (see _optimizer).
TORCH_OPTIMIZERS = frozenset(
    {"adam", "ladam", "rmsprop", "lrmsprop", "adagrad", "ladagrad"})


def _optimizer(torch, ladam, name, params, lr, c2):
  if name == "adam":
    return torch.optim.Adam(params, lr=lr)
  if name == "ladam":
    return ladam.LAdamW(params, lr=lr, c2=c2, weight_decay=0.0)
  if name in ("rmsprop", "lrmsprop"):
    return ladam.LRMSProp(params, lr=lr, c2=c2 if name == "lrmsprop" else 0.0)
  if name in ("adagrad", "ladagrad"):
    return ladam.LAdaGrad(params, lr=lr, c2=c2 if name == "ladagrad" else 0.0)
  raise ValueError(f"no reference optimizer for {name!r}")


def _torch_params(torch, flax_params):
  """Flax params → torch leaves: Dense (in,out) → (out,in); Conv (k,in,out) → (out,in,k)."""
  out = []
  for layer in flax_params["params"].values():
    kernel = np.asarray(layer["kernel"])
    kernel = kernel.T if kernel.ndim == 2 else np.transpose(kernel, (2, 1, 0))
    out.append(torch.tensor(np.ascontiguousarray(kernel), requires_grad=True))
    out.append(torch.tensor(np.asarray(layer["bias"]), requires_grad=True))
  return out


def _sequential(params, layer, act):
  """``layer(z, w, b)`` for each (kernel, bias) pair, ``act`` between layers."""
  def net(z):
    for i in range(0, len(params), 2):
      z = layer(z, params[i], params[i + 1])
      if i < len(params) - 2:
        z = act(z)
    return z
  return net


def _mse_problem(torch, net, train, test):
  (x, y), (xt, yt) = train, test
  return (lambda idx: torch.mean((net(x[idx]) - y[idx]) ** 2),
          lambda: torch.mean((net(xt) - yt) ** 2))


def _problem(torch, task, size, params, data):
  """(loss(batch_idx), evaluate()) of one seed in torch."""
  del size
  F = torch.nn.functional  # pylint: disable=invalid-name
  t = lambda a: torch.tensor(np.asarray(a))  # noqa: E731

  if task.name == "cnn-denoise":
    ncw = lambda pair: tuple(t(a).permute(0, 2, 1) for a in pair)  # noqa: E731
    net = _sequential(
        params, lambda z, w, b: F.conv1d(z, w, b, padding=w.shape[-1] // 2),
        F.relu)
    return _mse_problem(torch, net, ncw(data["train"]), ncw(data["test"]))

  dense_net = _sequential(
      params, F.linear, F.relu if task.name == "noisy-regression" else torch.tanh)
  net = lambda z: dense_net(z)[:, 0]  # noqa: E731

  if task.name == "noisy-regression":
    return _mse_problem(torch, net, tuple(map(t, data["train"])),
                        tuple(map(t, data["test"])))

  if task.name == "pinn-wave":
    interior, boundary = t(data["interior"]), t(data["boundary"])
    initial, grid = t(data["initial"]), t(data["grid"])

    def grad(out, z):
      return torch.autograd.grad(out.sum(), z, create_graph=True)[0]

    def loss(idx):
      del idx
      z = interior.clone().requires_grad_(True)
      du = grad(net(z), z)
      u_xx = grad(du[:, 0], z)[:, 0]
      u_tt = grad(du[:, 1], z)[:, 1]
      pde = torch.mean((u_tt - u_xx) ** 2)
      bc = torch.mean(net(boundary) ** 2)
      z0 = initial.clone().requires_grad_(True)
      u0 = net(z0)
      u0_t = grad(u0, z0)[:, 1]
      ic = (torch.mean((u0 - torch.sin(np.pi * z0[:, 0])) ** 2)
            + torch.mean(u0_t ** 2))
      return pde + 10.0 * bc + 10.0 * ic

    def evaluate():
      exact = torch.sin(np.pi * grid[:, 0]) * torch.cos(np.pi * grid[:, 1])
      pred = net(grid)
      return torch.sqrt(torch.sum((pred - exact) ** 2) / torch.sum(exact ** 2))

    return loss, evaluate
  raise ValueError(f"--reference torch supports {TORCH_TASKS}, not {task.name!r}")


def _batch_indices(task, size, batch_keys):
  """The minibatch indices the JAX runs draw, for every seed and step."""
  o = size.options
  n = {"cnn-denoise": o.get("n_train"), "noisy-regression": o.get("n_train")}
  if task.name not in n:
    return None

  def per_seed(key):
    return jax.vmap(lambda i: _tasks.sample_indices(
        jax.random.fold_in(key, i), n[task.name], o["batch"]))(
            np.arange(size.steps))
  return np.asarray(jax.jit(jax.vmap(per_seed))(batch_keys))


def reference_runs(task, runs, parser):
  """(name, baseline, label, fn(size, prepared, progress)) per reference run."""
  try:
    import ladam  # pylint: disable=import-outside-toplevel
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    parser.error("--reference torch needs torch and ladam (pip install torch "
                 "ladam==0.4.1)")
  if task.name not in TORCH_TASKS:
    parser.error(f"--reference torch is available for {TORCH_TASKS}, not "
                 f"{task.name}")
  out = []
  for name, base, label, _, lr, c2 in runs:
    if name not in TORCH_OPTIMIZERS:
      continue
    tname = f"torch-{name}"
    tbase = f"torch-{base}" if base else None

    def fn(size, prepared, progress, name=name, lr=lr, c2=c2, tname=tname):
      return _run(torch, ladam, task, size, name, lr, c2, tname, prepared,
                  progress)
    out.append((tname, tbase, f"{label} — PyTorch ladam 0.4.1", fn))
  return out


def _run(torch, ladam, task, size, name, lr, c2, tname, prepared, progress):
  t0 = time.perf_counter()
  params, data = prepared.params, prepared.data
  indices = _batch_indices(task, size, prepared.batch_keys)
  eval_steps = _train.eval_schedule(size)
  curves, losses = [], []
  for seed in range(size.seeds):
    seed_params = jax.tree.map(lambda x, s=seed: np.asarray(x[s]), params)
    seed_data = jax.tree.map(lambda x, s=seed: np.asarray(x[s]), data)
    tp = _torch_params(torch, seed_params)
    loss_fn, evaluate = _problem(torch, task, size, tp, seed_data)
    opt = _optimizer(torch, ladam, name, tp, lr, c2)
    with torch.no_grad():
      curve = [float(evaluate())]
    seed_losses = []
    for i in range(size.steps):
      idx = None if indices is None else torch.tensor(indices[seed, i])
      opt.zero_grad()
      loss = loss_fn(idx)
      loss.backward()
      opt.step()
      seed_losses.append(loss.item())
      if i + 1 in eval_steps:
        with torch.no_grad():
          curve.append(float(evaluate()))
        if progress is not None:
          progress(eval_steps[len(curve) - 1] - eval_steps[len(curve) - 2])
    curves.append(curve)
    losses.append(seed_losses)
  return _train.RunResult(name=tname, steps=np.asarray(eval_steps),
                          curves=np.asarray(curves), losses=np.asarray(losses),
                          seconds=time.perf_counter() - t0)
