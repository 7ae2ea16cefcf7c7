"""``--reference torch``: the tasks trained with the PyTorch package ``ladam``.

The torch models are written functionally over the *same* initial parameters
(Flax kernels transposed to torch's layout), the same data and the same
minibatch indices as the JAX runs, so rows can be compared seed by seed.
Available for every task: cnn-denoise, pinn-wave, noisy-regression,
image-mlp (the same reordered initialisation), resnet-chi-anneal (with the
package's ``ChiAnnealScheduler`` for the ``-chi`` runs), image-transformer and
char-lm; the optimizers with
a reference class are adam (``torch.optim.Adam``), ladam (``ladam.LAdamW``),
ladam-floor0 (the experiment scripts' own LAdam, floor 0),
rmsprop/lrmsprop (``ladam.LRMSProp``, c2 = 0 / c2) and adagrad/ladagrad
(``ladam.LAdaGrad``).
"""

from __future__ import annotations

import time

import jax
import numpy as np

from ladam_jax.experiments import _tasks
from ladam_jax.experiments import _train

__all__ = ["reference_runs", "TORCH_TASKS"]

TORCH_TASKS = ("cnn-denoise", "pinn-wave", "noisy-regression", "image-mlp",
               "resnet-chi-anneal", "image-transformer", "char-lm")
# Tasks whose torch model takes the whole (weight, bias) tree, not a list.
_TREE_TASKS = ("resnet-chi-anneal", "image-transformer", "char-lm")


# Run names with a reference class (see _optimizer).
TORCH_OPTIMIZERS = frozenset({"adam", "ladam", "ladam-floor0", "rmsprop",
                              "lrmsprop", "adagrad", "ladagrad", "adam-chi",
                              "ladam-chi", "ladam-floor0-chi"})


def _script_ladam(torch, ladam):
  """The LAdam of the reference's experiment scripts (smoothed v floored at 0).

  A transcription of the ``LAdam`` class that ``experiment_scripts/*.py``
  define (the package's ``LAdamW`` floors at eps instead), using the
  package's own Laplacian and kernels.
  """
  lap = ladam.LAdamW._laplacian  # pylint: disable=protected-access
  k2d = ladam.LAdamW._get_lap_kernel_2d  # pylint: disable=protected-access
  k1d = ladam.LAdamW._get_lap_kernel_1d  # pylint: disable=protected-access

  class ScriptLAdam(torch.optim.Optimizer):
    def __init__(self, params, lr, c2, betas=(0.9, 0.999), eps=1e-8):
      super().__init__(params, dict(lr=lr, betas=betas, eps=eps, c2=c2))

    @torch.no_grad()
    def step(self, closure=None):
      del closure
      for g in self.param_groups:
        lr, eps, c2, (b1, b2) = g["lr"], g["eps"], g["c2"], g["betas"]
        for p in g["params"]:
          st = self.state[p]
          if not st:
            st["step"], st["m"], st["v"] = (0, torch.zeros_like(p),
                                            torch.zeros_like(p))
          st["step"] += 1
          m, v = st["m"], st["v"]
          m.mul_(b1).add_(p.grad, alpha=1 - b1)
          v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
          mh, vh = m / (1 - b1 ** st["step"]), v / (1 - b2 ** st["step"])
          if c2 > 0 and p.numel() >= 16:
            vh = (vh + c2 * lap(vh, k2d(p.device, vh.dtype),
                                k1d(p.device, vh.dtype))).clamp_(min=0)
          p.addcdiv_(mh, vh.sqrt().add_(eps), value=-lr)
  return ScriptLAdam


def _optimizer(torch, ladam, name, params, lr, c2, total_steps=None):
  """The reference optimizer of a run name; ``-chi`` names also return the
  package's ``ChiAnnealScheduler`` (stepped after every optimizer step)."""
  if name.endswith("-chi"):
    opt = _optimizer(torch, ladam, name[:-len("-chi")], params, lr, c2)
    return opt, ladam.ChiAnnealScheduler(opt, total_steps)
  if name == "adam":
    return torch.optim.Adam(params, lr=lr)
  if name == "ladam":
    return ladam.LAdamW(params, lr=lr, c2=c2, weight_decay=0.0)
  if name == "ladam-floor0":
    return _script_ladam(torch, ladam)(params, lr=lr, c2=c2)
  if name in ("rmsprop", "lrmsprop"):
    return ladam.LRMSProp(params, lr=lr, c2=c2 if name == "lrmsprop" else 0.0)
  if name in ("adagrad", "ladagrad"):
    return ladam.LAdaGrad(params, lr=lr, c2=c2 if name == "ladagrad" else 0.0)
  raise ValueError(f"no reference optimizer for {name!r}")


