"""A core-only install (jax, jaxlib, optax; no extras) works as documented.

The extras' modules are hidden in a fresh interpreter by a ``sys.meta_path``
finder that refuses them, as if they were not installed: the library
imports and updates, ``ladam_jax.nn`` names the extra it needs, and
``ladam-bench`` lists its tasks and help but, asked to run one, prints one
line naming the ``[bench]`` extra and exits 2. (``.ci/run`` checks the same
in a real virtualenv with only ``pip install .``.)
"""

import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every module an extra brings (flax, equinox, the bench's and examples').
EXTRAS_MODULES = ("flax", "equinox", "scipy", "sklearn", "mnist1d",
                  "matplotlib", "tqdm", "orbax", "torch", "ladam")

BLOCKER = textwrap.dedent(f"""
    import sys

    class _NotInstalled:
      def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRAS_MODULES!r}:
          raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

    sys.meta_path.insert(0, _NotInstalled())
""")


def _run(code: str) -> subprocess.CompletedProcess:
  """``code`` in a fresh interpreter with the extras hidden."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  return subprocess.run(
      [sys.executable, "-c", BLOCKER + textwrap.dedent(code)], cwd=ROOT,
      env=env, capture_output=True, text=True, timeout=120, check=False)


def test_core_install_library_nn_and_bench_cli():
  proc = _run("""
      import contextlib, io, json
      import jax.numpy as jnp
      import ladam_jax

      out = {}
      params = {"w": jnp.ones((8, 8))}
      opt = ladam_jax.ladam(1e-2, c2=1e-3, min_spatial_size=0)
      updates, _ = opt.update({"w": jnp.full((8, 8), 0.5)}, opt.init(params),
                              params)
      out["update"] = float(jnp.abs(updates["w"]).max())
      try:
        import ladam_jax.nn  # noqa: F401
        out["nn"] = "imported"
      except ImportError as e:
        out["nn"] = str(e)
      from ladam_jax.experiments import _cli
      buf = io.StringIO()
      with contextlib.redirect_stdout(buf):
        out["list_rc"] = _cli.main(["--list"])
      out["list"] = buf.getvalue()
      buf = io.StringIO()
      with contextlib.redirect_stdout(buf):
        try:
          _cli.main(["--help"])
        except SystemExit as e:
          out["help_rc"] = e.code
      out["help"] = buf.getvalue()
      out["flax_imported"] = any(m.split(".")[0] == "flax"
                                 for m in sys.modules)
      for argv in (["cnn-denoise", "--tiny"], ["tune", "cnn-denoise"]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
          out[" ".join(argv)] = [_cli.main(argv), err.getvalue()]
      print(json.dumps(out))
  """)
  assert proc.returncode == 0, proc.stderr
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  # The library: an LAdam update (Adam's first step is lr in size).
  assert abs(out["update"] - 1e-2) < 1e-4
  # ladam_jax.nn names its extra.
  assert "ladam-jax[flax]" in out["nn"] and "Flax" in out["nn"]
  # --list and --help work without Flax, and list every command.
  assert out["list_rc"] == 0 and out["help_rc"] == 0
  assert out["list"].startswith("cnn-denoise ") and "report DIR" in out["list"]
  for command in ("tune TASK", "tune-summary DIR", "report DIR", "--list"):
    assert f"ladam-bench {command}" in out["help"]
  assert not out["flax_imported"]
  # A run: one line naming the extra, exit status 2, no traceback.
  for argv in ("cnn-denoise --tiny", "tune cnn-denoise"):
    rc, err = out[argv]
    assert rc == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert 'ladam-bench needs the [bench] extra' in err
    assert 'pip install "ladam-jax[bench]"' in err and "flax" in err


def test_the_console_script_exits_2_without_the_extra():
  """The installed command's path (``python -m``), as a user runs it."""
  proc = _run("""
      import runpy
      sys.argv = ["ladam-bench", "pinn-wave"]
      runpy.run_module("ladam_jax.experiments", run_name="__main__")
  """)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
      'ladam-bench needs the [bench] extra (missing: flax, scipy, '
      'scikit-learn, mnist1d): pip install "ladam-jax[bench]"']
