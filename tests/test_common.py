"""One battery over every optimizer and mode, as Optax's contrib common tests.

Each optimizer (alias) is built with a c2 that couples the leaves that can be
coupled (``min_spatial_size=0``), so the Laplacian paths run, not only Adam's:
extra ``update`` kwargs, no recompilation, convergence inside ``lax.scan``,
``optax.tree.map_params``, ``inject_hyperparams``, dtype preservation,
``MultiSteps``, dtype stability through ``lax.cond`` and schedules.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ladam_jax
from _helpers import enable_x64

COUPLED = dict(c2=1e-2, min_spatial_size=0)

# (name, factory, kwargs, learning rate that converges on the targets)
OPTIMIZERS = [
    ("ladam", ladam_jax.ladam, COUPLED, 0.1),
    ("ladam-update_lap", ladam_jax.ladam, dict(COUPLED, mode="update_lap"),
     0.1),
    # Diffusing the weights moves the fixed point off the minimiser by about
    # c2 · L(p) per step: a smaller c2, so that the targets are still met.
    ("ladam-weight_lap", ladam_jax.ladam,
     dict(COUPLED, mode="weight_lap", c2=1e-4), 0.1),
    ("ladam-wave", ladam_jax.ladam, dict(COUPLED, mode="wave_variance"),
     0.05),
    ("ladamw", ladam_jax.ladamw, dict(COUPLED, weight_decay=1e-4), 0.1),
    ("lrmsprop", ladam_jax.lrmsprop, COUPLED, 0.01),
    ("lrmsprop-momentum", ladam_jax.lrmsprop, dict(COUPLED, momentum=0.9),
     0.003),
    ("ladagrad", ladam_jax.ladagrad, COUPLED, 1.0),
    ("laprop", ladam_jax.laprop, COUPLED, 0.1),
    ("vradam", ladam_jax.vradam, COUPLED, 0.1),
    # Osher et al.'s implicit smoothing of the gradient, before Adam.
    ("lsadam", ladam_jax.lsadam, dict(sigma=1.0, min_spatial_size=0), 0.1),
]
IDS = [o[0] for o in OPTIMIZERS]


def _make(factory, kwargs, lr):
  return factory(lr, **kwargs)


def parabola(dtype):
  p0 = jnp.array([-1.0, 10.0, 1.0], dtype)
  target = jnp.array([1.0, -1.0, 1.0], dtype)
  return p0, target, lambda p: jnp.sum((p - target) ** 2)


def rosenbrock(dtype):
  p0, target = jnp.array([0.0, 0.0], dtype), jnp.array([1.0, 1.0], dtype)
  return p0, target, lambda p: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


def matrix_parabola(dtype):
  p0 = jnp.zeros((2, 2), dtype)
  target = jnp.array([[3.0, -2.0], [1.0, 4.0]], dtype)
  return p0, target, lambda p: jnp.sum((p - target) ** 2)


def field_parabola(dtype):
  """A 6 x 5 kernel: big enough for the stencil, so L(v) is not zero."""
  p0 = jnp.zeros((6, 5), dtype)
  target = jnp.asarray(np.random.default_rng(0).uniform(-2, 2, (6, 5)), dtype)
  return p0, target, lambda p: jnp.sum((p - target) ** 2)


def mixed_tree(dtype):
  p0 = {"b": jnp.zeros(3, dtype), "w": jnp.zeros((4, 4), dtype)}
  target = {"b": jnp.array([1.0, -1.0, 2.0], dtype),
            "w": jnp.arange(16.0, dtype=dtype).reshape(4, 4) / 8 - 1}
  return p0, target, lambda p: sum(
      jnp.sum((p[k] - target[k]) ** 2) for k in p)


@pytest.mark.parametrize("name,factory,kwargs,lr", OPTIMIZERS, ids=IDS)
def test_extra_update_args_and_no_recompilation(name, factory, kwargs, lr):
  del name
  opt = _make(factory, kwargs, lr)
  params, _, loss = field_parabola(jnp.float32)

  @jax.jit
  def step(params, state):
    grads = jax.grad(loss)(params)
    updates, state = opt.update(grads, state, params,
                                unexpected_extra_arg_of_some_wrapper=1)
    return optax.apply_updates(params, updates), state

  state = opt.init(params)
  params, state = step(params, state)
  params, state = step(params, state)
  # The state that update returns has the init state's shapes, dtypes and
  # weak types, so the second call hit the cache.
  assert step._cache_size() == 1  # pylint: disable=protected-access


@pytest.mark.parametrize("target", [parabola, rosenbrock, matrix_parabola,
                                    field_parabola, mixed_tree])
@pytest.mark.parametrize("name,factory,kwargs,lr", OPTIMIZERS, ids=IDS)
def test_converges_in_scan(name, factory, kwargs, lr, target):
  if target is rosenbrock and name in ("ladagrad", "lrmsprop-momentum",
                                      "ladam-wave"):
    pytest.skip("does not reach Rosenbrock's minimum in 20k steps at a "
                "learning rate stable on the other targets")
  opt = _make(factory, kwargs, lr)
  params, expected, loss = target(jnp.float32)
  state = opt.init(params)
  state = optax.tree.map_params(opt, lambda v: v, state)  # a no-op map

  def step(carry, _):
    params, state = carry
    updates, state = opt.update(jax.grad(loss)(params), state, params)
    return (optax.apply_updates(params, updates), state), None

  steps = 20_000 if target is rosenbrock else 3_000
  (params, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, length=steps))(
      (params, state))
  del name
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=3e-2, atol=3e-2)


def _static_args(factory):
  """Arguments inject_hyperparams cannot take (strings, dtypes, layouts)."""
  names = ("mode", "stencil", "layout", "mu_dtype", "nu_dtype",
           "velocity", "mask", "allow_unstable_c2", "min_spatial_size",
           "variance_floor")
  params = inspect.signature(factory).parameters
  return tuple(n for n in names if n in params)


@pytest.mark.parametrize("name,factory,kwargs,lr", OPTIMIZERS, ids=IDS)
def test_inject_hyperparams_gives_the_same_updates_and_state(
    name, factory, kwargs, lr):
  del name
  opt = _make(factory, kwargs, lr)
  injected = optax.inject_hyperparams(
      factory, static_args=_static_args(factory))(lr, **kwargs)
  params = [-jnp.ones((6, 5)), jnp.ones((2, 5, 2)), jnp.ones(7)]
  grads = [jnp.ones((6, 5)).at[2, 3].set(4.0), -jnp.ones((2, 5, 2)),
           jnp.linspace(-1, 1, 7)]
  state, state_i = jax.jit(opt.init)(params), jax.jit(injected.init)(params)
  for _ in range(3):
    u, state = jax.jit(opt.update)(grads, state, params)
    u_i, state_i = jax.jit(injected.update)(grads, state_i, params)
    # Injected, b2 = 0.999 is a float32 array and 1 - b2 is off by 1.3e-5
    # relative (a Python float's 1 - b2 is exact): so 5e-5, not 1e-5.
    for a, b in zip(jax.tree.leaves(u_i), jax.tree.leaves(u)):
      np.testing.assert_allclose(a, b, rtol=5e-5, atol=1e-7)
    for a, b in zip(jax.tree.leaves(state_i.inner_state),
                    jax.tree.leaves(state)):
      np.testing.assert_allclose(a, b, rtol=5e-5, atol=1e-7)
  # One state structure, as Optax's own battery (chex) asserts.
  assert jax.tree.structure(state_i.inner_state) == jax.tree.structure(state)


# One optimizer per distinct state layout (the modes share Adam's state,
# except the wave's).
STATE_LAYOUTS = [o for o in OPTIMIZERS if o[0] in (
    "ladam", "ladam-wave", "lrmsprop-momentum", "ladagrad", "laprop",
    "vradam")]


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
@pytest.mark.parametrize("name,factory,kwargs,lr", STATE_LAYOUTS,
                         ids=[o[0] for o in STATE_LAYOUTS])
def test_updates_keep_dtype(name, factory, kwargs, lr, dtype):
  del name
  params = {"w": jnp.ones((6, 5), dtype), "b": jnp.ones(5, dtype)}
  grads = jax.tree.map(lambda p: 2 * p, params)
  opt = _make(factory, kwargs, lr)
  updates, _ = jax.jit(opt.update)(grads, jax.jit(opt.init)(params), params)
  assert all(u.dtype == jnp.dtype(dtype) for u in jax.tree.leaves(updates))


@pytest.mark.parametrize("name,factory,kwargs,lr", STATE_LAYOUTS,
                         ids=[o[0] for o in STATE_LAYOUTS])
def test_multisteps_first_update_is_zero(name, factory, kwargs, lr):
  """optax.MultiSteps with bf16 params: needs updates of the params' dtype
  (its accumulation is a lax.cond over them)."""
  del name
  params = {"w": jnp.ones((6, 5), jnp.bfloat16),
            "b": jnp.ones(5, jnp.bfloat16)}
  grads = jax.tree.map(lambda p: 2 * p, params)
  multi = optax.MultiSteps(_make(factory, kwargs, lr), every_k_schedule=4)
  updates, _ = jax.jit(multi.update)(grads, jax.jit(multi.init)(params),
                                     params)
  for u in jax.tree.leaves(updates):
    np.testing.assert_array_equal(u, jnp.zeros_like(u))


# float32 runs through every other test here.
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
@pytest.mark.parametrize("name,factory,kwargs,lr", STATE_LAYOUTS,
                         ids=[o[0] for o in STATE_LAYOUTS])
def test_state_dtype_stable_through_cond(name, factory, kwargs, lr, dtype):
  """The update's state has the init state's dtypes: lax.cond, which needs
  both branches to agree, accepts it (as a training loop that skips steps
  does)."""
  del name
  with enable_x64(dtype == "float64"):
    opt = _make(factory, kwargs, lr)
    params, _, loss = field_parabola(jnp.dtype(dtype))

    @jax.jit
    def step(params, state):
      grads = jax.grad(loss)(params)
      skip = jax.random.randint(jax.random.key(0), (), 0, 2) == 0
      updates, new_state = jax.lax.cond(
          skip, lambda: (jax.tree.map(jnp.zeros_like, params), state),
          lambda: opt.update(grads, state, params))
      return optax.apply_updates(params, updates), new_state

    state = opt.init(params)
    for _ in range(2):
      params, state = step(params, state)
      assert params.dtype == jnp.dtype(dtype)


@pytest.mark.parametrize("name,factory,kwargs,lr", OPTIMIZERS, ids=IDS)
def test_constant_schedule_equals_the_float_learning_rate(
    name, factory, kwargs, lr):
  del name
  assert inspect.signature(factory).parameters["learning_rate"].annotation in (
      optax.ScalarOrSchedule, "optax.ScalarOrSchedule", "ScalarOrSchedule")
  params, _, loss = field_parabola(jnp.float32)
  runs = []
  for rate in (lr, optax.constant_schedule(lr)):
    opt = _make(factory, kwargs, rate)
    p, state = params, opt.init(params)
    for _ in range(10):
      updates, state = opt.update(jax.grad(loss)(p), state, p)
      p = optax.apply_updates(p, updates)
    runs.append(p)
  np.testing.assert_allclose(runs[0], runs[1], rtol=1e-6, atol=1e-7)

