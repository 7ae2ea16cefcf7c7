"""ladam-bench: statistics on known inputs, every task end to end, tiny."""

import dataclasses
import importlib.util
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

pytest.importorskip("flax")
pytest.importorskip("scipy")

import ladam_jax  # noqa: E402
from ladam_jax import _laplacian  # noqa: E402
from ladam_jax import experiments as bench  # noqa: E402
from ladam_jax.experiments import _cli  # noqa: E402
from ladam_jax.experiments import _controls  # noqa: E402
from ladam_jax.experiments import _data  # noqa: E402
from ladam_jax.experiments import _optimizers  # noqa: E402
from ladam_jax.experiments import _report  # noqa: E402
from ladam_jax.experiments import _stats  # noqa: E402
from ladam_jax.experiments import _sweep  # noqa: E402
from ladam_jax.experiments import _tasks  # noqa: E402
from ladam_jax.experiments import _torch_init  # noqa: E402
from ladam_jax.experiments import _train  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_summarize():
  s = _stats.summarize([1.0, 2.0, 3.0, 6.0])
  assert s.mean == 3.0 and s.n == 4
  np.testing.assert_allclose(s.std, np.sqrt(14 / 3))
  assert _stats.summarize([5.0]).std == 0.0


def test_wilcoxon_exact_values():
  # All 10 differences positive: the exact two-sided p is 2 / 2**10.
  assert _stats.wilcoxon_p(np.arange(1, 11) * 0.1) == pytest.approx(2 / 1024)
  # One negative difference of the smallest rank among 8: p = 2 * 2 / 2**8.
  d = np.array([-1.0, 2, 3, 4, 5, 6, 7, 8])
  assert _stats.wilcoxon_p(d) == pytest.approx(4 / 256)
  assert _stats.wilcoxon_p(np.zeros(5)) == 1.0
  assert _stats.wilcoxon_p([]) == 1.0


@pytest.mark.parametrize("higher, wins", [(False, 2 / 3), (True, 1 / 3)])
def test_paired_direction_and_margin(higher, wins):
  base = np.ones(3)
  cand = np.array([0.9, 0.95, 1.2])
  p = _stats.paired(cand, base, higher_is_better=higher)
  np.testing.assert_allclose(p.rel_change, (-0.1 - 0.05 + 0.2) / 3)
  assert p.win_rate == pytest.approx(wins)
  # Better by less than the 0.1 % margin is not a win.
  tiny = _stats.paired(np.array([0.9995]), np.array([1.0]), False)
  assert tiny.win_rate == 0.0
  with pytest.raises(ValueError, match="candidate"):
    _stats.paired(np.ones(3), np.ones(4), False)


def test_parse_optimizers_adds_baselines():
  assert _optimizers.parse_optimizers("ladam") == ["adam", "ladam"]
  assert _optimizers.parse_optimizers("lrmsprop,adam") == [
      "rmsprop", "lrmsprop", "adam"]
  assert _optimizers.parse_optimizers("ladam-chi") == [
      "adam", "adam-chi", "ladam-chi"]
  with pytest.raises(ValueError, match="--optimizers"):
    _optimizers.parse_optimizers("sgd")


@pytest.mark.parametrize("name", sorted(_optimizers.OPTIMIZERS))
def test_every_optimizer_builds(name):
  # Every optimizer builds from (lr, c2, total_steps), with the library's
  # Laplacian implementation or one forced for the comparison of
  # implementations; only the Chi-Anneal ones need total_steps.
  opt = _optimizers.OPTIMIZERS[name]
  assert isinstance(opt.make(1e-3, 0.1, total_steps=10),
                    optax.GradientTransformation)
  with _laplacian.using_impl("shift"):
    assert isinstance(opt.make(1e-3, 0.1, total_steps=10),
                      optax.GradientTransformation)
  if "chi" in name:
    with pytest.raises(ValueError, match="total_steps"):
      opt.make(1e-3, 0.1)
  else:
    assert isinstance(opt.make(1e-3, 0.1), optax.GradientTransformation)


