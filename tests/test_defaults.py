"""Defaults a user can trust.

- c2 -> 0 tends to ``optax.adam`` (floor 0 by default; ``variance_floor='eps'``
  is the package's clamp, kept as an option);
- one state structure, however a hyperparameter is spelled;
- the form of c2 is stated (a plain callable is a schedule, a params function
  is marked with ``ladam_jax.per_leaf``), and a user's exception surfaces;
- ``jax.pmap`` is quiet; LS smoothing at sigma = 0 is the identity;
- real annotations with ``Literal`` string options.
"""

import inspect
import os
import subprocess
import sys
import typing

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings, strategies as st

import ladam_jax

SHAPES = ((16, 16), (8, 24), (64,))
# Per dtype: the gradients' scales (log10) and the tolerance against Adam.
# float32 reaches v̂ < eps (|g| ~ 1e-7 .. 1e-4 gives v̂ ~ 1e-14 .. 1e-8);
# float16 cannot hold g² below 6e-8, so its scales start at 1e-3.
DTYPES = {"float32": ((-7.0, 1.0), 1e-4), "bfloat16": ((-7.0, 1.0), 2e-2),
          "float16": ((-3.0, 1.0), 5e-3)}


def _run(opt, grads_seq, params):
  state = opt.init(params)
  for g in grads_seq:
    u, state = opt.update(g, state, params)
  return u


def _grads(seed, shape, dtype, scale, steps):
  """Gradients of magnitude in [scale, 10 scale], random signs."""
  keys = jax.random.split(jax.random.key(seed), 2 * steps)
  out = []
  for t in range(steps):
    mag = jax.random.uniform(keys[2 * t], shape, minval=1.0, maxval=10.0)
    sign = jnp.where(jax.random.bernoulli(keys[2 * t + 1], 0.5, shape),
                     1.0, -1.0)
    out.append({"w": (sign * mag * scale).astype(dtype)})
  return out


@settings(max_examples=8, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**16), shape=st.sampled_from(SHAPES),
       dtype=st.sampled_from(sorted(DTYPES)),
       log_scale=st.floats(0.0, 1.0),
       log_c2=st.one_of(st.just(None), st.floats(-14.0, -9.0)),
       steps=st.integers(1, 3))
def test_c2_to_zero_tends_to_adam(seed, shape, dtype, log_scale, log_c2,
                                  steps):
  (lo, hi), rtol = DTYPES[dtype]
  scale = 10.0 ** (lo + (hi - lo) * log_scale)
  c2 = 0.0 if log_c2 is None else 10.0 ** log_c2
  params = {"w": jnp.zeros(shape, dtype)}
  grads = _grads(seed, shape, dtype, scale, steps)
  ours = _run(ladam_jax.ladam(1e-3, c2=c2, min_spatial_size=0), grads,
              params)["w"].astype(jnp.float32)
  adam = _run(optax.adam(1e-3), grads, params)["w"].astype(jnp.float32)
  # Neighbouring v̂ differ by at most 100x here, so c2·L(v̂) moves v̂ by at
  # most ~1e3·c2 relative: the difference is Adam's own rounding.
  np.testing.assert_allclose(ours, adam, rtol=rtol + 1e3 * c2, atol=0)


def test_the_package_clamp_is_an_option_and_not_continuous_at_zero():
  params = {"w": jnp.zeros((16, 16))}
  grads = _grads(0, (16, 16), jnp.float32, 1e-6, 5)  # v̂ <= 1e-10 < eps
  adam = _run(optax.adam(1e-3), grads, params)["w"]
  floor0 = _run(ladam_jax.ladam(1e-3, c2=1e-12), grads, params)["w"]
  clamp = _run(ladam_jax.ladam(1e-3, c2=1e-12, variance_floor="eps"), grads,
               params)["w"]
  np.testing.assert_allclose(floor0, adam, rtol=1e-4)
  # max(v̂, eps) with v̂ ~ 1e-10: the step shrinks by an order of magnitude.
  assert float(jnp.max(jnp.abs(clamp) / jnp.abs(adam))) < 0.2
  # c2 = 0 is Adam with either floor (the floor applies where c2 > 0).
  np.testing.assert_allclose(
      _run(ladam_jax.ladam(1e-3, c2=0.0, variance_floor="eps"), grads,
           params)["w"], adam, rtol=1e-4)


