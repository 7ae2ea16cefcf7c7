"""ladam-bench --diagnostics: smoothing statistics over training, heatmaps."""

import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("scipy")

from ladam_jax.experiments import _cli  # noqa: E402
from ladam_jax.experiments import _diagnose  # noqa: E402

__all__ = ["check_diagnostics_run"]


def test_pick_leaves_and_the_fields_drawn():
  params = {"params": {
      "Conv_0": {"kernel": jnp.zeros((3, 3, 4, 8)), "bias": jnp.zeros(8)},
      "Conv_1": {"kernel": jnp.zeros((3, 3, 8, 8))},
      "Dense_0": {"kernel": jnp.zeros((64, 10))},
      "Dense_1": {"kernel": jnp.zeros((2, 3))}}}  # 6 < 16 entries: uncoupled
  assert _diagnose.pick_leaves(params, c2=1e-3) == {
      "conv kernel": "Conv_1/kernel", "dense kernel": "Dense_0/kernel"}
  assert _diagnose.pick_leaves(params, c2=0.0) == {}
  # The field the Laplacian smooths (flax layout): (in · kh · kw, out).
  k = np.arange(3 * 3 * 4 * 8, dtype=np.float32).reshape(3, 3, 4, 8)
  f = _diagnose.field_2d(k)
  assert f.shape == (36, 8)
  np.testing.assert_array_equal(f, np.transpose(k, (2, 0, 1, 3)).reshape(36, 8))
  assert _diagnose.field_2d(np.ones(5)).shape == (1, 5)
  assert _diagnose.steps_to_draw([0, 10, 20, 30, 40, 50]) == [10, 30, 50]
  assert _diagnose.steps_to_draw([0, 5]) == [5]


def check_diagnostics_run(tmp_path, rec):
  """What ``ladam-bench resnet-chi-anneal --tiny --optimizers ladam
  --diagnostics`` wrote (run by test_experiments'
  test_every_task_end_to_end, which trains it anyway)."""
  diag = rec["diagnostics"]
  assert set(diag) == {"ladam"}  # Adam has nothing to diagnose
  d = diag["ladam"]
  assert d["steps"] == [s for s in rec["eval_steps"] if s > 0]
  assert d["kernels"] == {"conv kernel": "ResidualBlock_3/Conv_1/kernel",
                          "dense kernel": "Dense_0/kernel"}
  conv = d["leaves"][d["kernels"]["conv kernel"]]
  for name in _diagnose.STATS:
    assert len(conv[name]) == len(d["steps"])
  # Coupled: the smoothing changed something; ordered ratios.
  assert all(x > 0 for x in conv["relative_change"])
  for lo, mid, hi in zip(conv["step_ratio_min"], conv["step_ratio_median"],
                         conv["step_ratio_max"]):
    assert 0 < lo <= mid <= hi
  bias = d["leaves"]["Conv_0/bias"]  # too small to couple: untouched
  assert bias["relative_change"] == [0.0] * len(d["steps"])
  fields = np.load(tmp_path / "resnet-chi-anneal-step-ratio.npz")
  last = d["steps"][-1]
  key = f"ladam|conv kernel|ResidualBlock_3/Conv_1/kernel|{last}"
  assert key in fields.files
  assert fields[key].shape == (3, 3, 8, 8)  # the kernel at --tiny
  assert (tmp_path / "resnet-chi-anneal-step-ratio.png").exists()


def test_diagnostics_is_for_a_task(capsys):
  with pytest.raises(SystemExit):
    _cli.main(["c2-sweep", "--diagnostics", "--tiny"])
  assert "--diagnostics" in capsys.readouterr().err


@pytest.mark.slow
def test_diagnostics_smoke(tmp_path):
  """--diagnostics on the fastest task (the full check rides on the slow
  resnet-chi-anneal end-to-end run): stats over training in the JSON, the
  drawn fields in the .npz."""
  import json  # pylint: disable=g-import-not-at-top
  assert _cli.main(["noisy-regression", "--tiny", "--optimizers", "ladam",
                    "--diagnostics", "--out", str(tmp_path), "--quiet",
                    "--no-plot"]) == 0
  rec = json.loads((tmp_path / "noisy-regression.json").read_text())
  d = rec["diagnostics"]["ladam"]
  assert set(rec["diagnostics"]) == {"ladam"}
  assert d["steps"] == [s for s in rec["eval_steps"] if s > 0]
  assert d["kernels"] and all(k in d["leaves"] for k in d["kernels"].values())
  fields = np.load(tmp_path / "noisy-regression-step-ratio.npz")
  assert fields.files and all(np.all(np.isfinite(fields[k]))
                              for k in fields.files)
