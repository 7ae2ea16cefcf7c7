"""chi_anneal_schedule, suggest_c2, c2_by_path."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ladam_jax


def reference_chi_anneal_rates(base_lr, total, warmup_frac, settle_frac,
                               steps):
  """The learning rate of each optimizer step under ChiAnnealScheduler.

  Transcribed from ladam/scheduler.py: the scheduler is stepped after the
  optimizer, so step 1 uses the base rate and step n+1 what scheduler step n
  set.
  """
  warmup = int(total * warmup_frac)
  settle = int(total * (1.0 - settle_frac))
  lr = base_lr
  rates = []
  for t in range(1, steps + 1):
    rates.append(lr)
    if t <= warmup:
      lr = base_lr * t / max(warmup, 1)
    elif t < settle:
      lr = base_lr
    else:
      progress = (t - settle) / max(total - settle, 1)
      lr = base_lr * (0.5 * (1 + math.cos(math.pi * progress))) ** 2
  return rates


@pytest.mark.parametrize("total, wf, sf", [(100, 0.05, 0.30), (37, 0.1, 0.5),
                                           (10, 0.0, 0.0), (50, 0.2, 0.8)])
def test_chi_anneal_matches_reference(total, wf, sf):
  sched = ladam_jax.chi_anneal_schedule(3e-3, total, wf, sf)
  ours = [float(sched(jnp.asarray(c))) for c in range(total)]
  ref = reference_chi_anneal_rates(3e-3, total, wf, sf, total)
  # float32 arithmetic: 1 + cos(pi * p) cancels near the end of the decay
  np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6 * 3e-3)


def test_chi_anneal_is_an_optax_schedule_and_stays_at_zero():
  sched = ladam_jax.chi_anneal_schedule(1e-3, 20)
  opt = ladam_jax.ladam(sched)
  state = opt.init({"w": jnp.ones(4)})
  _, state = opt.update({"w": jnp.ones(4)}, state)
  assert float(sched(20)) == 0.0 and float(sched(35)) == 0.0
  assert float(jax.jit(sched)(jnp.asarray(5))) == pytest.approx(1e-3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(total_steps=0), "total_steps"),
    (dict(total_steps=10, warmup_frac=1.0), "warmup_frac"),
    (dict(total_steps=10, settle_frac=-0.1), "settle_frac"),
    (dict(total_steps=10, warmup_frac=0.6, settle_frac=0.6), "settle_frac"),
    (dict(total_steps=10, peak_value=-1.0), "peak_value"),
])
def test_chi_anneal_validation(kwargs, match):
  kwargs.setdefault("peak_value", 1e-3)
  with pytest.raises(ValueError, match=match):
    ladam_jax.chi_anneal_schedule(**kwargs)


def test_suggest_c2():
  expected = {"pinn": 1e-5, "transformer": 1e-4, "mlp": 5e-4, "cnn": 0.0,
              "cnn_denoise": 1e-3, "auto": 1e-4}
  for arch, c2 in expected.items():
    assert ladam_jax.suggest_c2(arch) == c2
    assert ladam_jax.suggest_c2(arch.upper()) == c2
  with pytest.raises(ValueError, match="architecture"):
    ladam_jax.suggest_c2("llm")


def test_c2_by_path_rules_in_order():
  params = {"Conv_0": {"kernel": jnp.ones((3, 3, 2, 4)), "bias": jnp.ones(4)},
            "LayerNorm_0": {"scale": jnp.ones(4)},
            "Dense_0": {"kernel": jnp.ones((4, 4))}}
  fn = ladam_jax.c2_by_path([(r"bias$", 0.0), (r"^Conv", 1e-3),
                             (r"LayerNorm", 0.0)], default=1e-5)
  assert fn.fn(params) == {"Conv_0": {"kernel": 1e-3, "bias": 0.0},
                        "LayerNorm_0": {"scale": 0.0},
                        "Dense_0": {"kernel": 1e-5}}
  sched = optax.linear_schedule(0.0, 1e-3, 10)
  assert ladam_jax.c2_by_path({"Dense": sched}).fn(params)["Dense_0"]["kernel"] \
      is sched
  with pytest.raises(ValueError, match="c2"):
    ladam_jax.c2_by_path({"Dense": -1.0})


def test_smoothing_stats_analytic_cases():
  """Constant v: nothing changes. One spike (5-point stencil, floor 0): the
  four face neighbours' v̂ rises from 1 to 1 + c2·(s² − 1) and the spike's
  falls to s² − 4·c2·(s² − 1); the step ratios follow."""
  params = {"w": jnp.zeros((8, 8)), "b": jnp.zeros(4)}
  opt = ladam_jax.ladam(1e-3, c2=0.1, stencil="5point", variance_floor=0.0)
  state = opt.init(params)
  _, flat = opt.update(jax.tree.map(jnp.ones_like, params), state, params)
  stats = ladam_jax.smoothing_stats(flat, c2=0.1, stencil="5point",
                                    variance_floor=0.0)
  for leaf in (stats["w"], stats["b"]):  # b: 4 < 16 entries, not coupled
    np.testing.assert_allclose(leaf.relative_change, 0.0, atol=1e-7)
    np.testing.assert_allclose([leaf.step_ratio_min, leaf.step_ratio_median,
                                leaf.step_ratio_max], 1.0, rtol=1e-6)
    assert float(leaf.floor_fraction) == 0.0
  s = 10.0
  grads = {"w": jnp.ones((8, 8)).at[3, 3].set(s), "b": jnp.ones(4)}
  _, spiked = jax.jit(opt.update)(grads, state, params)
  w = jax.jit(lambda st: ladam_jax.smoothing_stats(
      st, c2=0.1, stencil="5point", variance_floor=0.0))(spiked)["w"]
  neighbour = 1 + 0.1 * (s * s - 1)
  spike = s * s - 4 * 0.1 * (s * s - 1)
  np.testing.assert_allclose(w.step_ratio_min, 1 / np.sqrt(neighbour),
                             rtol=1e-5)
  np.testing.assert_allclose(w.step_ratio_max, np.sqrt(s * s / spike),
                             rtol=1e-5)
  v_hat = np.ones((8, 8))
  v_hat[3, 3] = s * s
  change = np.sqrt(4 * (neighbour - 1) ** 2 + (spike - s * s) ** 2)
  np.testing.assert_allclose(w.relative_change,
                             change / np.linalg.norm(v_hat), rtol=1e-5)
  # Tiny gradients under the package's floor (eps): every entry floored.
  opt_eps = ladam_jax.ladam(1e-3, c2=0.1, variance_floor="eps")
  _, tiny = opt_eps.update({"w": jnp.full((8, 8), 1e-6), "b": jnp.ones(4)},
                           opt_eps.init(params), params)
  assert float(ladam_jax.smoothing_stats(
      tiny, c2=0.1, variance_floor="eps")["w"].floor_fraction) == 1.0
  # The default floor (0) binds nowhere on the same state.
  assert float(ladam_jax.smoothing_stats(tiny, c2=0.1)["w"].floor_fraction
               ) == 0.0
  with pytest.raises(ValueError, match="ScaleByLaplacianAdamState"):
    ladam_jax.smoothing_stats(optax.adam(1e-3).init(params))
  # The field behind the ratios: known entries, its extremes the stats'.
  ratio = ladam_jax.smoothing_step_ratio(spiked, c2=0.1, stencil="5point",
                                         variance_floor=0.0)
  assert ratio["w"].shape == (8, 8) and ratio["b"].shape == (4,)
  np.testing.assert_allclose(ratio["b"], 1.0, rtol=1e-6)
  expected = np.ones((8, 8))
  for i, j in ((2, 3), (4, 3), (3, 2), (3, 4)):
    expected[i, j] = 1 / np.sqrt(neighbour)
  expected[3, 3] = np.sqrt(s * s / spike)
  np.testing.assert_allclose(ratio["w"], expected, rtol=1e-5)
  np.testing.assert_allclose(
      [ratio["w"].min(), jnp.median(ratio["w"]), ratio["w"].max()],
      [w.step_ratio_min, w.step_ratio_median, w.step_ratio_max], rtol=1e-6)