@pytest.mark.parametrize("factory", [ladam_jax.ladam, ladam_jax.ladamw,
                                     ladam_jax.laprop, ladam_jax.vradam])
def test_variance_floor_values(factory):
  factory(1e-3, variance_floor="eps")
  factory(1e-3, variance_floor=1e-12)
  with pytest.raises(ValueError, match="variance_floor.*'eps'"):
    factory(1e-3, variance_floor="epsilon")
  with pytest.raises(ValueError, match="None is no longer accepted.*'eps'"):
    factory(1e-3, variance_floor=None)
  with pytest.raises(ValueError, match="variance_floor"):
    factory(1e-3, variance_floor=-1.0)


# ---------------------------------------------------------------------------
# One state structure.

ALIASES = {
    "ladam": (ladam_jax.ladam, {}),
    "ladamw": (ladam_jax.ladamw, {}),
    "ladam-wave": (ladam_jax.ladam, {"mode": "wave_variance"}),
    "lrmsprop": (ladam_jax.lrmsprop, {}),
    "ladagrad": (ladam_jax.ladagrad, {}),
    "laprop": (ladam_jax.laprop, {}),
    "vradam": (ladam_jax.vradam, {}),
    "lsadam": (ladam_jax.lsadam, {}),
    "lssgd": (ladam_jax.lssgd, {}),
}
# Arguments that are not numeric hyperparameters.
STATIC = {"mode", "stencil", "layout", "mu_dtype", "nu_dtype",
          "velocity", "mask", "allow_unstable_c2", "partition_specs",
          "method", "target", "flatten", "min_spatial_size", "nesterov"}
# (A learning-rate schedule adds a step count to the state in Optax's own
# optimizers too, optax.adam included: scale_by_learning_rate's business.)
SCHEDULABLE = {"c2", "sigma"}
PARAMS = {"w": jnp.ones((16, 16)), "b": jnp.ones(16)}


def _numeric_args(factory):
  out = []
  for name, p in inspect.signature(factory).parameters.items():
    if name in STATIC:
      continue
    if p.default is None or isinstance(p.default, (int, float)):
      out.append(name)
  return out


def _spellings(factory, kwargs, name, value):
  """The same value of ``name`` spelled as a Python number, an array, a
  schedule (where one is accepted) and through inject_hyperparams: the
  structure of each optimizer state."""
  base = dict(kwargs)
  if name != "learning_rate":
    base.setdefault("learning_rate", 1e-2)
  make = lambda v: factory(**dict(base, **{name: v}))  # noqa: E731
  out = {"python": jax.tree.structure(make(value).init(PARAMS)),
         "array": jax.tree.structure(make(jnp.asarray(value)).init(PARAMS))}
  if name in SCHEDULABLE:
    out["schedule"] = jax.tree.structure(
        make(optax.constant_schedule(value)).init(PARAMS))
  static = tuple(k for k in base if k in STATIC)
  injected = optax.inject_hyperparams(factory, static_args=static)(
      **dict(base, **{name: value}))
  out["inject_hyperparams"] = jax.tree.structure(
      injected.init(PARAMS).inner_state)
  return out


@pytest.mark.parametrize("alias", ALIASES)
def test_one_state_structure_whatever_the_spelling(alias):
  factory, kwargs = ALIASES[alias]
  names = _numeric_args(factory)
  assert "learning_rate" in names
  reference = jax.tree.structure(factory(1e-2, **kwargs).init(PARAMS))
  for name in names:
    default = inspect.signature(factory).parameters[name].default
    values = [0.0, 0.05] if default is None else [0.0, default]
    for value in values:
      if name == "eps" and value == 0.0 and alias in ("ladagrad",):
        value = 1e-10
      structures = _spellings(factory, kwargs, name, value)
      assert len(set(structures.values())) == 1, (name, value, structures)
      if default is not None:  # a number never adds or drops a stage
        assert structures["python"] == reference, (name, value)