def _torch_layer(torch, layer):
  """Dense (in,out) → (out,in); Conv (*spatial,in,out) → (out,in,*spatial)."""
  kernel = np.asarray(layer["kernel"])
  nd = kernel.ndim
  kernel = np.transpose(kernel, (nd - 1, nd - 2) + tuple(range(nd - 2)))
  return (torch.tensor(np.ascontiguousarray(kernel), requires_grad=True),
          torch.tensor(np.asarray(layer["bias"]), requires_grad=True))


def _torch_tree(torch, tree):
  """Flax params → the same tree: a Dense/Conv layer → (weight, bias) in
  torch's layout, a LayerNorm → (scale, bias), an embedding table or a raw
  parameter (positions) → a tensor of the same layout."""
  leaf = lambda a: torch.tensor(np.asarray(a), requires_grad=True)  # noqa: E731
  if not isinstance(tree, dict):
    return leaf(tree)
  if "kernel" in tree:
    return _torch_layer(torch, tree)
  if "scale" in tree:
    return leaf(tree["scale"]), leaf(tree["bias"])
  if "embedding" in tree:
    return leaf(tree["embedding"])
  return {k: _torch_tree(torch, v) for k, v in tree.items()}


def _leaves(tree):
  """The torch tensors of a :func:`_torch_tree`, in the Flax tree's order
  (for a stack of Dense/Conv layers: [w0, b0, w1, b1, ...])."""
  if isinstance(tree, dict):
    return [a for sub in tree.values() for a in _leaves(sub)]
  return list(tree) if isinstance(tree, tuple) else [tree]


def _block(torch, p, x, heads, causal):
  """The bench's pre-norm transformer ``Block`` in torch (Flax's LayerNorm
  epsilon 1e-6, Flax's tanh-approximated GELU)."""
  F = torch.nn.functional  # pylint: disable=invalid-name
  b, n, d = x.shape
  hd = d // heads
  h = F.layer_norm(x, (d,), *p["norm1"], eps=1e-6)
  q, k, v = (F.linear(h, *p[name]).reshape(b, n, heads, hd)
             for name in ("query", "key", "value"))
  scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(hd)
  if causal:
    mask = torch.tril(torch.ones(n, n, dtype=torch.bool))
    scores = scores.masked_fill(~mask, float("-inf"))
  o = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v).reshape(b, n, d)
  x = x + F.linear(o, *p["out"])
  h = F.layer_norm(x, (d,), *p["norm2"], eps=1e-6)
  h = F.gelu(F.linear(h, *p["mlp_in"]), approximate="tanh")
  return x + F.linear(h, *p["mlp_out"])


def _blocks(torch, tree, x, heads, causal):
  i = 0
  while f"block_{i}" in tree:
    x = _block(torch, tree[f"block_{i}"], x, heads, causal)
    i += 1
  return x


