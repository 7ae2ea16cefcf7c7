"""The optimizers ``ladam-bench`` compares, each paired with its baseline.

Every entry builds an ``optax.GradientTransformation`` from the task's
learning rate and c2 (:meth:`BenchOptimizer.make`). The Chi-Anneal entries
also need the run's number of steps (``total_steps``): ``-chi`` anneals the
learning rate as the reference's ``ChiAnnealScheduler`` does, ``-c2chi``
anneals c2 as its workshop paper describes. The Laplacian variants are
compared with the plain optimizer they extend (``baseline``), on the same
seeds.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import optax

import ladam_jax
from ladam_jax import _laprop
from ladam_jax import _schedules
from ladam_jax import _vradam
from ladam_jax.experiments import _controls

__all__ = ["BenchOptimizer", "OPTIMIZERS", "DEFAULT_OPTIMIZERS",
           "CONTROL_OPTIMIZERS", "AA_SEED_OFFSET", "parse_optimizers"]

# (learning_rate, c2) -> the optimizer.
Build = Callable[[Any, Any], optax.GradientTransformation]


@dataclasses.dataclass(frozen=True)
class BenchOptimizer:
  """One optimizer of the bench: how to build it and what it is compared to."""
  name: str
  label: str
  build: Build
  baseline: Optional[str] = None  # the plain counterpart, for paired stats
  # Trained on random seeds base_seed + seed_offset, ... instead of the
  # others' (the A/A control: two independent Adam runs, paired by index).
  seed_offset: int = 0
  # For LAdam: the variance floor that, with c2, describes this optimizer to
  # ladam_jax.smoothing_stats (--diagnostics); None: not diagnosed.
  diagnosed_floor: Any = None
  # 'learning_rate' or 'c2': the hyperparameter Chi-Anneal schedules over
  # the run's steps; None: both constant.
  chi_anneal: Optional[str] = None

  def make(self, lr, c2, total_steps: Optional[int] = None
           ) -> optax.GradientTransformation:
    """The optimizer at ``lr`` and ``c2`` (``total_steps``: Chi-Anneal's)."""
    if self.chi_anneal is None:
      return self.build(lr, c2)
    if total_steps is None:
      raise ValueError("the Chi-Anneal optimizers need `total_steps`.")
    values = {"learning_rate": lr, "c2": c2}
    values[self.chi_anneal] = _schedules.chi_anneal_schedule(
        values[self.chi_anneal], total_steps)
    return self.build(values["learning_rate"], values["c2"])

  @property
  def diagnostics(self) -> Optional[Callable[[Any], dict]]:
    """``c2`` → the keyword arguments of ``ladam_jax.smoothing_stats`` that
    describe this optimizer; None for an optimizer that is not diagnosed."""
    if self.diagnosed_floor is None:
      return None
    return lambda c2: {"c2": c2, "variance_floor": self.diagnosed_floor}


def _plain(factory, **fixed) -> Build:
  """``factory(lr, **fixed)``: an optimizer that takes no c2."""
  return lambda lr, c2: factory(lr, **fixed)


def _laplacian(factory, **fixed) -> Build:
  """``factory(lr, c2=c2, **fixed)``: an optimizer with a Laplacian."""
  return lambda lr, c2: factory(lr, c2=c2, **fixed)


def _shuffled(build: Build) -> Build:
  """``build``'s optimizer on each leaf's entries in a fixed random order."""
  return lambda lr, c2: _controls.shuffled(build(lr, c2))


# The A/A control's random seeds are this far from everyone else's.
AA_SEED_OFFSET = 10_000
# LS-Adam's smoothing strength in plain runs (``ladam-bench tune`` tunes it).
LSADAM_SIGMA = 1.0

# "ladam" is the reference package's LAdam (ladam 0.4.1's code clamps the
# smoothed variance at eps: variance_floor='eps'); "ladam-floor0" is its
# documented maths and experiment scripts (floor 0), which is
# ladam_jax.ladam's default.
_LADAM_EPS = _laplacian(ladam_jax.ladam, variance_floor="eps")
_LADAM_FLOOR0 = _laplacian(ladam_jax.ladam, variance_floor=0.0)
_ADAM = _plain(optax.adam)

OPTIMIZERS = {o.name: o for o in (
    BenchOptimizer("adam", "Adam (optax.adam)", _ADAM),
    BenchOptimizer("ladam", "LAdam (floor eps, package)", _LADAM_EPS, "adam",
                   diagnosed_floor="eps"),
    BenchOptimizer("ladam-floor0", "LAdam (floor 0, scripts)", _LADAM_FLOOR0,
                   "adam", diagnosed_floor=0.0),
    # Controls (module _controls). A/A: Adam against Adam on other random
    # seeds, which calibrates the paired statistics (~50 % wins, n.s.).
    BenchOptimizer("adam-copy", "Adam on other random seeds (A/A control)",
                   _ADAM, "adam", seed_offset=AA_SEED_OFFSET),
    # Compared with LAdam: the change when the Laplacian is taken away but
    # its floor kept, and when its neighbours are made random.
    BenchOptimizer("adam-floor", "Adam, v̂ floored at eps where LAdam floors "
                   "(control)", _controls.adam_floor, "ladam"),
    BenchOptimizer("ladam-shuffled", "LAdam on shuffled entries (control)",
                   _shuffled(_LADAM_EPS), "ladam"),
    BenchOptimizer("ladam-floor0-shuffled",
                   "LAdam (floor 0) on shuffled entries (control)",
                   _shuffled(_LADAM_FLOOR0), "ladam-floor0"),
    # Osher et al.'s Laplacian smoothing of the gradient, with Adam: the
    # implicit counterpart that smooths g instead of v.
    BenchOptimizer("lsadam", f"LS-Adam (gradient smoothed, sigma "
                   f"{LSADAM_SIGMA:g})",
                   _plain(ladam_jax.lsadam, sigma=LSADAM_SIGMA), "adam"),
    BenchOptimizer("lsadam-nu", f"Adam, v̂ smoothed implicitly (sigma "
                   f"{LSADAM_SIGMA:g})", _plain(
                       ladam_jax.lsadam, sigma=LSADAM_SIGMA, target="nu"),
                   "adam"),
    # The Laplacian in the package's other optimizers, against each one
    # without it.
    BenchOptimizer("rmsprop", "RMSProp (optax.rmsprop)",
                   _plain(optax.rmsprop, decay=0.99, eps_in_sqrt=False)),
    BenchOptimizer("lrmsprop", "LRMSProp", _laplacian(ladam_jax.lrmsprop),
                   "rmsprop"),
    BenchOptimizer("adagrad", "AdaGrad (ladagrad c2=0)",
                   _plain(ladam_jax.ladagrad, c2=0.0)),
    BenchOptimizer("ladagrad", "LAdaGrad", _laplacian(ladam_jax.ladagrad),
                   "adagrad"),
    BenchOptimizer("laprop", "LaProp",
                   _plain(_laprop.laprop, eps=1e-15, c2=0.0)),
    BenchOptimizer("llaprop", "LaProp + Laplacian",
                   _laplacian(_laprop.laprop, eps=1e-15), "laprop"),
    BenchOptimizer("vradam", "VRAdam (beta3 1, cutoff 10)",
                   _plain(_vradam.vradam, c2=0.0), "adam"),
    BenchOptimizer("lvradam", "VRAdam + Laplacian",
                   _laplacian(_vradam.vradam), "vradam"),
    # Chi-Anneal on the learning rate (the package's ChiAnnealScheduler):
    # a 2 x 2 design separates the schedule's effect from the Laplacian's.
    BenchOptimizer("adam-chi", "Adam, Chi-Anneal lr", _ADAM, "adam",
                   chi_anneal="learning_rate"),
    BenchOptimizer("ladam-chi", "LAdam (floor eps), Chi-Anneal lr",
                   _LADAM_EPS, "adam-chi", diagnosed_floor="eps",
                   chi_anneal="learning_rate"),
    BenchOptimizer("ladam-floor0-chi", "LAdam (floor 0), Chi-Anneal lr",
                   _LADAM_FLOOR0, "adam-chi", diagnosed_floor=0.0,
                   chi_anneal="learning_rate"),
    # Chi-Anneal on c2 (the workshop paper's formula), constant lr.
    BenchOptimizer("ladam-c2chi", "LAdam (floor eps), Chi-Anneal c2",
                   _LADAM_EPS, "adam", chi_anneal="c2"),
    BenchOptimizer("ladam-floor0-c2chi", "LAdam (floor 0), Chi-Anneal c2",
                   _LADAM_FLOOR0, "adam", chi_anneal="c2"),
)}

DEFAULT_OPTIMIZERS = ("adam", "ladam", "ladam-floor0")
CONTROL_OPTIMIZERS = tuple(_controls.CONTROL_MEANING)


def parse_optimizers(spec: str) -> list[str]:
  """``'adam,ladam'`` → names, each checked; baselines are added if missing."""
  names = [s.strip() for s in spec.split(",") if s.strip()]
  for name in names:
    if name not in OPTIMIZERS:
      raise ValueError(
          f"Unknown optimizer {name!r} in --optimizers: choose from "
          f"{tuple(OPTIMIZERS)}.")
  out = []

  def add(name):  # baselines first, recursively (ladam-chi → adam-chi → adam)
    base = OPTIMIZERS[name].baseline
    if base is not None and base not in out and base not in names:
      add(base)
    if name not in out:
      out.append(name)

  for name in names:
    add(name)
  return out
