"""Per-leaf c2 from a model's parameter tree (port of ``ladam/auto.py``).

The reference classifies each PyTorch parameter by its module type and name
into attention, conv, linear, norm, embedding, bias or other, and recommends
c2 per class from its 64-experiment benchmark (linear 1e-5, everything else
0). Flax parameter trees carry no module types, so here the class comes from
the leaf's key path (linen ``params/Conv_0/kernel``, nnx
``layers/0/attn/query/kernel/value``) and its shape:

1. a path key naming attention (``query``/``key``/``value``/``out`` under an
   attention module, ``q_proj``, ``qkv``, anything containing ``attention``
   or ``attn``) → ``attention``;
2. a key containing ``norm`` (``LayerNorm_0``, ``BatchNorm_0``, ``norm1``,
   ``RMSNorm``) → ``norm``;
3. a leaf named ``embedding`` (``nn.Embed``/``nnx.Embed``), or a leaf other
   than ``kernel``/``bias`` whose path contains ``embed`` (``pos_embed``)
   → ``embedding``;
4. ``ndim <= 1`` → ``bias``;
5. a key containing ``conv``, or ``ndim >= 3`` → ``conv``;
6. ``ndim == 2`` → ``linear``; else ``other``.

A leaf named ``bias`` is ``bias`` whatever its shape (an Equinox conv bias
is ``(out, 1, 1)``).

Equinox models carry their layer types, so their leaves are classified as
the reference classifies the PyTorch layers they mirror (what the
reference's ``auto.py`` reads from ``isinstance``): a leaf of an
``eqx.nn.MultiheadAttention`` → ``attention``; ``Conv*``/``ConvTranspose*``
weight → ``conv``; ``Linear`` weight → ``linear``; ``Embedding`` →
``embedding``; ``LayerNorm``/``GroupNorm``/``RMSNorm``/``BatchNorm`` →
``norm``; any ``bias`` → ``bias``; other leaves by the path rules above
(Equinox paths read ``layers/0/weight``).

Deviation: the reference files 1-D norm scales under ``bias`` (it tests
``ndim <= 1`` first); here they are ``norm``. Both get c2 = 0.
"""


import dataclasses
from typing import Any, Mapping, Optional

import jax
import numpy as np

from ladam_jax import _c2
from ladam_jax import _equinox
from ladam_jax import _tree_specs
from ladam_jax import _validation

__all__ = ["CLASSES", "REFERENCE_C2", "classify_param", "classify_params",
           "auto_c2", "analyze_params", "ParamReport"]

CLASSES = ("attention", "conv", "linear", "norm", "embedding", "bias", "other")

# ladam/auto.py's _C2_MAP (0.4.1).
REFERENCE_C2 = {
    "linear": 1e-5,
    "conv": 0.0,
    "attention": 0.0,
    "norm": 0.0,
    "embedding": 0.0,
    "bias": 0.0,
    "other": 0.0,
}

_ATTENTION_KEYS = frozenset({
    "self_attn", "multihead_attn", "attention", "attn", "q_proj", "k_proj",
    "v_proj", "o_proj", "out_proj", "qkv", "query", "key", "value"})


def _keys(path) -> list[str]:
  """Lower-cased keys of a key path or a ``'a/b/c'`` string."""
  text = path if isinstance(path, str) else _c2.path_to_str(path)
  keys = text.lower().split("/")
  if len(keys) > 1 and keys[-1] == "value":  # nnx.Variable's value
    keys = keys[:-1]
  return keys


