"""Neuron reordering for Dense stacks (port of ``ladam/reorder.py``).

A Dense layer's output units are in arbitrary order, so the Laplacian of its
kernel couples unrelated neighbours. Reordering the units so that units with
correlated activations sit next to each other (and permuting the next layer's
inputs to match) leaves the network's function unchanged but gives LAdam's
Laplacian a smoother field.
"""


from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["compute_neuron_order", "reorder_dense"]


def compute_neuron_order(activations: Any) -> np.ndarray:
  """Greedy nearest-neighbour ordering of units by activation correlation.

  As ``ladam.compute_neuron_order``: standardise each unit's activations
  (unbiased standard deviation, clamped at 1e-8), correlation
  :math:`C = Z^\\top Z / N`; start at unit 0, then repeatedly append the
  unvisited unit most correlated with the last one (the lowest index among
  ties). With 4 or fewer units the order is the identity. Runs on the host
  (NumPy, float32 like the reference); the result is a static permutation.

  Args:
    activations: ``[batch, units]`` activations (e.g. a hidden layer's
      outputs on a few batches after warm-up).

  Returns:
    An int array: a permutation of ``range(units)``.

  Examples:
    >>> import numpy as np
    >>> from ladam_jax import compute_neuron_order
    >>> rng = np.random.default_rng(0)
    >>> base = rng.normal(size=(256, 3))
    >>> # Units 0 and 3, 1 and 4, 2 and 5 are (nearly) the same signal.
    >>> acts = np.concatenate([base, base + 0.01 * rng.normal(size=(256, 3))], 1)
    >>> compute_neuron_order(acts).tolist()
    [0, 3, 4, 1, 2, 5]
  """
  act = np.asarray(activations, dtype=np.float32)
  if act.ndim != 2:
    raise ValueError(
        f"`activations` must be 2-D [batch, units], got shape {act.shape}.")
  n = act.shape[1]
  if n <= 4:
    return np.arange(n)
  if act.shape[0] < 2:
    raise ValueError(
        "`activations` needs at least 2 rows (samples) to correlate units, "
        f"got shape {act.shape}.")
  if not np.all(np.isfinite(act)):
    raise ValueError("`activations` contains NaN or inf.")
  std = np.maximum(act.std(axis=0, ddof=1), np.float32(1e-8))
  z = (act - act.mean(axis=0)) / std
  corr = (z.T @ z) / np.float32(act.shape[0])
  visited = np.zeros(n, dtype=bool)
  order = [0]
  visited[0] = True
  for _ in range(n - 1):
    row = np.where(visited, -np.inf, corr[order[-1]])
    nxt = int(np.argmax(row))  # first maximum, like the reference's strict >
    order.append(nxt)
    visited[nxt] = True
  return np.asarray(order)


def _check_order(order: Any, n: int) -> np.ndarray:
  order = np.asarray(order)
  if order.shape != (n,) or not np.array_equal(np.sort(order), np.arange(n)):
    raise ValueError(
        f"`order` must be a permutation of range({n}), got {order!r}.")
  return order


def reorder_dense(layer: Mapping[str, Any], next_layer: Mapping[str, Any],
                  order: Sequence[int]) -> tuple[dict, dict]:
  """Permutes a Dense layer's output units and the next layer's inputs.

  Works on Flax Dense parameter dicts (``{'kernel': (in, out), 'bias':
  (out,)}``; ``nnx.Linear`` state converted with ``nnx.to_pure_dict``): the
  layer's kernel columns and bias, and the next kernel's rows, are taken in
  ``order``, so ``next(act(layer(x)))`` is unchanged for any elementwise
  activation. Apply the same call to Adam's ``mu``/``nu`` subtrees when
  reordering mid-training (the reference leaves its optimizer state
  unpermuted), or reorder before creating the optimizer state.

  Args:
    layer: the layer whose outputs are reordered.
    next_layer: the layer that consumes them (its kernel's rows permuted).
    order: a permutation, e.g. from :func:`compute_neuron_order`.

  Returns:
    ``(new_layer, new_next_layer)``; other entries are kept as they are.

  Examples:
    >>> import jax.numpy as jnp
    >>> from ladam_jax import reorder_dense
    >>> l1 = {'kernel': jnp.arange(6.).reshape(2, 3), 'bias': jnp.arange(3.)}
    >>> l2 = {'kernel': jnp.arange(3.).reshape(3, 1)}
    >>> a, b = reorder_dense(l1, l2, [2, 0, 1])
    >>> a['bias'].tolist(), b['kernel'][:, 0].tolist()
    ([2.0, 0.0, 1.0], [2.0, 0.0, 1.0])
  """
  for name, p in (("layer", layer), ("next_layer", next_layer)):
    if "kernel" not in p or np.ndim(p["kernel"]) != 2:
      raise ValueError(f"`{name}` must be a Dense parameter dict with a 2-D "
                       f"'kernel', got keys {sorted(p)}.")
  n = np.shape(layer["kernel"])[1]
  if np.shape(next_layer["kernel"])[0] != n:
    raise ValueError(
        f"`layer` has {n} outputs but `next_layer`'s kernel takes "
        f"{np.shape(next_layer['kernel'])[0]} inputs.")
  order = _check_order(order, n)
  new_layer = dict(layer)
  new_layer["kernel"] = layer["kernel"][:, order]
  if "bias" in layer:
    new_layer["bias"] = layer["bias"][order]
  new_next = dict(next_layer)
  new_next["kernel"] = next_layer["kernel"][order, :]
  return new_layer, new_next