def test_a_stage_is_left_out_only_by_none():
  params = {"w": jnp.ones((16, 16))}
  zero = ladam_jax.lrmsprop(1e-2, momentum=0.0).init(params)
  none = ladam_jax.lrmsprop(1e-2).init(params)
  assert jax.tree.structure(zero) != jax.tree.structure(none)
  # As optax.rmsprop: momentum None has no trace, any number has one.
  assert (len(jax.tree.leaves(zero)) == len(jax.tree.leaves(none)) + 1
          == len(jax.tree.leaves(
              ladam_jax.lrmsprop(1e-2, momentum=jnp.asarray(0.9)).init(
                  params))))


# ---------------------------------------------------------------------------
# The form of c2 is stated.

def test_a_plain_callable_is_a_schedule_and_per_leaf_a_params_function():
  params = {"w": jnp.zeros((16, 16)), "b": jnp.zeros(16)}
  grads = {"w": jnp.ones((16, 16)).at[3, 3].set(5.0), "b": jnp.ones(16)}
  sched = lambda count: 0.05 * (count + 1) / (count + 1)  # noqa: E731
  by_schedule = _run(ladam_jax.ladam(1e-3, c2=sched), [grads], params)
  by_number = _run(ladam_jax.ladam(1e-3, c2=0.05), [grads], params)
  np.testing.assert_allclose(by_schedule["w"], by_number["w"], rtol=1e-6)
  fn = ladam_jax.per_leaf(lambda p: {"w": 0.05, "b": 0.0})
  by_fn = _run(ladam_jax.ladam(1e-3, c2=fn), [grads], params)
  np.testing.assert_allclose(by_fn["w"], by_number["w"], rtol=1e-6)
  assert ladam_jax.per_leaf(fn) == fn and not callable(fn)
  with pytest.raises(TypeError, match="per_leaf"):
    ladam_jax.per_leaf({"w": 0.1})


def test_a_users_exception_surfaces_as_itself():
  params = {"w": jnp.zeros((16, 16))}

  class Mine(Exception):
    pass

  def params_fn(p):
    raise Mine("inside the params function")

  def schedule(count):
    raise Mine("inside the schedule")

  with pytest.raises(Mine, match="inside the params function") as e:
    ladam_jax.ladam(1e-3, c2=ladam_jax.per_leaf(params_fn)).init(params)
  assert e.traceback[-1].name == "params_fn"
  with pytest.raises(Mine, match="inside the schedule") as e:
    ladam_jax.ladam(1e-3, c2=schedule).init(params)
  assert e.traceback[-1].name == "schedule"
  if sys.version_info >= (3, 11):
    assert "ladam_jax.per_leaf" in "".join(e.value.__notes__)
  # A params function given unmarked returns a pytree from count: refused,
  # naming per_leaf.
  with pytest.raises(ValueError, match="per_leaf"):
    ladam_jax.ladam(1e-3, c2=lambda p: {"w": 0.1}).init(params)


def test_per_leaf_survives_inject_hyperparams_without_static_args():
  params = {"Dense_0": {"kernel": jnp.ones((16, 16)), "bias": jnp.ones(16)}}
  opt = optax.inject_hyperparams(ladam_jax.ladam)(1e-3,
                                                  c2=ladam_jax.auto_c2())
  state = opt.init(params)
  u, _ = jax.jit(opt.update)(params, state, params)
  plain = ladam_jax.ladam(1e-3, c2=ladam_jax.auto_c2())
  want, _ = plain.update(params, plain.init(params), params)
  np.testing.assert_allclose(u["Dense_0"]["kernel"],
                             want["Dense_0"]["kernel"], rtol=1e-5)


