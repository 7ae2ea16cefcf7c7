"""Equinox as a client: fields, per-leaf arguments, classes, diagnostics.

The float64 trajectories are replayed against golden data from the reference
(ladam 0.4.1): ``tools/make_golden.py --equinox-only`` steps the PyTorch
layers that an Equinox model of every layer type mirrors.
"""

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings, strategies as st

import ladam_jax
from ladam_jax import _tree_specs
from _helpers import enable_x64

eqx = pytest.importorskip("equinox")

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "equinox.npz")


class Net(eqx.Module):
  """One of every Equinox layer the reference has a PyTorch twin of."""
  conv1: eqx.nn.Conv1d
  conv2: eqx.nn.Conv2d
  conv3: eqx.nn.Conv3d
  convt: eqx.nn.ConvTranspose2d
  linear: eqx.nn.Linear
  embed: eqx.nn.Embedding
  mha: eqx.nn.MultiheadAttention
  norm: eqx.nn.LayerNorm

  def __init__(self, key):
    ks = jax.random.split(key, 7)
    self.conv1 = eqx.nn.Conv1d(4, 8, 5, key=ks[0])
    self.conv2 = eqx.nn.Conv2d(6, 16, 3, key=ks[1])
    self.conv3 = eqx.nn.Conv3d(2, 4, 3, key=ks[2])
    self.convt = eqx.nn.ConvTranspose2d(8, 12, 3, key=ks[3])
    self.linear = eqx.nn.Linear(24, 20, key=ks[4])
    self.embed = eqx.nn.Embedding(30, 12, key=ks[5])
    self.mha = eqx.nn.MultiheadAttention(4, 16, 12, 10, 16, key=ks[6])
    self.norm = eqx.nn.LayerNorm(16)

  def __call__(self, x):
    raise AssertionError("an optimizer must never call the model")


# PyTorch parameter name -> the Equinox leaf it is.
_WHERE = {
    "conv1.weight": lambda m: m.conv1.weight,
    "conv1.bias": lambda m: m.conv1.bias,
    "conv2.weight": lambda m: m.conv2.weight,
    "conv2.bias": lambda m: m.conv2.bias,
    "conv3.weight": lambda m: m.conv3.weight,
    "conv3.bias": lambda m: m.conv3.bias,
    "convt.weight": lambda m: m.convt.weight,
    "convt.bias": lambda m: m.convt.bias,
    "linear.weight": lambda m: m.linear.weight,
    "linear.bias": lambda m: m.linear.bias,
    "embed.weight": lambda m: m.embed.weight,
    "mha.q_proj_weight": lambda m: m.mha.query_proj.weight,
    "mha.k_proj_weight": lambda m: m.mha.key_proj.weight,
    "mha.v_proj_weight": lambda m: m.mha.value_proj.weight,
    "mha.out_proj.weight": lambda m: m.mha.output_proj.weight,
    "norm.weight": lambda m: m.norm.weight,
    "norm.bias": lambda m: m.norm.bias,
}


def torch_to_eqx(name, w):
  """A PyTorch weight in the Equinox layer's layout."""
  w = np.asarray(w)
  if name == "convt.weight":  # (in, out, kh, kw) -> (out, in, kh, kw) flipped
    return np.flip(w, (2, 3)).swapaxes(0, 1)
  if name.startswith("conv") and name.endswith(".bias"):
    return w.reshape(w.shape + (1,) * (3 if name.startswith("conv3") else
                                       2 if name.startswith("conv2") or
                                       name.startswith("convt") else 1))
  return w


def eqx_to_torch(name, w):
  w = np.asarray(w)
  if name == "convt.weight":
    return np.flip(w.swapaxes(0, 1), (2, 3))
  if name.endswith(".bias") and name.startswith("conv"):
    return w.reshape(-1)
  return w


@functools.lru_cache(maxsize=None)
def golden():
  data = np.load(GOLDEN)
  return {k: data[k] for k in data.files if k != "meta"}, json.loads(
      str(data["meta"]))


@functools.lru_cache(maxsize=None)
def net_params():
  return eqx.filter(Net(jax.random.key(0)), eqx.is_array)


def params_from(values: dict, dtype):
  """The Equinox params holding ``values`` (PyTorch name -> PyTorch array)."""
  leaves = [jnp.asarray(torch_to_eqx(name, values[name]), dtype)
            for name in _WHERE]
  return eqx.tree_at(lambda m: [where(m) for where in _WHERE.values()],
                     net_params(), leaves)


