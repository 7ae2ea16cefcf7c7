"""How ``ladam-bench`` names and draws its optimizers, in every report.

One colour per optimizer name, the same in every panel, task and report
(:func:`colour`); a line style and marker per role (:func:`style`): the
plain baselines dashed with circles and drawn on top, the Laplacian
optimizers solid, the controls dotted, the PyTorch reference's runs as
crosses only (they lie on the ladam_jax curves). :func:`label_notes` says
in words what the LAdam labels mean; :func:`verdict` turns paired
statistics into the sentence each report opens with.
"""

from __future__ import annotations

import math
import zlib
from typing import Optional, Sequence

__all__ = ["SIGNIFICANCE", "COLOURS", "colour", "style", "base_name",
           "label_notes", "better", "axis_label", "phrase", "verdict",
           "rule"]

# What counts as a significant difference: the paired two-sided Wilcoxon
# signed-rank test over the random seeds, below this p-value.
SIGNIFICANCE = 0.05

COLOURS = {
    "adam": "#000000",
    "ladam": "#1f77b4",
    "ladam-floor0": "#ff7f0e",
    "adam-copy": "#7f7f7f",
    "adam-eps": "#8c564b",
    "adam-floor": "#c49c94",
    "ladam-shuffled": "#17becf",
    "ladam-floor0-shuffled": "#dbb40c",
    "lsadam": "#2ca02c",
    "lsadam-nu": "#9467bd",
    "rmsprop": "#f7b6d2",
    "lrmsprop": "#e377c2",
    "adagrad": "#98df8a",
    "ladagrad": "#1a6b1a",
    "laprop": "#ff9896",
    "llaprop": "#d62728",
    "vradam": "#9edae5",
    "lvradam": "#0b6e7a",
    "adam-chi": "#555555",
    "ladam-chi": "#08306b",
    "ladam-floor0-chi": "#a63603",
    "ladam-c2chi": "#6baed6",
    "ladam-floor0-c2chi": "#fdae6b",
    # Model variants (wavenorm-regression): one colour per normalization.
    "batchnorm": "#000000",
    "wavenorm": "#1f77b4",
    "wavenorm-damped": "#ff7f0e",
    "layernorm": "#2ca02c",
    "chinorm": "#d62728",
    "none": "#7f7f7f",
}
_SPARE = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
          "#e6550d", "#31a354", "#756bb1", "#636363")
_CONTROLS = ("adam-copy", "adam-floor", "ladam-shuffled",
             "ladam-floor0-shuffled", "adam-eps")


def base_name(name: str) -> str:
  """The optimizer of a run name: 'torch-ladam' → 'ladam', 'ladam c2=1e-3'
  (a c2-sweep cell) → 'ladam'; a model variant 'wavenorm:ladam' keeps its
  variant (the colour is the variant's, see :func:`colour`)."""
  name = name.split(" ")[0]
  return name[len("torch-"):] if name.startswith("torch-") else name


def colour(name: str) -> str:
  """The optimizer's colour (a model variant's for 'VARIANT:OPTIMIZER');
  an unknown name gets a fixed colour from its hash."""
  key = base_name(name).split(":")[0]
  if key in COLOURS:
    return COLOURS[key]
  return _SPARE[zlib.crc32(key.encode()) % len(_SPARE)]


def style(name: str, is_baseline: bool) -> dict:
  """matplotlib keywords for a curve: colour, line style, marker, z-order.

  Baselines (``is_baseline``: the plain optimizers, which have no
  baseline of their own) are dashed with circles and drawn on top, so a
  Laplacian curve lying on one never hides it; controls dotted with
  triangles; the PyTorch reference's runs crosses without a line.
  """
  out = {"color": colour(name), "alpha": 0.9, "lw": 1.6}
  opt = base_name(name).split(":")[-1]
  if name.startswith("torch-"):
    out.update(ls="none", marker="x", ms=6, zorder=4)
  elif is_baseline:
    out.update(ls="--", marker="o", ms=4, zorder=3, lw=1.8)
  elif opt in _CONTROLS:
    out.update(ls=":", marker="^", ms=4, zorder=2)
  else:
    out.update(ls="-", marker="s", ms=3.5, zorder=2)
  if ":" in name:  # model variant: the optimizer by line style
    out["ls"] = "--" if opt == "adam" else "-"
    out["marker"] = "o" if opt == "adam" else "s"
  return out


