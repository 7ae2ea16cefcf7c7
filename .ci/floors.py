"""Prints the floor versions in pyproject.toml as exact pins, one per line.

The library's dependencies (jax, jaxlib, optax) and Flax from the examples
extra: `.ci/run` installs exactly these in a second venv and runs the smoke
subset there, so the declared minimums are proven, not guessed.
"""

import pathlib
import re

TEXT = (pathlib.Path(__file__).resolve().parent.parent /
        "pyproject.toml").read_text()
for name in ("jax", "jaxlib", "optax", "flax"):
  match = re.search(rf'"{name}>=([0-9][0-9.]*)"', TEXT)
  if match is None:
    raise SystemExit(f"no floor for {name} in pyproject.toml")
  print(f"{name}=={match.group(1)}")