def make_opt(kind, kwargs, lr, **extra):
  kw = dict(kwargs)
  if kind == "rms":
    return ladam_jax.lrmsprop(lr, **kw, **extra)
  wd = kw.pop("weight_decay", 0.0)
  if wd:
    return ladam_jax.ladamw(lr, weight_decay=wd, **kw, **extra)
  return ladam_jax.ladam(lr, **kw, **extra)


def replay(config, **extra):
  data, meta = golden()
  kind, kwargs = meta["configs"][config]
  opt = make_opt(kind, kwargs, meta["lr"][kind], **extra)
  params = params_from({n: data[f"params0/{n}"] for n in meta["names"]},
                       jnp.float64)
  state = opt.init(params)

  @eqx.filter_jit
  def step(params, state, grads):
    updates, state = opt.update(grads, state, params)
    return eqx.apply_updates(params, updates), state

  for t in range(meta["steps"]):
    grads = params_from({n: data[f"grads/{n}"][t] for n in meta["names"]},
                        jnp.float64)
    params, state = step(params, state, grads)
  worst = 0.0
  for name in meta["names"]:
    ours = eqx_to_torch(name, _WHERE[name](params))
    ref = data[f"{config}/{name}"]
    assert ours.shape == ref.shape, name
    worst = max(worst, float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref))))
  return worst


@pytest.mark.parametrize("config", ["ladamw_variance_9", "ladam_update_5",
                                    "lrmsprop"])
def test_float64_trajectory_matches_reference(config):
  """Every Equinox layer smoothed on the reference's field: 30 steps, 1e-9."""
  with enable_x64(True):
    assert replay(config) <= 1e-9


def test_flax_layout_would_be_wrong_for_equinox():
  """The default matters: the Flax field of an Equinox conv weight is not
  the reference's (so the test above can fail)."""
  with enable_x64(True):
    assert replay("ladamw_variance_9", layout="flax") > 1e-4


def test_auto_layout_names_the_reference_fields():
  lay = ladam_jax.auto_layout(net_params())
  assert lay.conv2.weight == "torch"
  assert lay.conv2.bias == ladam_jax.LaplacianLayout(rows=(0, 1, 2))
  assert lay.conv1.bias == ladam_jax.LaplacianLayout(rows=(0, 1))
  assert lay.convt.weight == ladam_jax.LaplacianLayout(
      rows=(1,), cols=(0, 2, 3), flip=(2, 3))
  assert lay.mha.key_proj.weight == "torch"
  assert lay.embed.weight == "torch"
  # Outside Equinox, 'auto' is 'flax'.
  assert ladam_jax.auto_layout({"k": jnp.zeros((3, 3, 4, 8))}) == {"k": "flax"}


def test_grouped_conv_transpose_is_refused_with_a_clear_error():
  ct = eqx.nn.ConvTranspose2d(4, 4, 3, groups=2, key=jax.random.key(0))
  params = eqx.filter(ct, eqx.is_array)
  opt = ladam_jax.ladam(1e-3, c2=1e-3)
  with pytest.raises(ValueError, match="groups=2.*layout"):
    opt.init(params)
  # An explicit layout for that leaf works.
  lay = jax.tree.map(lambda _: "torch", params)
  ladam_jax.ladam(1e-3, c2=1e-3, layout=lay).init(params)


class CNN(eqx.Module):
  """A small Equinox CNN as a user writes it (activation functions kept)."""
  convs: list
  mlp: eqx.nn.MLP

  def __init__(self, key):
    k1, k2, k3 = jax.random.split(key, 3)
    self.convs = [eqx.nn.Conv2d(1, 8, 3, padding=1, key=k1),
                  eqx.nn.Conv2d(8, 8, 3, padding=1, key=k2)]
    self.mlp = eqx.nn.MLP(8 * 6 * 6, 3, 32, 1, activation=jax.nn.gelu, key=k3)

  def __call__(self, x):
    for conv in self.convs:
      x = jax.nn.relu(conv(x))
    return self.mlp(x.reshape(-1))


@functools.lru_cache(maxsize=None)
def _cnn_setup():
  model = CNN(jax.random.key(1))
  params = eqx.filter(model, eqx.is_array)
  x = jax.random.normal(jax.random.key(2), (4, 1, 6, 6))
  y = jax.random.normal(jax.random.key(3), (4, 3))

  def loss(params):
    m = eqx.combine(params, eqx.filter(model, eqx.is_array, inverse=True))
    return jnp.mean((jax.vmap(m)(x) - y) ** 2)

  grads = jax.jit(jax.grad(loss))(params)
  return model, params, grads


