"""Every ```python block of the guides (docs/*.md) and the README runs.

Each page's blocks run in order, in one fresh Python process per page, so a
later block can use the names an earlier one defined (as a reader pasting
them into one session would). A block preceded by the comment
``<!-- no-test -->`` is skipped: only fragments that cannot run alone (a
multi-process launch line, say) carry it.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NO_TEST = "<!-- no-test -->"
# Pages whose blocks train or compile enough to take more than a few seconds:
# every page but the docs' front page, run in the slow step (the README's
# quick start also runs by itself in the default suite: test_examples).
SLOW = {"README.md", "docs/getting-started.md", "docs/flax.md",
        "docs/checkpoints.md", "docs/sharding.md", "docs/shard_map.md",
        "docs/equinox.md", "docs/diagnostics.md", "docs/c2-and-layouts.md",
        "docs/numerical-safety.md"}
TIMEOUT_S = 240

_FENCE = re.compile(r"^(?P<indent>[ ]{0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")


def python_blocks(text: str):
  """(line number, code) of every fenced ```python block not opted out.

  Fences nested in a longer fence (a ````` ```` ````` block quoting a
  ```` ``` ```` one) are not blocks of their own.
  """
  blocks, lines, i = [], text.split("\n"), 0
  while i < len(lines):
    m = _FENCE.match(lines[i])
    if not m:
      i += 1
      continue
    fence, info = m["fence"], m["info"].strip()
    start, body = i, []
    i += 1
    while i < len(lines) and not (
        lines[i].strip().startswith(fence[0] * len(fence))
        and not lines[i].strip().strip(fence[0])):
      body.append(lines[i][len(m["indent"]):])
      i += 1
    i += 1  # the closing fence
    if info.split()[:1] != ["python"]:
      continue
    before = [l.strip() for l in lines[:start] if l.strip()]
    if before and before[-1] == NO_TEST:
      continue
    blocks.append((start + 1, "\n".join(body)))
  return blocks


def pages():
  found = sorted(ROOT.glob("docs/*.md")) + [ROOT / "README.md"]
  return [str(p.relative_to(ROOT)) for p in found]


def _params():
  """One test per page that has python blocks; slow pages marked."""
  out = []
  for page in pages():
    if python_blocks((ROOT / page).read_text(encoding="utf-8")):
      marks = [pytest.mark.slow] if page in SLOW else []
      out.append(pytest.param(page, marks=marks, id=page))
  return out


def test_the_guides_have_code_to_run():
  """The pages whose examples must run are found (a broken glob or fence
  parser would make every page test vanish)."""
  ids = {p.id for p in _params()}
  assert {"README.md", "docs/index.md", "docs/getting-started.md",
          "docs/flax.md", "docs/c2-and-layouts.md", "docs/diagnostics.md",
          "docs/numerical-safety.md", "docs/checkpoints.md"} <= ids


def test_block_extraction():
  text = "\n".join([
      "```python", "a = 1", "```",
      "<!-- no-test -->", "", "```python", "launch()", "```",
      "```bash", "pip install x", "```",
      "````markdown", "```python", "quoted()", "```", "````",
      "  ```python", "  b = a + 1", "  ```",
  ])
  assert python_blocks(text) == [(1, "a = 1"), (17, "b = a + 1")]


@pytest.mark.parametrize("page", _params())
def test_page_code_runs(page, tmp_path):
  blocks = python_blocks((ROOT / page).read_text(encoding="utf-8"))
  program = "\n".join(
      f"# --- {page}, line {line}\n{code}\n" for line, code in blocks)
  script = tmp_path / "page.py"
  script.write_text(program, encoding="utf-8")
  env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
  try:
    run = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=TIMEOUT_S,
                         check=False)
  except subprocess.TimeoutExpired:
    pytest.fail(f"{page}: its code took more than {TIMEOUT_S} s")
  assert run.returncode == 0, (
      f"{page}: its code failed\n--- stdout\n{run.stdout[-3000:]}\n"
      f"--- stderr\n{run.stderr[-3000:]}")