# ---------------------------------------------------------------------------
# Smoothing at sigma = 0, annotations.

@pytest.mark.parametrize("spell", ["number", "array", "inject"])
def test_smoothing_at_sigma_zero_is_the_gradient_bit_for_bit(spell):
  params = {"w": jnp.zeros((16, 16))}
  g = jax.random.normal(jax.random.key(0), (16, 16)).at[:8].set(0.0)
  grads = {"w": g}
  if spell == "inject":
    opt = optax.inject_hyperparams(ladam_jax.lsadam)(0.1, sigma=0.0)
    u = _run(opt, [grads], params)["w"]
    assert float(jnp.max(jnp.abs(u[:8]))) == 0.0  # no step where g = 0
    return
  sigma = 0.0 if spell == "number" else jnp.asarray(0.0)
  tx = ladam_jax.scale_by_laplacian_smoothing(sigma)
  u, _ = jax.jit(tx.update)(grads, tx.init(params))
  np.testing.assert_array_equal(u["w"], g)


@pytest.mark.parametrize("factory", [
    ladam_jax.ladam, ladam_jax.ladamw, ladam_jax.lrmsprop, ladam_jax.ladagrad,
    ladam_jax.laprop, ladam_jax.vradam, ladam_jax.lsadam, ladam_jax.lssgd,
    ladam_jax.scale_by_laplacian_adam, ladam_jax.smoothing_stats])
def test_annotations_are_real_and_string_options_are_literals(factory):
  params = inspect.signature(factory).parameters
  for name, p in params.items():
    assert not isinstance(p.annotation, str), (factory.__name__, name)
  if "learning_rate" in params:
    assert params["learning_rate"].annotation is optax.ScalarOrSchedule
  for name in ("mode", "stencil"):
    if name in params:
      assert typing.get_origin(params[name].annotation) is typing.Literal
      assert params[name].default in typing.get_args(params[name].annotation)


# ---------------------------------------------------------------------------
# pmap is quiet.

_PMAP = r"""
import warnings
import jax, jax.numpy as jnp, optax, ladam_jax
from jax.sharding import PartitionSpec as P
assert jax.device_count() == 2
warnings.simplefilter("error")
params = {"w": jnp.ones((16, 16)), "b": jnp.ones(16)}
rep = lambda t: jax.tree.map(lambda x: jnp.stack([x, x]), t)
for opt in (ladam_jax.ladam(1e-3, c2=1e-2), ladam_jax.lsadam(1e-3)):
  state = opt.init(params)
  def step(p, s, g):
    g = jax.lax.pmean(g, "d")
    u, s = opt.update(g, s, p)
    return optax.apply_updates(p, u), s
  new, _ = jax.pmap(step, axis_name="d")(rep(params), rep(state), rep(params))
  single, _ = opt.update(params, state, params)
  assert jnp.allclose(new["w"][0], optax.apply_updates(params, single)["w"])
print("pmap quiet")
mesh = jax.make_mesh((2,), ("d",))
opt = ladam_jax.ladam(1e-3, c2=1e-2)
state = opt.init(params)
def body(p, s, g):
  return opt.update(g, s, p)[0]
jax.jit(jax.shard_map(body, mesh=mesh, in_specs=P(), out_specs=P()))(
    params, state, params)
print("check_vma=True, replicated: quiet")
try:
  jax.jit(jax.shard_map(body, mesh=mesh, in_specs=P(), out_specs=P(),
                        check_vma=False))(params, state, params)
except UserWarning as e:
  assert "check_vma=False" in str(e) and "pmap" not in str(e), e
  print("check_vma=False: warns")
else:
  raise AssertionError("no warning under check_vma=False")
"""


@pytest.mark.slow  # a process of its own, with 2 devices
def test_pmap_and_replicated_shard_map_print_no_warning():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-c", _PMAP], env=env,
                       capture_output=True, text=True, timeout=240)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.split("\n")[:3] == [
      "pmap quiet", "check_vma=True, replicated: quiet",
      "check_vma=False: warns"], out.stdout