def _update(opt, params, grads):
  state = opt.init(params)
  updates, _ = opt.update(grads, state, params)
  return updates


def _close(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6,
                               atol=1e-9)


@pytest.mark.slow
def test_every_per_leaf_c2_form_agrees():
  """A value, a pytree mapped over the filtered model (None included), one
  mapped over the whole model, a params function, auto_c2 and c2_by_path all
  give the same update; none of them calls the model."""
  model, params, grads = _cnn_setup()
  c2_of = lambda x: 1e-3 if jnp.ndim(x) == 2 else 0.0
  by_tree = jax.tree.map(c2_of, params)
  assert isinstance(by_tree, CNN) and by_tree.mlp.activation is None
  whole = jax.tree.map(lambda x: c2_of(x) if eqx.is_array(x) else 0.1, model)
  forms = {
      "pytree": by_tree,
      "whole model": whole,
      "function": ladam_jax.per_leaf(lambda p: jax.tree.map(c2_of, p)),
      "auto_c2": ladam_jax.auto_c2({"linear": 1e-3}),
      "c2_by_path": ladam_jax.c2_by_path(
          {r"^mlp/layers/\d+/weight$": 1e-3}, default=0.0),
  }
  want = _update(ladam_jax.ladam(1e-2, c2=by_tree), params, grads)
  for name, c2 in forms.items():
    got = _update(ladam_jax.ladam(1e-2, c2=c2), params, grads)
    _close(got, want), name
  # Not a no-op: c2 = 0 everywhere differs.
  plain = _update(ladam_jax.ladam(1e-2, c2=0.0), params, grads)
  diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in
             zip(jax.tree.leaves(plain), jax.tree.leaves(want)))
  assert diff > 1e-6


@pytest.mark.slow
def test_layout_sigma_and_mask_as_equinox_pytrees():
  model, params, grads = _cnn_setup()
  # layout mapped over the filtered model: the Nones are not layouts.
  lay = jax.tree.map(lambda x: "torch", params)
  ladam_jax.ladam(1e-2, c2=1e-3, layout=lay).init(params)
  auto = ladam_jax.auto_layout(params)
  _close(_update(ladam_jax.ladam(1e-2, c2=1e-3, layout=auto), params, grads),
         _update(ladam_jax.ladam(1e-2, c2=1e-3), params, grads))
  # sigma per leaf for Laplacian smoothing.
  sigma = jax.tree.map(lambda x: 0.5 if x.ndim == 4 else 0.0, params)
  u = _update(ladam_jax.lssgd(1e-2, sigma=sigma), params, grads)
  assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(u))
  # A weight-decay mask as an Equinox tree of bools, and as a function.
  mask = jax.tree.map(lambda x: x.ndim > 1, params)
  a = _update(ladam_jax.ladamw(1e-2, c2=1e-3, weight_decay=0.5, mask=mask),
              params, grads)
  b = _update(ladam_jax.ladamw(1e-2, c2=1e-3, weight_decay=0.5,
                               mask=lambda p: jax.tree.map(
                                   lambda x: x.ndim > 1, p)),
              params, grads)
  c = _update(ladam_jax.ladamw(1e-2, c2=1e-3, weight_decay=0.5), params,
              grads)
  _close(a, b)
  # Biases are not decayed under the mask, so they differ from no mask.
  assert not np.allclose(np.asarray(a.mlp.layers[0].bias),
                         np.asarray(c.mlp.layers[0].bias))
  _close(a.mlp.layers[0].weight, c.mlp.layers[0].weight)


def test_spec_errors_name_the_argument_and_forms():
  _, params, _ = _cnn_setup()
  with pytest.raises(ValueError, match="`c2`.*not a prefix"):
    ladam_jax.ladam(1e-2, c2={"convs": 1e-3}).init(params)
  hole = jax.tree.map(lambda x: 1e-3, params)
  hole = eqx.tree_at(lambda p: p.mlp.layers[0].weight, hole, None,
                     is_leaf=lambda x: x is None)
  with pytest.raises(ValueError, match=r"`c2` is None at .*mlp"):
    ladam_jax.ladam(1e-2, c2=hole).init(params)
  with pytest.raises(ValueError, match="`layout`.*bogus"):
    ladam_jax.ladam(1e-2, c2=1e-3,
                    layout=jax.tree.map(lambda x: "bogus", params)).init(params)
  # A params function's own exception surfaces as itself.
  with pytest.raises(AttributeError, match="no_such_field"):
    ladam_jax.ladam(1e-2, c2=ladam_jax.per_leaf(
        lambda p: p.no_such_field)).init(params)