def test_diagnosed_optimizers_describe_themselves():
  # --diagnostics: the LAdam runs (not their controls) describe themselves
  # to ladam_jax.smoothing_stats by c2 and their floor alone.
  diagnosed = {n: o.diagnostics(1e-3) for n, o in
               _optimizers.OPTIMIZERS.items() if o.diagnostics is not None}
  assert diagnosed == {
      "ladam": {"c2": 1e-3, "variance_floor": "eps"},
      "ladam-floor0": {"c2": 1e-3, "variance_floor": 0.0},
      "ladam-chi": {"c2": 1e-3, "variance_floor": "eps"},
      "ladam-floor0-chi": {"c2": 1e-3, "variance_floor": 0.0}}


def test_chi_anneal_optimizers_anneal_what_they_say():
  # -chi anneals the learning rate (the package's ChiAnnealScheduler); with
  # c2 = 0 it is Adam on the same schedule. -c2chi anneals c2 only: at the
  # first step (c2 = 0 during warm-up's start) it is Adam.
  params = {"w": jnp.linspace(-1.0, 1.0, 64).reshape(8, 8)}
  grads = {"w": jnp.cos(jnp.arange(64.0)).reshape(8, 8)}

  def first_update(name, c2):
    tx = _optimizers.OPTIMIZERS[name].make(1e-2, c2, total_steps=100)
    state = tx.init(params)
    for _ in range(3):
      u, state = tx.update(grads, state, params)
    return u["w"]

  np.testing.assert_allclose(first_update("ladam-chi", 0.0),
                             first_update("adam-chi", 0.0), rtol=1e-5)
  assert not np.allclose(first_update("adam-chi", 0.0),
                         first_update("adam", 0.0))
  np.testing.assert_allclose(first_update("ladam-floor0-c2chi", 0.15),
                             first_update("ladam-floor0", 0.15 * 2 / 5),
                             rtol=1e-6)


@pytest.mark.slow
def test_vmap_and_loop_batching_agree():
  task = _tasks.get_task("noisy-regression")
  size = task.tiny
  tx = optax.adam(1e-3)
  prepared = _train.prepare(task, size)
  a = _train.train_seeds(task, size, tx, seed_batching="vmap",
                         prepared=prepared)
  b = _train.train_seeds(task, size, tx, seed_batching="loop",
                         prepared=prepared)
  assert a.curves.shape == (size.seeds, len(_train.eval_schedule(size)))
  np.testing.assert_allclose(a.curves, b.curves, rtol=1e-5)
  np.testing.assert_allclose(a.losses, b.losses, rtol=1e-5)
  # Different seeds see different data and initialisations.
  assert not np.allclose(a.curves[0], a.curves[1])


@pytest.mark.slow
def test_same_batches_for_every_optimizer():
  """LAdam with c2 = 0 is Adam: with shared batches, the paired change is 0."""
  task = _tasks.get_task("noisy-regression")
  size = dataclasses.replace(task.tiny, steps=3)
  prepared = _train.prepare(task, size)
  a = _train.train_seeds(task, size,
                         _optimizers.OPTIMIZERS["adam"].make(1e-3, 0),
                         prepared=prepared)
  b = _train.train_seeds(task, size,
                         _optimizers.OPTIMIZERS["ladam"].make(1e-3, 0.0),
                         prepared=prepared)
  np.testing.assert_allclose(b.curves, a.curves, rtol=2e-5)
  c = _train.train_seeds(task, size,
                         _optimizers.OPTIMIZERS["ladam"].make(1e-3, 0.15),
                         prepared=prepared)
  assert not np.allclose(c.curves[:, -1], a.curves[:, -1], rtol=1e-6)


# Every task end to end is slow (-m slow); noisy-regression, the fastest,
# stays in the default run as the smoke test of the whole path.
@pytest.mark.parametrize("task", [
    pytest.param(t, marks=() if t == "noisy-regression" else pytest.mark.slow)
    for t in sorted(bench.TASKS)])
