"""Several processes: LAdam on one global mesh over 2 JAX processes.

Each test starts real processes on this machine, as
``examples/multi_host.py`` is run in the docs ("Several processes" in
docs/sharding.md): 2 processes of 4 forced CPU devices each, joined by
``jax.distributed.initialize`` on 127.0.0.1 (CPU collectives over gloo), train
on one global mesh of 8 devices, and are compared with the same program as
one process of 8 devices. Every process has a hard timeout, runs in its own
process group, and is killed whatever the outcome.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "multi_host.py")
TIMEOUT = 120    # seconds, for every process of a launch
STEPS, SAVE_AT = 12, 6
# The tolerance of every comparison, relative to each loss and to each array's
# largest entry. The runs compared do the same float32 arithmetic split
# differently over devices and processes, so some sums (in the matmuls, the
# mean, the gradients' all-reduces) are added in another order. Measured after
# 12 steps: 2 processes vs 1 on the same mesh, 2.1e-7 on the losses and 3.6e-7
# on the arrays (Explicit and Auto axes alike: gloo's all-reduces between
# processes add in another order than those inside one process); resumed on
# another mesh vs uninterrupted, at most 4.1e-7. float32's epsilon is 1.2e-7.
# 1e-5 leaves a margin of over 20 on those, while a wrong result moves them by
# 1e-2 or more (a restore that loses the optimizer state: 5e-2 on the losses,
# 1.7 on the arrays).
RTOL = 1e-5

pytestmark = pytest.mark.skipif(
    not (hasattr(jax, "set_mesh") and hasattr(jax.sharding, "AxisType")),
    reason="needs jax.set_mesh and mesh axis types (JAX >= 0.7)")

# Runs the example with gloo's peer-to-peer sockets on 127.0.0.1 as well (JAX
# binds them to the address the host name resolves to, and has no public
# option for it); the coordinator is on 127.0.0.1 by the example's flag.
_LOOPBACK = """
import runpy, sys
try:
  from jax._src.lib import _jax
  _make = _jax.make_gloo_tcp_collectives
  _jax.make_gloo_tcp_collectives = (
      lambda distributed_client, hostname=None, interface=None:
      _make(distributed_client=distributed_client, hostname="127.0.0.1"))
except (ImportError, AttributeError):
  pass
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _commands(name, args, processes, tmp):
  """The processes of one run of the example: [(label, argv, env)]."""
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count="
                       f"{8 // processes}")
  env.pop("JAX_NUM_CPU_DEVICES", None)
  result = os.path.join(tmp, f"{name}.npz")
  argv = [sys.executable, "-c", _LOOPBACK, EXAMPLE, *args,
          "--save-result", result]
  if processes == 1:
    return [(name, argv, env)]
  port = _free_port()
  return [(f"{name}[{i}]",
           argv + ["--num-processes", str(processes), "--process-id", str(i),
                   "--coordinator", f"127.0.0.1:{port}"], env)
          for i in range(processes)]


def _launch(runs, tmp):
  """Starts every process of ``runs`` at once and waits for all of them.

  Args:
    runs: a list of (name, example arguments, number of processes).
    tmp: a directory for the logs and results.

  Returns:
    {name: (return codes, stdout + stderr of its processes)}. When a process
    fails or the timeout passes, every process still running is killed (its
    whole process group) and the others' logs are returned as they are.
  """
  procs = []
  try:
    for name, args, n in runs:
      for label, argv, env in _commands(name, args, n, tmp):
        log = open(os.path.join(tmp, f"{label}.log"), "w+b")  # pylint: disable=consider-using-with
        procs.append((name, label, log, subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)))
    deadline = time.monotonic() + TIMEOUT
    while any(p.poll() is None for *_, p in procs):
      failed = any(p.poll() not in (None, 0) for *_, p in procs)
      if failed or time.monotonic() > deadline:
        break
      time.sleep(0.05)
  finally:
    for *_, p in procs:
      if p.poll() is None:
        try:
          os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
          pass
      p.wait()
  out = {}
  for name, label, log, p in procs:
    log.seek(0)
    text = log.read().decode(errors="replace")
    log.close()
    codes, logs = out.get(name, ((), ""))
    out[name] = (codes + (p.returncode,),
                 logs + f"--- {label} (rc {p.returncode}) ---\n{text}\n")
  return out


def _check_ok(results, *names):
  for name in names:
    codes, logs = results[name]
    assert codes and all(c == 0 for c in codes), (
        f"{name} failed (return codes {codes}; -9: killed after the "
        f"{TIMEOUT} s timeout or when another process failed):\n{logs[-6000:]}")


def _load(tmp, name):
  with np.load(os.path.join(tmp, f"{name}.npz")) as f:
    return dict(f)


def _max_rel_diff(got, want):
  """max over arrays of max |got − want| / max |want|."""
  assert sorted(got) == sorted(want)
  return max(float(np.max(np.abs(got[k] - want[k])))
             / max(float(np.max(np.abs(want[k]))), 1e-30) for k in want)


def _pair(tmp, axis_types, checkpoint=False):
  """One process of 8 devices and two of 4 on the same (2, 4) mesh, STEPS
  steps each, started together; with an Orbax checkpoint after SAVE_AT steps
  in ``tmp``/ckpt_one and ``tmp``/ckpt_two when ``checkpoint``."""
  common = ["--steps", str(STEPS), "--mesh-shape", "2,4",
            "--axis-types", axis_types]
  runs = []
  for name, n in (("one", 1), ("two", 2)):
    extra = (["--save-at", str(SAVE_AT), "--checkpoint-dir",
              os.path.join(tmp, f"ckpt_{name}")] if checkpoint else [])
    runs.append((name, common + extra, n))
  results = _launch(runs, tmp)
  _check_ok(results, "one", "two")
  return results