def test_a_module_spec_is_never_called():
  """An Equinox module holding c2 values is callable: it is read as a
  pytree, never called (calling Net raises)."""
  net = net_params()
  c2 = jax.tree.map(lambda x: 1e-3, net)
  assert callable(c2)
  opt = ladam_jax.ladam(1e-3, c2=c2)
  state = opt.init(net)
  jax.jit(opt.update)(jax.tree.map(jnp.ones_like, net), state, net)


def test_classes_follow_equinox_layer_types():
  net = net_params()
  cls = ladam_jax.classify_params(net)
  assert cls.conv2.weight == "conv" and cls.conv2.bias == "bias"
  assert cls.convt.weight == "conv" and cls.convt.bias == "bias"
  assert cls.linear.weight == "linear" and cls.linear.bias == "bias"
  assert cls.embed.weight == "embedding"
  assert cls.mha.query_proj.weight == "attention"
  assert cls.norm.weight == "norm" and cls.norm.bias == "norm"
  c2 = ladam_jax.auto_c2().fn(net)
  assert c2.linear.weight == 1e-5 and c2.conv2.weight == 0.0
  report = ladam_jax.analyze_params(net)
  assert report.architecture == "transformer"
  assert report.layer_counts["attention"] == 4
  # Paths read like the other libraries': keys joined by '/'.
  paths = [ladam_jax._c2.path_to_str(p) for p, _ in
           jax.tree_util.tree_flatten_with_path(
               eqx.filter(CNN(jax.random.key(0)), eqx.is_array))[0]]
  assert "convs/0/weight" in paths and "mlp/layers/1/bias" in paths


def test_smoothing_stats_on_an_equinox_state():
  _, params, grads = _cnn_setup()
  c2 = ladam_jax.auto_c2({"linear": 1e-2, "conv": 1e-2})
  opt = optax.chain(optax.clip_by_global_norm(1.0), ladam_jax.ladam(1e-2,
                                                                    c2=c2))
  state = opt.init(params)
  _, state = jax.jit(opt.update)(grads, state, params)
  stats = jax.jit(lambda s: ladam_jax.smoothing_stats(s, c2=c2))(state)
  conv = stats.convs[1].weight
  assert float(conv.relative_change) > 0
  assert float(stats.convs[1].bias.relative_change) == 0  # c2 = 0 on biases
  ratio = jax.jit(lambda s: ladam_jax.smoothing_step_ratio(s, c2=c2))(state)
  assert ratio.convs[1].weight.shape == params.convs[1].weight.shape


@settings(max_examples=40, deadline=None)
@given(st.recursive(
    st.sampled_from(["leaf", "none"]),
    lambda kids: st.one_of(st.lists(kids, min_size=1, max_size=3),
                           st.dictionaries(st.sampled_from("abc"), kids,
                                           min_size=1, max_size=3)),
    max_leaves=8), st.data())
def test_per_leaf_prefix_rule_property(shape, data):
  """For any tree with None holes and any prefix of it, every leaf gets the
  value of the prefix node above it; values over holes are not used."""
  counter = iter(range(10**6))

  def build(node):
    if node == "leaf":
      return jnp.full((), next(counter), jnp.float32)
    if node == "none":
      return None
    if isinstance(node, list):
      return [build(k) for k in node]
    return {k: build(v) for k, v in node.items()}

  tree = build(shape)
  n = len(jax.tree.leaves(tree))

  def prefix(node, depth):
    """A random prefix of ``node`` with an int at each cut."""
    cut = node is None or not isinstance(node, (list, dict)) or data.draw(
        st.booleans())
    if cut:
      return data.draw(st.integers(0, 99))
    if isinstance(node, list):
      return [prefix(k, depth + 1) for k in node]
    return {k: prefix(v, depth + 1) for k, v in node.items()}

  spec = prefix(tree, 0)
  got = _tree_specs.values_per_leaf(spec, tree, is_spec_leaf=lambda x: isinstance(
      x, int), name="spec")
  assert len(got) == n

  def expected(spec, node):
    if isinstance(spec, int):
      return [spec] * len(jax.tree.leaves(node))
    if isinstance(spec, list):
      return [v for s, k in zip(spec, node) for v in expected(s, k)]
    return [v for key in sorted(spec) for v in expected(spec[key], node[key])]

  assert got == expected(spec, tree)
