"""Prints the floor versions in pyproject.toml as exact pins, one per line.

The library's dependencies (jax, jaxlib, optax) and Flax (the [flax]
extra): `.ci/run` installs exactly these in a second venv and runs the smoke
subset there, so the declared minimums are proven, not guessed. With
``--test-runner``: the [test] extra's own tools (pytest, pytest-xdist,
hypothesis) as pyproject.toml declares them, without the extras it pulls in
(whose newest releases need newer jax than the floors).
"""

import pathlib
import re
import sys

TEXT = (pathlib.Path(__file__).resolve().parent.parent /
        "pyproject.toml").read_text()

if sys.argv[1:] == ["--test-runner"]:
  block = re.search(r"^test = \[(.*?)^\]", TEXT, re.S | re.M)
  if block is None:
    raise SystemExit("no [test] extra in pyproject.toml")
  for req in re.findall(r'"([^"]+)"', block.group(1)):
    if not req.startswith("ladam-jax"):
      print(req)
  raise SystemExit(0)
for name in ("jax", "jaxlib", "optax", "flax"):
  match = re.search(rf'"{name}>=([0-9][0-9.]*)"', TEXT)
  if match is None:
    raise SystemExit(f"no floor for {name} in pyproject.toml")
  print(f"{name}=={match.group(1)}")