def classify_param(path, leaf) -> str:
  """The class of one leaf (one of :data:`CLASSES`) from its key path and shape.

  Args:
    path: a JAX key path, or a string with keys joined by ``/``.
    leaf: the parameter (only its shape is used).

  Returns:
    The class name.

  Examples:
    >>> import jax.numpy as jnp
    >>> from ladam_jax import classify_param
    >>> classify_param('params/Conv_0/kernel', jnp.zeros((3, 3, 8, 16)))
    'conv'
    >>> classify_param('params/block_0/attention/query/kernel',
    ...                jnp.zeros((64, 4, 16)))
    'attention'
  """
  keys = _keys(path)
  ndim = np.ndim(leaf)
  modules, name = keys[:-1], keys[-1]
  if any(k in _ATTENTION_KEYS or "attention" in k or "attn" in k
         for k in modules):
    return "attention"
  if any("norm" in k for k in modules):
    return "norm"
  if name == "embedding" or (
      name not in ("kernel", "bias") and any("embed" in k for k in keys)):
    return "embedding"
  if ndim <= 1 or name == "bias":
    return "bias"
  if any("conv" in k for k in modules) or ndim >= 3:
    return "conv"
  if ndim == 2:
    return "linear"
  return "other"


def _equinox_class(owner, path, leaf) -> str:
  """The class of a leaf of an Equinox layer, from the layer types."""
  import equinox as eqx  # pylint: disable=g-import-not-at-top
  if any(isinstance(m, eqx.nn.MultiheadAttention) for m in owner.chain):
    return "attention"
  module = owner.module
  norms = tuple(getattr(eqx.nn, n) for n in
                ("LayerNorm", "GroupNorm", "RMSNorm", "BatchNorm")
                if hasattr(eqx.nn, n))
  if isinstance(module, norms):
    return "norm"
  if owner.attr == "bias":
    return "bias"
  if isinstance(module, (eqx.nn.Conv, eqx.nn.ConvTranspose)):
    return "conv"
  if isinstance(module, eqx.nn.Linear):
    return "linear"
  if isinstance(module, eqx.nn.Embedding):
    return "embedding"
  return classify_param(path, leaf)


def classify_params(params: Any) -> Any:
  """:func:`classify_param` over a tree: a pytree of class names.

  Leaves of Equinox layers are classified by their layer's type (see the
  module docstring), every other leaf by its key path and shape.

  Examples:
    >>> import jax, equinox as eqx, ladam_jax
    >>> model = eqx.nn.Conv2d(3, 8, 3, key=jax.random.key(0))
    >>> ladam_jax.classify_params(eqx.filter(model, eqx.is_array)).bias
    'bias'
  """
  paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
  owners = _equinox.leaf_owners(params)
  return treedef.unflatten([
      classify_param(path, leaf) if owner is None
      else _equinox_class(owner, path, leaf)
      for (path, leaf), owner in zip(paths_leaves, owners)])


def _check_map(c2_map: Optional[Mapping[str, Any]]) -> dict[str, Any]:
  out = dict(REFERENCE_C2)
  if c2_map is not None:
    unknown = set(c2_map) - set(CLASSES)
    if unknown:
      raise ValueError(f"`c2_map` has unknown classes {sorted(unknown)}: "
                       f"choose from {CLASSES}.")
    for cls, value in c2_map.items():
      _c2.check_c2(value, name=f"c2_map[{cls!r}]")
    out.update(c2_map)
  return out


def auto_c2(c2_map: Optional[Mapping[str, Any]] = None
            ) -> _tree_specs.PerLeaf:
  """A params function giving each leaf the c2 of its class.

  Pass it as ``c2=``: ``ladam_jax.ladamw(1e-3, c2=ladam_jax.auto_c2())``.

  Args:
    c2_map: class → c2 overrides of :data:`REFERENCE_C2` (the reference's
      recommendation: 1e-5 for linear, 0 for every other class).

  Returns:
    A params function (:class:`ladam_jax.PerLeaf`) to pass as ``c2=``;
    ``.fn(params)`` gives the pytree of c2 values.

  Examples:
    >>> import jax.numpy as jnp, ladam_jax
    >>> params = {'Dense_0': {'kernel': jnp.zeros((32, 32)),
    ...                       'bias': jnp.zeros(32)},
    ...           'Conv_0': {'kernel': jnp.zeros((3, 3, 4, 8))}}
    >>> ladam_jax.auto_c2().fn(params)
    {'Conv_0': {'kernel': 0.0}, 'Dense_0': {'bias': 0.0, 'kernel': 1e-05}}
    >>> ladam_jax.auto_c2({'conv': 1e-3}).fn(params)['Conv_0']['kernel']
    0.001
  """
  table = _check_map(c2_map)

  def c2_of(params):
    return jax.tree.map(table.__getitem__, classify_params(params))

  return _tree_specs.PerLeaf(c2_of)


