"""The examples run end to end at a tiny size."""

import os
import runpy
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("script, args, marker", [
    pytest.param("examples/quickstart.py", ["--steps", "3", "--seeds", "2"],
                 "|---|", marks=pytest.mark.slow),
    pytest.param("examples/equinox_cnn.py", ["--steps", "5", "--batch", "32"],
                 "test accuracy", marks=pytest.mark.slow),
    pytest.param("benchmarks/bench_update.py",
                 ["--size-div", "32", "--rounds", "2", "--trees", "cnn"],
                 "|---|", marks=pytest.mark.slow),
    ("benchmarks/bench_update.py", ["--size-div", "32", "--rounds", "1",
                                    "--trees", "cnn2d", "--step", "--impls",
                                    "flat"], "in-place step"),
    ("benchmarks/bench_scale.py", ["--leaves", "2", "--side", "64",
                                   "--rounds", "2"], "temporaries"),
    pytest.param("benchmarks/bench_sharded.py", ["--tiny"], "|---|",
                 marks=pytest.mark.slow),  # 8 devices: its own process
    ("benchmarks/bench_compile.py", ["--leaves", "8", "--rounds", "1"],
     "x optax.adam"),
    pytest.param("benchmarks/bench_step.py",
                 ["--tiny", "--rounds", "2", "--steps", "1",
                  "--tasks", "cnn-denoise", "--optimizers", "adam,ladam",
                  "--impl", "shift"], "|---|", marks=pytest.mark.slow),
])
def test_script_runs(script, args, marker, capsys, monkeypatch):
  monkeypatch.setattr(sys, "argv", [script] + args)
  # As `python SCRIPT` does: the script's folder first on the path (the
  # benchmarks import their shared `timing` module from it).
  monkeypatch.syspath_prepend(os.path.dirname(os.path.join(ROOT, script)))
  runpy.run_path(os.path.join(ROOT, script), run_name="__main__")
  out = capsys.readouterr().out
  assert marker in out
  assert "nan" not in out.lower()


def test_readme_quick_start_runs(capsys):
  """The README's quick start is a complete program that trains."""
  with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
    text = f.read()
  section = text[text.index("## Quick start"):]
  code = section[section.index("```python") + 9:]
  code = code[:code.index("```")]
  exec(compile(code, "README.md quick start", "exec"), {})  # pylint: disable=exec-used
  first, last = (float(v) for v in capsys.readouterr().out.split()[1::2])
  assert last < 0.5 * first


def test_api_reference_lists_every_public_name():
  """docs/api.rst documents exactly ladam_jax.__all__ (CI builds it with
  Sphinx, warnings as errors)."""
  import pathlib  # pylint: disable=g-import-not-at-top
  import re  # pylint: disable=g-import-not-at-top
  import ladam_jax  # pylint: disable=g-import-not-at-top
  text = (pathlib.Path(__file__).resolve().parents[1] / "docs" /
          "api.rst").read_text()
  documented = re.findall(r"^\.\. auto(?:function|class):: (\w+)", text,
                          re.M)
  assert sorted(documented) == sorted(ladam_jax.__all__)
  # The normalization layers (docs/nn.rst): linen then nnx.
  pytest.importorskip("flax")
  from ladam_jax import nn as lnn  # pylint: disable=g-import-not-at-top
  from ladam_jax.nn import nnx as lnnx  # pylint: disable=g-import-not-at-top
  text = (pathlib.Path(__file__).resolve().parents[1] / "docs" /
          "nn.rst").read_text()
  linen_part, nnx_part = text.split("\nnnx\n")
  for part, module in ((linen_part, lnn), (nnx_part, lnnx)):
    assert sorted(re.findall(r"^\.\. autoclass:: (\w+)", part, re.M)) == \
        sorted(module.__all__)


@pytest.mark.slow
def test_halo_cost_benchmark_runs():
  """``bench_halo_cost.py`` (8 forced devices: its own process) prices the
  halo exchange (with either stencil, per kind of leaf with ``--single``)
  and, with ``--smoothing``, the all-to-alls: every contender is timed and
  the tampered ones really send nothing."""
  import subprocess  # pylint: disable=g-import-not-at-top
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  script = os.path.join(ROOT, "benchmarks", "bench_halo_cost.py")
  small = ["--rounds", "2", "--side", "64", "--layers", "1"]
  for extra, lines, silent in (
      ([], 10, "ladam, no exchange: "),
      (["--smoothing", "--meshes", "x8-explicit"], 3,
       "lsadam, local all-to-alls: "),
      (["--stencil", "5point", "--meshes", "x8-explicit"], 5,
       "ladam, no exchange: "),
      # Each kind of leaf alone on the 2-D mesh (a bias replicated over
      # 'data' included).
      (["--single", "--meshes", "data2xmodel4-explicit"], 20,
       "ladam, no exchange: ")):
    proc = subprocess.run([sys.executable, script] + small + extra, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("x adam (") == lines, out
    assert "nan" not in out.lower()
    assert ("5point" in out) == ("5point" in extra), out
    for line in out.splitlines():
      if silent in line:
        assert line.endswith((", 0 collective-permutes)", ", 0 all-to-alls)")), line