def _assert_close(got, want, name):
  np.testing.assert_allclose(got["losses"], want["losses"], rtol=RTOL,
                             err_msg=name)
  err = _max_rel_diff(got, want)
  assert err <= RTOL, (name, err)


def test_two_processes_match_one_process(tmp_path):
  """The core check, with the example's defaults (Explicit axes, inside
  ``jax.set_mesh``): 2 processes of 4 devices give the result of 1 process
  of 8, and only process 0 prints."""
  tmp = str(tmp_path)
  results = _pair(tmp, "explicit")
  one, two = _load(tmp, "one"), _load(tmp, "two")
  assert results["one"][1].count("1 process(es), 8 devices") == 1
  assert results["two"][1].count("2 process(es), 8 devices") == 1
  assert "(explicit axes)" in results["one"][1]
  assert one["losses"].shape == (STEPS,)
  # Training happened: the loss went down.
  assert one["losses"][-1] < 0.8 * one["losses"][0], one["losses"]
  # The same partitioned program; the collectives between processes run over
  # gloo instead of inside one process.
  _assert_close(two, one, "two vs one")


@pytest.mark.slow
def test_auto_axes_and_checkpoints_across_processes_and_meshes(tmp_path):
  """With Auto mesh axes, 2 processes give the 1-process result too; and the
  checkpoints both wrote after SAVE_AT steps continue elsewhere to the end of
  the uninterrupted run: the 2 processes' one in 1 process on a (4, 2) mesh
  (Explicit axes), the 1 process's one in 2 processes on a (1, 8) mesh (Auto
  axes; the batch is then replicated, the parameters split 8 ways)."""
  tmp = str(tmp_path)
  results = _pair(tmp, "auto", checkpoint=True)
  assert "(auto axes)" in results["one"][1]
  one, two = _load(tmp, "one"), _load(tmp, "two")
  assert one["losses"][-1] < 0.8 * one["losses"][0], one["losses"]
  _assert_close(two, one, "auto: two vs one")

  common = ["--steps", str(STEPS)]
  results = _launch(
      [("one_from_two", common + [
          "--mesh-shape", "4,2", "--axis-types", "explicit",
          "--resume", os.path.join(tmp, "ckpt_two", f"step_{SAVE_AT}")], 1),
       ("two_from_one", common + [
           "--mesh-shape", "1,8", "--axis-types", "auto",
           "--resume", os.path.join(tmp, "ckpt_one", f"step_{SAVE_AT}")], 2)],
      tmp)
  _check_ok(results, "one_from_two", "two_from_one")
  want = dict(one, losses=one["losses"][SAVE_AT:])
  for name in ("one_from_two", "two_from_one"):
    got = _load(tmp, name)
    assert got["losses"].shape == (STEPS - SAVE_AT,), name
    _assert_close(got, want, name)


def _alive(pid) -> bool:
  """Whether process ``pid`` still runs; a killed one that waits as a zombie
  for init to reap it does not."""
  if os.path.isdir("/proc/self"):
    try:
      with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
      return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  return True


def test_launch_kills_every_process_group_on_failure_and_timeout(
    tmp_path, monkeypatch):
  """The launcher itself (no JAX): when one process fails, the others are
  killed at once with their children; past the timeout, all of them."""
  pid_file = tmp_path / "grandchild.pid"
  sleeper = [sys.executable, "-c",
             "import os, subprocess, time\n"
             "child = subprocess.Popen(['sleep', '600'])\n"
             f"tmp = {str(pid_file)!r} + '.tmp'\n"
             "open(tmp, 'w').write(str(child.pid))\n"
             f"os.rename(tmp, {str(pid_file)!r})\n"
             "time.sleep(600)"]
  failer = [sys.executable, "-c",  # fails once the sleeper's child runs
            "import os, time\n"
            f"while not os.path.exists({str(pid_file)!r}): time.sleep(0.01)\n"
            "time.sleep(0.1)\n"
            "raise SystemExit(3)"]
  module = sys.modules[__name__]
  monkeypatch.setattr(module, "_commands", lambda name, args, n, tmp: [
      (f"{name}[0]", sleeper, dict(os.environ)),
      (f"{name}[1]", failer, dict(os.environ))])
  start = time.monotonic()
  out = _launch([("x", [], 2)], str(tmp_path))
  assert out["x"][0] == (-signal.SIGKILL, 3), out
  assert time.monotonic() - start < 30
  grandchild = int(pid_file.read_text())
  for _ in range(100):
    if not _alive(grandchild):
      break
    time.sleep(0.05)
  else:
    os.kill(grandchild, signal.SIGKILL)
    raise AssertionError("the sleeper's child survived")

  monkeypatch.setattr(module, "TIMEOUT", 1)
  monkeypatch.setattr(module, "_commands", lambda name, args, n, tmp: [
      (f"{name}[{i}]", [sys.executable, "-c", "import time; time.sleep(600)"],
       dict(os.environ)) for i in range(n)])
  start = time.monotonic()
  out = _launch([("y", [], 2)], str(tmp_path))
  assert out["y"][0] == (-signal.SIGKILL,) * 2, out
  assert time.monotonic() - start < 30