@dataclasses.dataclass(frozen=True)
class ParamReport:
  """What :func:`analyze_params` found; ``str(report)`` is a short summary."""
  architecture: str
  total_params: int
  layer_counts: dict
  layer_params: dict
  c2_map: dict
  recommendation: str

  def __str__(self) -> str:
    lines = [f"architecture: {self.architecture}, "
             f"{self.total_params:,} parameters",
             f"{'class':<10} {'leaves':>6} {'params':>12} {'share':>7} "
             f"{'c2':>8}"]
    for cls in CLASSES:
      if cls in self.layer_counts:
        n = self.layer_params[cls]
        share = 100.0 * n / max(self.total_params, 1)
        c2 = self.c2_map[cls]
        c2_text = f"{c2:g}" if isinstance(c2, (int, float)) else "schedule"
        lines.append(f"{cls:<10} {self.layer_counts[cls]:>6} {n:>12,} "
                     f"{share:>6.1f}% {c2_text:>8}")
    lines.append(self.recommendation)
    return "\n".join(lines)


# What the bench measured (README, "Results"), stated with every
# recommendation instead of a verdict the evidence does not support.
_EVIDENCE = (
    "Evidence (ladam-bench, paired over random seeds): the reference's "
    "floor-0 LAdam beat Adam on its 1-D CNN denoising, and on its PINN after "
    "500 steps but not after 1000 (floor 0 is ladam_jax.ladam's default); no "
    "significant gain elsewhere, and none anywhere for the package's eps "
    "clamp (variance_floor='eps'). Compare with Adam on "
    "your own task over several random seeds before adopting LAdam.")


def analyze_params(params: Any,
                   c2_map: Optional[Mapping[str, Any]] = None) -> ParamReport:
  """Classifies a parameter tree and recommends c2 (``ladam.auto.analyze_model``).

  Args:
    params: the parameter tree (linen ``variables['params']`` or the whole
      variables dict, ``nnx.state(model, nnx.Param)``, or an Equinox
      model's ``eqx.filter(model, eqx.is_array)``).
    c2_map: class → c2 overrides, as in :func:`auto_c2`.

  Returns:
    A :class:`ParamReport`; print it for a short table.

  Examples:
    >>> import jax.numpy as jnp, ladam_jax
    >>> params = {'Dense_0': {'kernel': jnp.zeros((64, 64)),
    ...                       'bias': jnp.zeros(64)}}
    >>> print(ladam_jax.analyze_params(params))
    architecture: mlp, 4,160 parameters
    class      leaves       params   share       c2
    linear          1        4,096   98.5%    1e-05
    bias            1           64    1.5%        0
    98.5% of parameters (4,096 / 4,160) get c2 > 0. Evidence (ladam-bench, ...
  """
  table = _check_map(c2_map)
  counts, sizes = {}, {}
  classes = jax.tree.leaves(classify_params(params))
  for cls, leaf in zip(classes, jax.tree.leaves(params)):
    counts[cls] = counts.get(cls, 0) + 1
    sizes[cls] = sizes.get(cls, 0) + int(np.size(leaf))
  total = sum(sizes.values())
  if "attention" in counts:
    arch = "transformer"
  elif "conv" in counts:
    arch = "cnn"
  else:
    arch = "mlp"
  active = [c for c in counts if callable(table[c])
            or not _validation.is_concrete_zero(table[c])]
  active_params = sum(sizes[c] for c in active)
  pct = 100.0 * active_params / total if total else 0.0
  if not active:
    rec = ("No leaf gets c2 > 0: LAdam is Adam here. "
           "Use Adam/AdamW.")
  else:
    rec = (f"{pct:.1f}% of parameters ({active_params:,} / {total:,}) get "
           f"c2 > 0. {_EVIDENCE}")
  return ParamReport(arch, total, counts, sizes,
                     {c: table[c] for c in counts}, rec)