def test_every_task_end_to_end(task, tmp_path, capsys):
  t = bench.TASKS[task]
  # A task with model variants runs every optimizer per variant, the first
  # variant the others' baseline: two stateful ones (BatchNorm's and
  # ChiNorm's running statistics), Adam only, to keep this fast.
  variants = t.variants[0] + ",chinorm" if t.variants else None
  names = ([f"{v}:adam" for v in variants.split(",")] if variants
           else ["adam", "ladam"])
  # Plots and --diagnostics (tests/test_bench_diagnostics.py) on the task
  # with conv and dense kernels; the others skip the plot to save time.
  extra = (["--diagnostics"] if task == "resnet-chi-anneal" else
           ["--no-plot"] if task != "cnn-denoise" else [])
  rc = _cli.main([task, "--tiny", "--optimizers",
                  "adam" if variants else "ladam", "--out", str(tmp_path),
                  "--quiet"] + (["--variants", variants] if variants else [])
                 + extra)
  assert rc == 0
  text = (tmp_path / f"{task}.md").read_text()
  rows = [l for l in text.splitlines() if l.startswith("| ")]
  assert len(rows) == 3  # header + two runs
  first = "batchnorm, Adam (optax.adam)" if variants else "Adam (optax.adam)"
  assert rows[1].startswith(f"| {first} |") and "nan" not in text
  if "--no-plot" not in extra:
    assert os.path.getsize(tmp_path / f"{task}.png") > 1000
  assert "Wilcoxon" in capsys.readouterr().out
  record = json.loads((tmp_path / f"{task}.json").read_text())
  assert record["task"] == task and record["metric"] == t.metric
  assert record["higher_is_better"] == t.higher_is_better
  assert record["seeds"] == [0, 1] and record["steps"] == t.tiny.steps
  assert set(record["results"]) == set(names)
  assert all(len(v) == 2 and all(np.isfinite(v)) for v in
             record["results"].values())
  assert set(record["metrics"][names[0]]) == set(t.metrics)
  assert record["versions"]["jax"] and record["baselines"][names[1]] == (
      names[0])
  # The JSON's finals are the table's: the baseline's mean is in row 1.
  mean = np.mean(record["results"][names[0]])
  assert f"{mean:.4g}" in rows[1]
  if "--diagnostics" in extra:
    from test_bench_diagnostics import check_diagnostics_run  # pylint: disable=g-import-not-at-top
    check_diagnostics_run(tmp_path, record)


def test_list_prints_every_task(capsys):
  assert _cli.main(["--list"]) == 0
  out = capsys.readouterr().out
  for name in list(bench.TASKS) + ["c2-sweep"]:
    assert any(line.startswith(name + " ") for line in out.splitlines())


def test_help_states_the_defaults(capsys):
  with pytest.raises(SystemExit):
    _cli.main(["--help"])
  out = capsys.readouterr().out
  assert "default ./bench-results" in out and "--base-seed" in out
  assert "(task default)" not in out and "``" not in out
  for t in bench.TASKS.values():
    assert (f"{t.name:<19} lr {t.learning_rate:g}, c2 {t.c2:g}; "
            f"{t.default.seeds} random seeds x {t.default.steps} steps") in out


@pytest.mark.slow
def test_c2_sweep_with_steps_and_held_out_estimate(tmp_path):
  _cli.main(["c2-sweep", "--sweep-task", "noisy-regression", "--tiny",
             "--seeds", "4", "--c2", "0,1e-3", "--sweep-steps", "2,4",
             "--optimizers", "ladam", "--out", str(tmp_path), "--quiet",
             "--no-plot"])
  text = (tmp_path / "c2-sweep-noisy-regression.md").read_text()
  rows = [l for l in text.splitlines() if l.startswith("| ")]
  assert [r.split(" | ")[0] for r in rows[1:4]] == [
      "| Adam (optax.adam)", "| LAdam (floor eps, package) c2=0",
      "| LAdam (floor eps, package) c2=0.001"]
  # c2 = 0 is Adam (up to the float64 bias correction, ~1e-5 relative).
  assert re.search(r"\| [+-]0\.00 % \|", rows[2])
  record = json.loads((tmp_path / "c2-sweep-noisy-regression.json").read_text())
  cells = record["sweep"]["cells"]
  assert sorted((c["c2"], c["steps"]) for c in cells) == [
      (0.0, 2), (0.0, 4), (1e-3, 2), (1e-3, 4)]
  folds = record["sweep"]["held_out"]
  assert [f["select_seeds"] for f in folds] == [[0, 1], [2, 3]]
  assert [f["eval_seeds"] for f in folds] == [[2, 3], [0, 1]]
  assert "Held-out estimate" in text and "In-sample best" in text


def _fake(name, finals, steps=(0, 5, 10)):
  finals = np.asarray(finals, np.float64)
  curves = np.stack([finals * 2, finals * 1.5, finals], -1)
  return _train.RunResult(name=name, steps=np.asarray(steps), curves=curves,
                          losses=np.zeros((finals.size, 10)), seconds=0.0,
                          metric_curves={"m": curves})