_NOTES = {
    "floor eps": (
        "\"Floor eps, package\": LAdam as the reference's package (ladam "
        "0.4.1) ships it, `ladam_jax.ladam(..., variance_floor='eps')`: "
        "after the Laplacian smooths Adam's second-moment estimate, the "
        "result is kept at or above eps (1e-8) before its square root "
        "divides the step."),
    "floor 0": (
        "\"Floor 0, scripts\": LAdam as the reference's experiment scripts "
        "run it (they carry their own copy of the optimizer, and the "
        "reference's results table comes from them): the smoothed estimate "
        "is kept at or above 0 instead, as the reference's documented maths "
        "has it (`ladam_jax.ladam` with its defaults). The two differ only "
        "where the estimate is below eps, where the package's floor "
        "shortens the step."),
}


def label_notes(labels: Sequence[str]) -> str:
  """What the LAdam labels among ``labels`` mean, in words ('' if none)."""
  return " ".join(text for key, text in _NOTES.items()
                  if any(key in label for label in labels))


def better(higher: bool) -> str:
  return "higher" if higher else "lower"


def axis_label(metric: str, higher: bool) -> str:
  """'test MSE (lower is better)'."""
  return f"{metric} ({better(higher)} is better)"


def phrase(rel_change: Optional[float], p_value: Optional[float],
           higher: bool, metric: str) -> str:
  """'significantly better, -4.55 % test MSE, p = 0.0156' and the like."""
  if rel_change is None or p_value is None or not math.isfinite(rel_change):
    return "not comparable (no random seed where both finished)"
  if p_value < SIGNIFICANCE and rel_change != 0:
    word = ("significantly better" if (rel_change > 0) == higher
            else "significantly worse")
  else:
    word = "no significant difference"
  # 'test accuracy %' → '+1.09 % test accuracy' (the change is relative).
  name = metric[:-2] if metric.endswith(" %") else metric
  return f"{word}, {100 * rel_change:+.2f} % {name}, p = {p_value:.3g}"


def rule(n_seeds: Optional[int] = None) -> str:
  """The significance rule, stated once in every report."""
  over = f" over the {n_seeds} random seeds" if n_seeds else ""
  return (f"significant means p < {SIGNIFICANCE:g} on the paired two-sided "
          f"Wilcoxon signed-rank test{over}, each comparison on its own, "
          "not corrected for the number of comparisons")


def _significant(c) -> bool:
  return (c.get("p_value") is not None and c.get("rel_change") is not None
          and c["p_value"] < SIGNIFICANCE and c["rel_change"] != 0)


def verdict(comparisons: Sequence[dict], higher: bool, metric: str,
            n_seeds: int, listed: int = 4) -> str:
  """One sentence from paired comparisons.

  Each comparison: ``{'name': 'LAdam vs Adam', 'rel_change', 'p_value',
  'diverged'}`` (``rel_change``/``p_value`` None where nothing is
  comparable). Up to ``listed`` comparisons are each stated; more are
  counted, the significant ones named.
  """
  if not comparisons:
    return ""

  def one(c):
    text = f"{c['name']}: " + phrase(c.get("rel_change"), c.get("p_value"),
                                     higher, metric)
    if c.get("diverged"):
      text += f" ({c['diverged']} random seed(s) diverged)"
    return text

  if len(comparisons) <= listed:
    body = "; ".join(one(c) for c in comparisons)
    return f"{body}; {n_seeds} random seeds."
  sig = [c for c in comparisons if _significant(c)]
  rest = len(comparisons) - len(sig)
  head = (f"Of {len(comparisons)} comparisons with their baselines "
          f"({n_seeds} random seeds), ")
  if not sig:
    return head + "none is significantly different."
  return (head + f"{len(sig)} significantly different: "
          + "; ".join(one(c) for c in sig)
          + f"; no significant difference in the other {rest}.")