def _conv_same(torch, z, w, b, stride):
  """Flax's 'SAME' convolution in torch: XLA pads the extra row/column at
  the high end (stride 2 on an even size), torch's ``padding`` symmetrically."""
  F = torch.nn.functional  # pylint: disable=invalid-name
  k, size = w.shape[-1], z.shape[-1]
  out = -(-size // stride)
  pad = max((out - 1) * stride + k - size, 0)
  z = F.pad(z, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
  return F.conv2d(z, w, b, stride=stride)


def _resnet(torch, tree):
  """``SmallResNet`` as a torch function of its (weight, bias) tree."""
  F = torch.nn.functional  # pylint: disable=invalid-name

  def conv(z, pair, stride=1):
    return _conv_same(torch, z, pair[0], pair[1], stride)

  def net(z):
    z = F.relu(conv(z, tree["Conv_0"]))
    c = z.shape[1]
    for i, (features, stride) in enumerate(
        ((c, 1), (c, 1), (2 * c, 2), (2 * c, 1))):
      block = tree[f"ResidualBlock_{i}"]
      h = F.relu(conv(z, block["Conv_0"], stride))
      h = conv(h, block["Conv_1"])
      if stride != 1 or z.shape[1] != features:
        z = conv(z, block["Conv_2"], stride)
      z = F.relu(z + h)
    w, b = tree["Dense_0"]
    return F.linear(z.mean(dim=(2, 3)), w, b)
  return net


def _sequential(params, layer, act):
  """``layer(z, w, b)`` for each (kernel, bias) pair, ``act`` between layers."""
  def net(z):
    for i in range(0, len(params), 2):
      z = layer(z, params[i], params[i + 1])
      if i < len(params) - 2:
        z = act(z)
    return z
  return net


def _classifier(torch, net, data, add_channel=False):
  """(loss(idx), evaluate()) of a classifier on data {'train', 'test'}."""
  F = torch.nn.functional  # pylint: disable=invalid-name
  (x, y), (xt, yt) = ((torch.tensor(np.asarray(a)) for a in data[k])
                      for k in ("train", "test"))
  if add_channel:  # NHW -> NCHW
    x, xt = x[:, None], xt[:, None]
  y, yt = y.long(), yt.long()

  def evaluate():
    correct = (net(xt).argmax(-1) == yt).double().mean()
    return {"test accuracy %": 100.0 * correct}
  return lambda idx: F.cross_entropy(net(x[idx]), y[idx]), evaluate


def _problem(torch, task, size, params, data):
  """(loss(batch_idx), evaluate() -> {metric: value}) of one seed in torch."""
  F = torch.nn.functional  # pylint: disable=invalid-name
  t = lambda a: torch.tensor(np.asarray(a))  # noqa: E731

  if task.name == "cnn-denoise":
    ncw = lambda pair: tuple(t(a).permute(0, 2, 1) for a in pair)  # noqa: E731
    net = _sequential(
        params, lambda z, w, b: F.conv1d(z, w, b, padding=w.shape[-1] // 2),
        F.relu)
    (x, y), (xt, yt) = ncw(data["train"]), ncw(data["test"])

    def evaluate():
      mse = torch.mean((net(xt) - yt) ** 2)
      return {"test MSE": mse, "test RMSE": torch.sqrt(mse)}
    return lambda idx: torch.mean((net(x[idx]) - y[idx]) ** 2), evaluate

  if task.name == "resnet-chi-anneal":  # params: the (weight, bias) tree
    return _classifier(torch, _resnet(torch, params), data, add_channel=True)

  if task.name == "image-transformer":
    heads, tree = size.options["heads"], params

    def classify(images):
      b = images.shape[0]
      patches = images.reshape(b, 4, 2, 4, 2).permute(0, 1, 3, 2, 4)
      x = F.linear(patches.reshape(b, 16, 4), *tree["patch_embed"])
      x = _blocks(torch, tree, x + tree["pos_embed"], heads, False)
      d = x.shape[-1]
      x = F.layer_norm(x, (d,), *tree["norm_out"], eps=1e-6).mean(1)
      return F.linear(x, *tree["head"])
    return _classifier(torch, classify, data)

  if task.name == "char-lm":
    heads, tree, ctx = size.options["heads"], params, size.options["context"]
    train, val = t(data["train"]).long(), t(data["val"]).long()

    def cross_entropy(windows):
      n = windows.shape[1] - 1
      x = tree["embed"][windows[:, :-1]] + tree["pos_embed"][:n]
      x = _blocks(torch, tree, x, heads, True)
      x = F.layer_norm(x, (x.shape[-1],), *tree["norm_out"], eps=1e-6)
      logits = F.linear(x, *tree["head"])
      return F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                             windows[:, 1:].reshape(-1))

    def loss(idx):
      return cross_entropy(train[idx[:, None] + torch.arange(ctx + 1)])

    def evaluate():
      ce = cross_entropy(val)
      return {"validation perplexity": torch.exp(ce),
              "validation bits per byte": ce / np.log(2.0)}
    return loss, evaluate

  if task.name == "image-mlp":
    return _classifier(torch, _sequential(params, F.linear, F.relu), data)

  net = _sequential(params, F.linear, torch.tanh)

  if task.name == "noisy-regression":
    x, y = map(t, data["train"])
    clean = t(data["clean"])

    def evaluate():
      pred = net(x)
      return {"MSE (noisy targets)": torch.mean((pred - y) ** 2),
              "MSE (clean targets)": torch.mean((pred - clean) ** 2)}
    return lambda idx: torch.mean((net(x) - y) ** 2), evaluate

  if task.name == "pinn-wave":
    interior, grid, initial = t(data["interior"]), t(data["grid"]), t(
        data["initial"])
    boundary0, boundary1 = t(data["boundary0"]), t(data["boundary1"])
    lam = size.options["lam"]

    def grad(out, z):
      return torch.autograd.grad(out.sum(), z, create_graph=True)[0]

    def loss(idx):
      del idx
      z = interior.clone().requires_grad_(True)
      du = grad(net(z), z)
      u_xx = grad(du[:, 0], z)[:, 0]
      u_tt = grad(du[:, 1], z)[:, 1]
      pde = torch.mean((u_tt - u_xx) ** 2)
      bc = torch.mean(net(boundary0) ** 2) + torch.mean(net(boundary1) ** 2)
      z0 = initial.clone().requires_grad_(True)
      u0 = net(z0)[:, 0]
      u0_t = grad(u0, z0)[:, 1]
      ic = (torch.mean((u0 - torch.sin(np.pi * z0[:, 0])) ** 2)
            + torch.mean(u0_t ** 2))
      return pde + lam * bc + lam * ic

    def evaluate():
      exact = torch.sin(np.pi * grid[:, 0]) * torch.cos(np.pi * grid[:, 1])
      pred = net(grid)[:, 0]
      mse = torch.mean((pred - exact) ** 2)
      return {"grid RMSE": torch.sqrt(mse), "grid MSE": mse,
              "relative L2": torch.sqrt(torch.sum((pred - exact) ** 2)
                                        / torch.sum(exact ** 2))}

    return loss, evaluate
  raise ValueError(
      f"--reference torch supports {TORCH_TASKS}, not {task.name!r}")


def _batch_indices(task, size, batch_keys):
  """The minibatch indices the JAX runs draw, for every seed and step."""
  if task.sampling == "full":
    return None

  def per_seed(key):
    return jax.vmap(lambda i: _tasks.batch_indices(task, size, key, i))(
        np.arange(size.steps))
  return np.asarray(jax.jit(jax.vmap(per_seed))(batch_keys))


def reference_runs(task, runs, parser):
  """(name, baseline, label, fn(size, prepared, progress, eval_steps), lr, c2).

  Args:
    task: the task.
    runs: the ladam_jax runs (objects with name, baseline, label, lr, c2);
      those with a reference class get a torch twin named ``torch-NAME``.
    parser: an ``argparse`` parser whose ``error`` reports a missing torch
      or an unsupported task (None: raise ``ValueError``).
  """
  def error(message):
    if parser is None:
      raise ValueError(message)
    parser.error(message)

  try:
    import ladam  # pylint: disable=import-outside-toplevel
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    error("--reference torch needs torch and ladam (pip install torch "
          "ladam==0.4.1)")
  if task.name not in TORCH_TASKS:
    error(f"--reference torch is available for {TORCH_TASKS}, not "
          f"{task.name}")
  out = []
  for run in runs:
    name = run.name.split(" ")[0]  # c2-sweep cells: "ladam c2=0.001"
    if name not in TORCH_OPTIMIZERS:
      continue
    tname = f"torch-{run.name}"
    tbase = f"torch-{run.baseline}" if run.baseline else None

    def fn(size, prepared, progress, eval_steps=(), name=name, lr=run.lr,
           c2=run.c2, tname=tname):
      return _run(torch, ladam, task, size, name, lr, c2, tname, prepared,
                  progress, eval_steps)
    out.append((tname, tbase, f"{run.label} [PyTorch]", fn,
                run.lr, run.c2))
  return out


def _run(torch, ladam, task, size, name, lr, c2, tname, prepared, progress,
         eval_steps=()):
  t0 = time.perf_counter()
  params, data = prepared.params, prepared.data
  indices = _batch_indices(task, size, prepared.batch_keys)
  eval_steps = _train.eval_schedule(size, eval_steps)
  curves, losses = [], []

  def evaluate_all(evaluate):
    with torch.no_grad():
      metrics = evaluate()
    return [float(metrics[m]) for m in task.metrics]

  for seed in range(size.seeds):
    seed_params = jax.tree.map(lambda x, s=seed: np.asarray(x[s]), params)
    seed_data = jax.tree.map(lambda x, s=seed: np.asarray(x[s]), data)
    tree = _torch_tree(torch, seed_params["params"])
    tp = _leaves(tree)
    loss_fn, evaluate = _problem(
        torch, task, size, tree if task.name in _TREE_TASKS else tp,
        seed_data)
    opt = _optimizer(torch, ladam, name, tp, lr, c2, size.steps)
    opt, scheduler = opt if isinstance(opt, tuple) else (opt, None)
    curve = [evaluate_all(evaluate)]
    seed_losses = []
    for i in range(size.steps):
      idx = None if indices is None else torch.tensor(indices[seed, i])
      opt.zero_grad()
      loss = loss_fn(idx)
      loss.backward()
      opt.step()
      if scheduler is not None:
        scheduler.step()
      seed_losses.append(loss.item())
      if i + 1 in eval_steps:
        curve.append(evaluate_all(evaluate))
        if progress is not None:
          progress(eval_steps[len(curve) - 1] - eval_steps[len(curve) - 2])
    curves.append(curve)
    losses.append(seed_losses)
  curves = np.asarray(curves)  # (seeds, evals, metrics)
  return _train.RunResult(
      name=tname, steps=np.asarray(eval_steps), curves=curves[..., 0],
      losses=np.asarray(losses), seconds=time.perf_counter() - t0,
      metric_curves={m: curves[..., i] for i, m in enumerate(task.metrics)})