def test_sweep_held_out_choice_is_made_on_the_other_half():
  task = dataclasses.replace(_tasks.CNN_DENOISE, metrics=("m",))
  base = _fake("adam", np.ones(4))
  # Cell a is best on seeds 0-1 and bad on 2-3; cell b is the opposite.
  a = _fake("a", [0.5, 0.5, 1.5, 1.5])
  b = _fake("b", [1.2, 1.2, 0.9, 0.9])
  sw = _sweep.analyze(task, [base, a, b], {"a": "adam", "b": "adam"},
                      {"a": {"c2": 1.0}, "b": {"c2": 2.0}}, [10])
  assert sw["in_sample_best"]["name"] == "a"  # mean 0 % vs +5 % (worse)
  assert [f["chosen"]["name"] for f in sw["held_out"]] == ["a", "b"]
  # a chosen on 0-1, measured on 2-3: +50 %; b chosen on 2-3, on 0-1: +20 %.
  np.testing.assert_allclose([f["rel_change"] for f in sw["held_out"]],
                             [0.5, 0.2])
  np.testing.assert_allclose(sw["held_out_rel_change"], 0.35)


def test_diverged_runs_are_reported():
  task = dataclasses.replace(_tasks.CNN_DENOISE, metrics=("m",))
  base = _fake("adam", [1.0, 1.0, 1.0])
  bad = _fake("ladam", [0.5, np.nan, np.inf])
  report = _report.Report(
      task=task, title="t", stem="t", size=task.tiny, seeds=[0, 1, 2],
      results=[base, bad], baselines={"adam": None, "ladam": "adam"},
      labels={}, settings={"adam": {"c2": 0.0}, "ladam": {"c2": 1.0}},
      command="x", seconds=0.0)
  row = [l for l in report.table().splitlines() if l.startswith("| ladam")][0]
  assert "| 2/3 |" in row and "nan" not in row.lower()
  assert "-50.00 %" in row  # the one finite pair
  assert report.record()["results"]["ladam"] == [0.5, None, None]


@pytest.mark.parametrize("argv, message", [
    (["cnn-denoise", "--c2", "-1"], "--c2"),
    (["cnn-denoise", "--c2", "1e-3,1e-4"], "one value"),
    (["cnn-denoise", "--seeds", "0"], "integer >= 1"),
    (["mnist"], "invalid choice"),
    (["cnn-denoise", "--impl", "shift"], "unrecognized arguments: --impl"),
    (["cnn-denoise", "--lr", "-1"], "--lr must be a finite number > 0"),
    (["cnn-denoise", "--lr", "nan"], "--lr must be a finite number > 0"),
    (["cnn-denoise", "--sweep-steps", "2"], "c2-sweep only"),
    (["c2-sweep", "--sweep-steps", "99"], "beyond --steps"),
    ([], "a task is required"),
])
def test_cli_rejects_bad_arguments(argv, message, capsys):
  with pytest.raises(SystemExit):
    _cli.main(argv + ["--tiny"])
  assert message in capsys.readouterr().err


def test_bad_out_fails_before_training(tmp_path, capsys, monkeypatch):
  calls = []
  monkeypatch.setattr(_train, "train_seeds", lambda *a, **k: calls.append(1))
  a_file = tmp_path / "file"
  a_file.write_text("x")
  with pytest.raises(SystemExit):
    _cli.main(["cnn-denoise", "--tiny", "--out", str(a_file), "--quiet"])
  assert "is not a directory" in capsys.readouterr().err and not calls


def test_torch_default_init():
  # PyTorch's nn.Linear / nn.Conv1d: weight and bias ~ U(±1/sqrt(fan_in)).
  x = np.zeros((1, 16, 12), np.float32)
  conv = _torch_init.conv(64, (5,), 12, "torch")
  params = conv.init(jax.random.key(0), x)["params"]
  bound = 1 / np.sqrt(5 * 12)
  for leaf in (params["kernel"], params["bias"]):
    assert np.abs(leaf).max() <= bound
    assert np.abs(leaf).max() > 0.9 * bound
  np.testing.assert_allclose(np.std(params["kernel"]), bound / np.sqrt(3),
                             rtol=0.05)
  flax_params = _torch_init.conv(64, (5,), 12, "flax").init(
      jax.random.key(0), x)["params"]
  assert not np.any(flax_params["bias"])  # Flax: zero bias
  with pytest.raises(ValueError, match="init"):
    _torch_init.dense(3, 4, "xavier")


