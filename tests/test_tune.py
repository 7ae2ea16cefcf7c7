"""ladam-bench tune: the search, one-program trials, Holm and profiles."""

import json
import math

import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("scipy")

from ladam_jax.experiments import _cli  # noqa: E402
from ladam_jax.experiments import _tasks  # noqa: E402
from ladam_jax.experiments import _train  # noqa: E402
from ladam_jax.experiments import _tune  # noqa: E402


def test_search_points_cover_the_log_ranges_and_repeat():
  dims = (_tune.LR, _tune.C2)
  pts = _tune.search_points(dims, 64, task_lr=1e-3, seed=3)
  lr, c2 = np.log10(pts["learning_rate"]), np.log10(pts["c2"])
  assert lr.min() >= -4 and lr.max() <= -2
  assert c2.min() >= -6 and c2.max() <= -1
  # Low discrepancy: the first axis (base 2) puts exactly 8 of the 64
  # points in every eighth of its log range; the second (base 3) puts 7 or
  # 8 in every ninth (independent uniform draws would spread ~8 ± 3).
  np.testing.assert_array_equal(
      np.histogram(lr, bins=8, range=(-4, -2))[0], 8)
  counts = np.histogram(c2, bins=9, range=(-6, -1))[0]
  assert counts.min() >= 7 and counts.max() <= 8, counts
  again = _tune.search_points(dims, 64, task_lr=1e-3, seed=3)
  np.testing.assert_array_equal(again["c2"], pts["c2"])
  other = _tune.search_points(dims, 64, task_lr=1e-3, seed=4)
  assert not np.allclose(other["c2"], pts["c2"])
  # Every optimizer's lr trials are the same points (paired across
  # optimizers): the first Halton axis does not depend on the dimension.
  adam = _tune.search_points((_tune.LR,), 64, task_lr=1e-3, seed=3)
  np.testing.assert_allclose(adam["learning_rate"], pts["learning_rate"])
  with pytest.raises(ValueError, match="budget"):
    _tune.search_points(dims, 0, 1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("task_name", ["noisy-regression", "cnn-denoise"])
def test_trials_in_one_program_equal_separate_runs(task_name, name="ladam"):
  """Trials set in an injected state (tiled random seeds, one compile)
  train exactly as optimizers built at each trial's values."""
  task = _tasks.get_task(task_name)
  size = task.tiny
  opt = _tune.TUNABLE[name]
  points = {"learning_rate": np.array([3e-3, 3e-4])}
  points["c2"] = np.array([1e-2, 1e-5])
  prepared = _train.prepare(task, size)
  trials = _train.train_seeds(
      task, type(size)(size.seeds * 2, size.steps, size.eval_every,
                       size.options),
      opt.build({k: v[0] for k, v in points.items()}),
      prepared=_tune._tile(prepared, 2),  # pylint: disable=protected-access
      hyperparams={k: np.repeat(v, size.seeds) for k, v in points.items()})
  for i in range(2):
    alone = _train.train_seeds(
        task, size, opt.build({k: v[i] for k, v in points.items()}),
        prepared=prepared)
    np.testing.assert_allclose(
        trials.curves[i * size.seeds:(i + 1) * size.seeds], alone.curves,
        rtol=2e-5)
  # The two trials differ (the values did reach the optimizer).
  assert not np.allclose(trials.final[:size.seeds], trials.final[size.seeds:])


def test_hyperparams_need_an_injected_optimizer():
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  params = {"w": jnp.ones((4, 4))}
  with pytest.raises(ValueError, match="inject_hyperparams"):
    _train._set_hyperparams(  # pylint: disable=protected-access
        optax.adam(1e-3).init(params), {"learning_rate": 1.0})
  state = _tune.TUNABLE["adam"].build({"learning_rate": 1e-3}).init(
      params)
  with pytest.raises(ValueError, match="Unknown hyperparameters"):
    _train._set_hyperparams(state, {"c2": 1.0})  # pylint: disable=protected-access
  new = _train._set_hyperparams(state, {"learning_rate": 0.5})  # pylint: disable=protected-access
  assert new.hyperparams["learning_rate"].dtype == jnp.float32
  assert float(new.hyperparams["learning_rate"]) == 0.5


def test_a_diverged_trial_is_never_chosen():
  per_seed = np.array([[1.0, np.nan], [3.0, 3.0], [2.0, 2.5]])
  scores = _tune._score(per_seed, higher=False)  # pylint: disable=protected-access
  assert scores[0] == np.inf
  assert _tune._best(scores, higher=False) == 2  # pylint: disable=protected-access
  scores = _tune._score(per_seed, higher=True)  # pylint: disable=protected-access
  assert scores[0] == -np.inf
  assert _tune._best(scores, higher=True) == 1  # pylint: disable=protected-access


def test_holm_known_values():
  # Sorted: 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → monotone 0.06.
  np.testing.assert_allclose(_tune.holm([0.01, 0.04, 0.03]),
                             [0.03, 0.06, 0.06])
  np.testing.assert_allclose(_tune.holm([0.5, 0.6]), [1.0, 1.0])
  np.testing.assert_allclose(_tune.holm([0.02]), [0.02])
  # Never below the raw p-values, never above 1.
  p = np.random.default_rng(0).uniform(size=20)
  adj = np.asarray(_tune.holm(p))
  assert np.all(adj >= p) and np.all(adj <= 1)


def test_performance_profile_constructed_case():
  costs = np.array([[1.0, 2.0],     # task 1: solver 0 best, solver 1 at 2x
                    [1.1, 1.0],     # task 2: solver 1 best, solver 0 at 1.1x
                    [1.0, np.nan]])  # task 3: solver 1 diverged
  taus = np.array([1.0, 1.1, 2.0, 10.0])
  prof = _tune.performance_profile(costs, taus)
  np.testing.assert_allclose(prof[0], [2 / 3, 1, 1, 1])
  np.testing.assert_allclose(prof[1], [1 / 3, 1 / 3, 2 / 3, 2 / 3])


@pytest.mark.slow
def test_tune_cli_end_to_end_and_summary(tmp_path, capsys):
  out = str(tmp_path)
  assert _cli.main(["tune", "cnn-denoise", "--tiny", "--budget", "3",
                    "--optimizers", "adam,adam-eps,ladam", "--out", out,
                    "--quiet"]) == 0
  assert (tmp_path / "tune-cnn-denoise.png").exists()
  rec = json.loads((tmp_path / "tune-cnn-denoise.json").read_text())
  assert rec["budget"] == 3 and set(rec["optimizers"]) == {
      "adam", "adam-eps", "ladam"}
  for o in rec["optimizers"].values():
    assert len(o["trials"]) == 3 and len(o["trial_per_seed"][0]) == 2
    scores = [math.inf if s is None else s for s in o["trial_scores"]]
    assert o["chosen_index"] == int(np.argmin(scores))
    assert o["chosen"] == o["trials"][o["chosen_index"]]
    assert len(o["held_out"]) == len(rec["held_out_seeds"])
  assert rec["tune_seeds"][0] == _tune.TUNE_SEED_OFFSET
  assert {(c["candidate"], c["baseline"]) for c in rec["comparisons"]} == {
      ("adam-eps", "adam"), ("ladam", "adam"), ("ladam", "adam-eps")}
  # A second task's record, for the summary: p-values made up.
  other = dict(rec, task="noisy-regression", comparisons=[
      dict(c, p_value=p) for c, p in zip(rec["comparisons"], (0.01, 0.2, 0.04))])
  (tmp_path / "tune-noisy-regression.json").write_text(json.dumps(other))
  md = (tmp_path / "tune-cnn-denoise.md").read_text()
  assert md.split("\n\n")[1].startswith(
      "**Verdict (held out, tuned vs tuned):** ")
  assert "p < 0.05 on the paired two-sided Wilcoxon" in md
  # --quiet is accepted by tune-summary as by every command.
  assert _cli.main(["tune-summary", out, "--no-plot", "--quiet"]) == 0
  summary = json.loads((tmp_path / "tune-summary.json").read_text())
  assert summary["tasks"] == ["cnn-denoise", "noisy-regression"]
  rows = [r for r in summary["comparisons"]
          if (r["candidate"], r["baseline"]) == ("ladam", "adam")]
  assert len(rows) == 2 and all(r["p_holm"] >= r["p_value"] for r in rows)
  out_text = capsys.readouterr().out
  assert "Holm p" in out_text and "**Verdict:** across 2 tasks" in out_text


@pytest.mark.slow
def test_tune_cli_smoke(tmp_path, capsys):
  """The tune command and its summary at the smallest size (the full
  end-to-end check above is slow)."""
  out = str(tmp_path)
  assert _cli.main(["tune", "noisy-regression", "--tiny", "--budget", "2",
                    "--optimizers", "adam,ladam", "--out", out, "--quiet",
                    "--no-plot"]) == 0
  rec = json.loads((tmp_path / "tune-noisy-regression.json").read_text())
  assert [(c["candidate"], c["baseline"]) for c in rec["comparisons"]] == [
      ("ladam", "adam")]
  assert len(rec["optimizers"]["ladam"]["trials"]) == 2
  assert _cli.main(["tune-summary", out, "--no-plot", "--quiet"]) == 0
  assert "# ladam-bench tune: across tasks" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["tune", "cnn-denoise", "--optimizers", "adam,sgd"], "--optimizers"),
    (["tune", "cnn-denoise", "--budget", "0"], "--budget"),
    (["tune", "no-such-task"], "invalid choice"),
])
def test_tune_rejects_bad_arguments(argv, message, capsys):
  with pytest.raises(SystemExit):
    _cli.main(argv)
  assert message in capsys.readouterr().err


def test_tune_summary_needs_records(tmp_path, capsys):
  with pytest.raises(SystemExit):
    _cli.main(["tune-summary", str(tmp_path)])
  assert "no tune-TASK.json" in capsys.readouterr().err
