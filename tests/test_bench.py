"""ladam-bench: statistics on known inputs, every task end to end at a tiny size."""

import dataclasses
import os

import numpy as np
import optax
import pytest

pytest.importorskip("flax")
pytest.importorskip("scipy")

from ladam_jax import bench  # noqa: E402
from ladam_jax.bench import _cli  # noqa: E402
from ladam_jax.bench import _optimizers  # noqa: E402
from ladam_jax.bench import _stats  # noqa: E402
from ladam_jax.bench import _tasks  # noqa: E402
from ladam_jax.bench import _train  # noqa: E402


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
  with pytest.raises(ValueError, match="--optimizers"):
    _optimizers.parse_optimizers("sgd")


@pytest.mark.parametrize("name", sorted(_optimizers.OPTIMIZERS))
def test_optimizers_take_the_laplacian_impl(name):
  # Every ladam_jax optimizer gets ``impl`` (a bad one is refused by name);
  # the Optax baselines accept and ignore it.
  opt = _optimizers.OPTIMIZERS[name]
  assert isinstance(opt.make(1e-3, 0.1, impl="shift"),
                    optax.GradientTransformation)
  if name in ("adam", "rmsprop"):
    opt.make(1e-3, 0.1, impl="bogus")
  else:
    with pytest.raises(ValueError, match="impl"):
      opt.make(1e-3, 0.1, impl="bogus")


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


def test_same_batches_for_every_optimizer():
  """LAdam with c2 = 0 is Adam: with shared batches, the paired change is 0."""
  task = _tasks.get_task("noisy-regression")
  size = dataclasses.replace(task.tiny, steps=3)
  prepared = _train.prepare(task, size)
  a = _train.train_seeds(task, size, _optimizers.OPTIMIZERS["adam"].make(1e-3, 0),
                         prepared=prepared)
  b = _train.train_seeds(task, size,
                         _optimizers.OPTIMIZERS["ladam"].make(1e-3, 0.0),
                         prepared=prepared)
  np.testing.assert_allclose(b.curves, a.curves, rtol=2e-5)
  c = _train.train_seeds(task, size,
                         _optimizers.OPTIMIZERS["ladam"].make(1e-3, 0.5),
                         prepared=prepared)
  assert not np.allclose(c.curves[:, -1], a.curves[:, -1], rtol=1e-6)


@pytest.mark.parametrize("task", sorted(bench.TASKS))
def test_every_task_end_to_end(task, tmp_path, capsys):
  rc = _cli.main([task, "--tiny", "--optimizers", "ladam", "--out",
                  str(tmp_path), "--quiet"])
  assert rc == 0
  text = (tmp_path / f"{task}.md").read_text()
  rows = [l for l in text.splitlines() if l.startswith("| ")]
  assert len(rows) == 3  # header + adam + ladam
  assert "| adam |" in rows[2] and "nan" not in text
  assert os.path.getsize(tmp_path / f"{task}.png") > 1000
  assert "Wilcoxon" in capsys.readouterr().out


def test_c2_sweep(tmp_path):
  _cli.main(["c2-sweep", "--sweep-task", "noisy-regression", "--tiny",
             "--c2", "0,1e-3", "--optimizers", "ladam", "--out",
             str(tmp_path), "--quiet", "--no-plot"])
  rows = [l for l in (tmp_path / "c2-sweep.md").read_text().splitlines()
          if l.startswith("| ")]
  assert [r.split(" | ")[0] for r in rows[1:]] == [
      "| Adam (optax.adam)", "| LAdam (floor eps, the package) c2=0",
      "| LAdam (floor eps, the package) c2=0.001"]
  assert "+0.00 %" in rows[2]  # c2 = 0 is Adam


@pytest.mark.parametrize("argv, message", [
    (["cnn-denoise", "--c2", "-1"], "--c2"),
    (["cnn-denoise", "--c2", "1e-3,1e-4"], "one value"),
    (["cnn-denoise", "--seeds", "0"], "integer >= 1"),
    (["mnist"], "invalid choice"),
    (["cnn-denoise", "--impl", "fft"], "--impl"),
])
def test_cli_rejects_bad_arguments(argv, message, capsys):
  with pytest.raises(SystemExit):
    _cli.main(argv + ["--tiny"])
  assert message in capsys.readouterr().err


@pytest.mark.parametrize("task_name", ["cnn-denoise", "pinn-wave",
                                       "noisy-regression"])
def test_torch_reference_matches_jax(task_name):
  pytest.importorskip("torch")
  pytest.importorskip("ladam")
  from ladam_jax.bench import _torch_reference
  task = _tasks.get_task(task_name)
  size = task.tiny
  runs = [(n, None, n, _optimizers.OPTIMIZERS[n].make, 1e-3, 1e-2)
          for n in ("adam", "ladam")]
  prepared = _train.prepare(task, size)
  for (name, _, _, fn), run in zip(
      _torch_reference.reference_runs(task, runs, None), runs):
    ref = fn(size, prepared, None)
    ours = _train.train_seeds(task, size, run[3](1e-3, 1e-2),
                              prepared=prepared)
    np.testing.assert_allclose(ref.curves, ours.curves, rtol=1e-4)