def test_cnn_denoise_signals_follow_the_script():
  noisy, clean = _data.sinusoid_signals(jax.random.key(0), 64, 256, 0.0)
  np.testing.assert_array_equal(noisy, clean)
  # t spans [0, 2π] with integer frequencies: every signal ends where it
  # starts; five terms of amplitude <= 0.7.
  np.testing.assert_allclose(clean[:, 0], clean[:, -1], atol=1e-5)
  assert np.abs(clean).max() <= 3.5
  spectrum = np.abs(np.fft.rfft(np.asarray(clean[..., 0])[:, :-1], axis=1))
  assert spectrum[:, 10:].max() < 0.05 * spectrum.max()  # no freq >= 10


@pytest.mark.parametrize("task_name, sampling", [
    ("cnn-denoise", "randint"), ("image-transformer", "epochs"),
    ("pinn-wave", "full")])
def test_batch_sampling(task_name, sampling):
  task = _tasks.get_task(task_name)
  assert task.sampling == sampling
  size = task.full
  key = jax.random.key(3)
  if sampling == "full":
    assert _tasks.batch_indices(task, size, key, 0) is None
    return
  n, batch = size.options["n_train"], size.options["batch"]
  steps = n // batch
  idx = np.stack([_tasks.batch_indices(task, size, key, i)
                  for i in range(2 * steps)])
  assert idx.min() >= 0 and idx.max() < n and idx.shape[1] == batch
  if sampling == "epochs":  # no index twice within an epoch
    for epoch in idx.reshape(2, -1):
      assert len(set(epoch.tolist())) == epoch.size
    assert not np.array_equal(idx[:steps], idx[steps:])
  else:  # with replacement: some batch repeats an index
    assert any(len(set(row.tolist())) < batch for row in idx)


def test_generated_tables_are_up_to_date_with_the_json():
  """The README's summary and docs/results.md's and docs/performance.md's
  tables are what tools/results_table.py makes from the committed JSON."""
  spec = importlib.util.spec_from_file_location(
      "results_table", os.path.join(ROOT, "tools", "results_table.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  assert {os.path.relpath(p, ROOT) for p in module.TARGETS} == {
      "README.md", os.path.join("docs", "results.md"),
      os.path.join("docs", "performance.md")}
  assert module.main(["--check"]) == 0, (
      "a generated table is stale: run python tools/results_table.py")


@pytest.mark.parametrize("task_name, names", [
    ("cnn-denoise", ("adam", "ladam", "ladam-floor0")),
    ("pinn-wave", ("adam", "ladam-floor0")),
    ("noisy-regression", ("ladam",)),
    ("image-mlp", ("ladam-floor0",)),
    ("resnet-chi-anneal", ("ladam-chi",)),
    ("image-transformer", ("ladam",)),
    ("char-lm", ("ladam-floor0",))])
def test_torch_reference_matches_jax(task_name, names):
  pytest.importorskip("torch")
  pytest.importorskip("ladam")
  from ladam_jax.experiments import _torch_reference
  task = _tasks.get_task(task_name)
  size = dataclasses.replace(task.tiny, steps=6)  # Chi-Anneal: 6 steps
  runs = [_cli.Run(n, None, n, _optimizers.OPTIMIZERS[n].make, 1e-2, 1e-2)
          for n in names]
  prepared = _train.prepare(task, size)
  for (_, _, _, fn, _, _), run in zip(
      _torch_reference.reference_runs(task, runs, None), runs):
    ref = fn(size, prepared, None)
    ours = _train.train_seeds(task, size, run.make(1e-2, 1e-2, total_steps=6),
                              prepared=prepared)
    for m in task.metrics:
      np.testing.assert_allclose(ref.metric_curves[m], ours.metric_curves[m],
                                 rtol=1e-4)


def test_controls_separate_the_floor_and_the_layout():
  """adam-floor is Adam where LAdam does not floor and Adam floored at eps
  where it does; shuffled(Adam) is Adam; shuffled(LAdam) smooths other
  entries than LAdam."""
  rng = np.random.default_rng(0)
  params = {"w": jnp.zeros((8, 8)), "b": jnp.zeros(5)}
  g = {"w": jnp.asarray(rng.standard_normal((8, 8)) * 1e-6, jnp.float32),
       "b": jnp.asarray(rng.standard_normal(5) * 1e-6, jnp.float32)}
  adam = optax.scale_by_adam()
  u_adam, _ = adam.update(g, adam.init(params))
  floored = _controls.scale_by_floored_adam(1e-3, min_spatial_size=16)
  u_floor, _ = floored.update(g, floored.init(params))
  # b has 5 < 16 entries: not coupled, Adam's step; w is coupled: floored
  # (g² ~ 1e-12 < eps), a much smaller step than Adam's.
  np.testing.assert_allclose(u_floor["b"], u_adam["b"], rtol=1e-5)
  gw = g["w"]
  np.testing.assert_allclose(
      u_floor["w"], gw / (np.sqrt(np.maximum(gw ** 2, 1e-8)) + 1e-8),
      rtol=1e-4)
  assert np.all(np.abs(u_floor["w"]) < 0.2 * np.abs(u_adam["w"]))
  shuffled_adam = _controls.shuffled(adam, seed=3)
  u, _ = shuffled_adam.update(g, shuffled_adam.init(params))
  np.testing.assert_allclose(u["w"], u_adam["w"], rtol=1e-6)
  ladam = ladam_jax.scale_by_laplacian_adam(c2=0.1, min_spatial_size=0,
                                           variance_floor=0.0)
  shuffled_ladam = _controls.shuffled(ladam, seed=3)
  big = {"w": gw.at[2, 2].set(1.0), "b": g["b"]}
  u_l, _ = ladam.update(big, ladam.init(params))
  u_s, _ = shuffled_ladam.update(big, shuffled_ladam.init(params))
  # The spike's 8 grid neighbours get its variance in LAdam; shuffled, 8
  # other entries do.
  changed = lambda u: set(zip(*np.nonzero(
      np.abs(np.asarray(u["w"])) < 0.5 * np.abs(np.asarray(u_adam["w"])))))
  near = {(i, j) for i in (1, 2, 3) for j in (1, 2, 3)} - {(2, 2)}
  assert near <= changed(u_l)
  assert len(changed(u_s) & near) < 8 and len(changed(u_s)) >= 8


@pytest.mark.slow
def test_aa_control_runs_on_other_seeds(tmp_path):
  """adam-copy trains Adam on random seeds AA_SEED_OFFSET away, paired with
  Adam by index: different finals (independent runs), same optimizer."""
  rc = _cli.main(["noisy-regression", "--tiny", "--seeds", "16",
                  "--optimizers", "adam-copy", "--out", str(tmp_path),
                  "--quiet", "--no-plot"])
  assert rc == 0
  record = json.loads((tmp_path / "noisy-regression.json").read_text())
  assert set(record["results"]) == {"adam", "adam-copy"}
  assert record["baselines"]["adam-copy"] == "adam"
  a, b = (np.asarray(record["results"][k]) for k in ("adam", "adam-copy"))
  assert not np.allclose(a, b)
  # What an A/A run must look like: about half the wins, no significance.
  aa = record["laplacian_adds"]
  assert [(c["candidate"], c["baseline"]) for c in aa] == [
      ("adam-copy", "adam")]
  assert 0.25 <= aa[0]["win_rate"] <= 0.75 and aa[0]["p_value"] > 0.1
  assert aa[0]["n"] == 16
  assert _optimizers.OPTIMIZERS["adam-copy"].seed_offset == (
      _optimizers.AA_SEED_OFFSET)


def _fake_report(finals_by_name, baselines, labels=None):
  task = dataclasses.replace(_tasks.CNN_DENOISE, metrics=("m",))
  results = [_fake(n, f) for n, f in finals_by_name.items()]
  n = len(next(iter(finals_by_name.values())))
  return _report.Report(
      task=task, title="t", stem="t", size=task.tiny, seeds=list(range(n)),
      results=results, baselines=baselines, labels=labels or {},
      settings={k: {"lr": 1e-3, "c2": 1e-3} for k in finals_by_name},
      command="x", seconds=0.0)


def test_verdict_states_the_rule_and_follows_the_statistics():
  base = np.linspace(1.0, 2.0, 8)
  report = _fake_report(
      {"adam": base, "ladam": base * 0.9,  # better on all 8: p = 2/256
       "ladam-floor0": base * np.array([0.9, 1.1] * 4)},  # p > 0.05
      {"adam": None, "ladam": "adam", "ladam-floor0": "adam"},
      {"adam": "Adam (optax.adam)", "ladam": "LAdam (floor eps, package)",
       "ladam-floor0": "LAdam (floor 0, scripts)"})
  text = report.markdown()
  verdict = text.split("\n\n")[1]
  assert verdict.startswith("**Verdict:** LAdam (floor eps, package) vs Adam "
                            "(optax.adam): significantly better, -10.00 % m, "
                            "p = 0.00781; LAdam (floor 0, scripts) vs Adam "
                            "(optax.adam): no significant difference")
  assert verdict.endswith("8 random seeds.")
  assert "p < 0.05 on the paired two-sided Wilcoxon" in text
  # The labels are explained where they first appear, after the verdict.
  assert text.index('"Floor eps, package"') < text.index("| optimizer |")
  assert '"Floor 0, scripts"' in text
  worse = _fake_report({"adam": base, "ladam": base * 1.1},
                       {"adam": None, "ladam": "adam"})
  assert "ladam vs adam: significantly worse, +10.00 % m" in (
      worse.markdown())


def test_verdict_counts_many_comparisons():
  base = np.linspace(1.0, 2.0, 8)
  finals = {"adam": base, **{f"c{i}": base * (1 + 0.01 * (-1) ** np.arange(8))
                             for i in range(5)}, "good": base * 0.95}
  report = _fake_report(finals, {n: None if n == "adam" else "adam"
                                 for n in finals})
  verdict = report.markdown().split("\n\n")[1]
  assert verdict.startswith("**Verdict:** Of 6 comparisons with their "
                            "baselines (8 random seeds), 1 significantly "
                            "different: good vs adam: significantly better")
  assert verdict.endswith("no significant difference in the other 5.")


def test_one_colour_per_optimizer_everywhere():
  from ladam_jax.experiments import _style  # pylint: disable=g-import-not-at-top
  from ladam_jax.experiments import _tune  # pylint: disable=g-import-not-at-top
  names = sorted(set(_optimizers.OPTIMIZERS) | set(_tune.TUNABLE))
  colours = [_style.COLOURS[n] for n in names]  # every one has its own
  assert len(set(colours)) == len(colours)
  assert _style.colour("torch-ladam") == _style.colour("ladam")
  assert _style.colour("ladam-floor0 c2=0.001") == _style.colour(
      "ladam-floor0")
  # Baselines are dashed and drawn over the Laplacian curves.
  base, lap = _style.style("adam", True), _style.style("ladam", False)
  assert base["ls"] == "--" and base["zorder"] > lap["zorder"]


@pytest.mark.slow
def test_report_redraws_a_run_from_its_json(tmp_path, capsys):
  """``ladam-bench report DIR`` writes the md a run wrote, and its plot,
  from the JSON alone; the JSON is left as it was."""
  out = tmp_path / "run"
  assert _cli.main(["noisy-regression", "--tiny", "--optimizers",
                    "ladam,adam-copy", "--out", str(out), "--quiet"]) == 0
  md = (out / "noisy-regression.md").read_text()
  js = (out / "noisy-regression.json").read_text()
  assert md.startswith("# ladam-bench noisy-regression\n\n**Verdict:** ")
  assert "## What the Laplacian adds" in md
  (out / "noisy-regression.md").unlink()
  (out / "noisy-regression.png").unlink()
  capsys.readouterr()
  assert _cli.main(["report", str(out), "--quiet"]) == 0
  assert (out / "noisy-regression.md").read_text() == md
  assert (out / "noisy-regression.json").read_text() == js
  assert os.path.getsize(out / "noisy-regression.png") > 1000
  assert "wrote" in capsys.readouterr().out


def test_help_lists_every_command(capsys):
  with pytest.raises(SystemExit):
    _cli.main(["--help"])
  out = capsys.readouterr().out
  for command in ("TASK", "c2-sweep", "tune TASK", "tune-summary DIR",
                  "report DIR", "--list"):
    assert f"ladam-bench {command}" in out
  assert "floor eps, package" in out and "floor 0, scripts" in out


def test_bench_extra_check_names_the_extra(monkeypatch, capsys):
  monkeypatch.setattr(_cli, "missing_bench_modules", lambda: ["flax"])
  assert _cli.main(["cnn-denoise", "--tiny"]) == 2
  err = capsys.readouterr().err
  assert err == ('ladam-bench needs the [bench] extra (missing: flax): '
                 'pip install "ladam-jax[bench]"\n')
