"""The optimizers ``ladam-bench`` compares, each paired with its baseline.

Every entry builds an ``optax.GradientTransformation`` from the task's
learning rate, c2, a Laplacian implementation (``impl``, None for
:func:`ladam_jax.default_laplacian_impl`; the Optax optimizers ignore it) and
the run's number of steps (``total_steps``, for the Chi-Anneal entries:
``-chi`` anneals the learning rate as the reference's
``ChiAnnealScheduler`` does, ``-c2chi`` anneals c2 as its workshop paper
describes).
The Laplacian variants are compared with the plain
optimizer they extend (``baseline``), on the same seeds.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import optax

import ladam_jax
from ladam_jax import _laprop
from ladam_jax.experiments import _controls
from ladam_jax import _schedules
from ladam_jax import _vradam

__all__ = ["BenchOptimizer", "OPTIMIZERS", "DEFAULT_OPTIMIZERS",
           "CONTROL_OPTIMIZERS", "AA_SEED_OFFSET", "parse_optimizers"]


@dataclasses.dataclass(frozen=True)
class BenchOptimizer:
  name: str
  label: str
  # make(lr, c2, impl=None, total_steps=None); only the Chi-Anneal entries
  # use total_steps (the others take it in ``**_``)
  make: Callable[..., optax.GradientTransformation]
  baseline: Optional[str] = None  # the plain counterpart, for paired stats
  # Trained on random seeds base_seed + seed_offset, ... instead of the
  # others' (the A/A control: two independent Adam runs, paired by index).
  seed_offset: int = 0
  # For LAdam: diagnostics(c2, impl) → the keyword arguments of
  # ladam_jax.smoothing_stats that describe this optimizer (--diagnostics).
  diagnostics: Optional[Callable[..., dict]] = None


def _ladam_diagnostics(c2, impl=None):
  return {"c2": c2, "impl": impl, "variance_floor": "eps"}


def _floor0_diagnostics(c2, impl=None):
  return {"c2": c2, "impl": impl, "variance_floor": 0.0}


def _ladam_eps(lr, c2, impl=None):
  """LAdam with the package's clamp of the smoothed variance at eps."""
  return ladam_jax.ladam(lr, c2=c2, variance_floor="eps", impl=impl)


# The A/A control's random seeds are this far from everyone else's.
AA_SEED_OFFSET = 10_000
# LS-Adam's smoothing strength in plain runs (``ladam-bench tune`` tunes it).
LSADAM_SIGMA = 1.0


def _vradam_plain(lr, c2, impl=None, **_):
  del c2
  return _vradam.vradam(lr, c2=0.0, impl=impl)


def _chi(value, total_steps):
  if total_steps is None:
    raise ValueError("the Chi-Anneal optimizers need `total_steps`.")
  return _schedules.chi_anneal_schedule(value, total_steps)


OPTIMIZERS = {o.name: o for o in (
    BenchOptimizer("adam", "Adam (optax.adam)",
                   lambda lr, c2, impl=None, **_: optax.adam(lr)),
    # "ladam" is the reference package's LAdam (ladam 0.4.1's code clamps
    # the smoothed variance at eps: variance_floor='eps'); "ladam-floor0"
    # is its documented maths and experiment scripts (floor 0), which is
    # ladam_jax.ladam's default.
    BenchOptimizer("ladam", "LAdam (floor eps, package)",
                   lambda lr, c2, impl=None, **_: _ladam_eps(lr, c2, impl),
                   "adam",
                   diagnostics=_ladam_diagnostics),
    BenchOptimizer("ladam-floor0", "LAdam (floor 0, scripts)",
                   lambda lr, c2, impl=None, **_: ladam_jax.ladam(
                       lr, c2=c2, variance_floor=0.0, impl=impl), "adam",
                   diagnostics=_floor0_diagnostics),
    # Controls (module _controls). A/A: Adam against Adam on other random
    # seeds, which calibrates the paired statistics (~50 % wins, n.s.).
    BenchOptimizer("adam-copy", "Adam on other random seeds (A/A control)",
                   lambda lr, c2, impl=None, **_: optax.adam(lr), "adam",
                   seed_offset=AA_SEED_OFFSET),
    # Compared with LAdam: the change when the Laplacian is taken away but
    # its floor kept, and when its neighbours are made random.
    BenchOptimizer("adam-floor", "Adam, v̂ floored at eps where LAdam floors "
                   "(control)",
                   lambda lr, c2, impl=None, **_: _controls.adam_floor(lr, c2),
                   "ladam"),
    BenchOptimizer("ladam-shuffled", "LAdam on shuffled entries (control)",
                   lambda lr, c2, impl=None, **_: _controls.shuffled(
                       _ladam_eps(lr, c2, impl)), "ladam"),
    BenchOptimizer("ladam-floor0-shuffled",
                   "LAdam (floor 0) on shuffled entries (control)",
                   lambda lr, c2, impl=None, **_: _controls.shuffled(
                       ladam_jax.ladam(lr, c2=c2, variance_floor=0.0,
                                       impl=impl)), "ladam-floor0"),
    # Osher et al.'s Laplacian smoothing of the gradient, with Adam: the
    # implicit counterpart that smooths g instead of v.
    BenchOptimizer("lsadam", f"LS-Adam (gradient smoothed, sigma "
                   f"{LSADAM_SIGMA:g})",
                   lambda lr, c2, impl=None, **_: ladam_jax.lsadam(
                       lr, sigma=LSADAM_SIGMA), "adam"),
    BenchOptimizer("lsadam-nu", f"Adam, v̂ smoothed implicitly (sigma "
                   f"{LSADAM_SIGMA:g})",
                   lambda lr, c2, impl=None, **_: ladam_jax.lsadam(
                       lr, sigma=LSADAM_SIGMA, target="nu"), "adam"),
    BenchOptimizer("rmsprop", "RMSProp (optax.rmsprop)",
                   lambda lr, c2, impl=None, **_: optax.rmsprop(
                       lr, decay=0.99, eps_in_sqrt=False)),
    BenchOptimizer("lrmsprop", "LRMSProp",
                   lambda lr, c2, impl=None, **_: ladam_jax.lrmsprop(
                       lr, c2=c2, impl=impl), "rmsprop"),
    BenchOptimizer("adagrad", "AdaGrad (ladagrad c2=0)",
                   lambda lr, c2, impl=None, **_: ladam_jax.ladagrad(
                       lr, c2=0.0, impl=impl)),
    BenchOptimizer("ladagrad", "LAdaGrad",
                   lambda lr, c2, impl=None, **_: ladam_jax.ladagrad(
                       lr, c2=c2, impl=impl), "adagrad"),
    BenchOptimizer("laprop", "LaProp",
                   lambda lr, c2, impl=None, **_: _laprop.laprop(
                       lr, eps=1e-15, c2=0.0, impl=impl)),
    BenchOptimizer("llaprop", "LaProp + Laplacian",
                   lambda lr, c2, impl=None, **_: _laprop.laprop(
                       lr, eps=1e-15, c2=c2, impl=impl), "laprop"),
    BenchOptimizer("vradam", "VRAdam (beta3 1, cutoff 10)", _vradam_plain,
                   "adam"),
    BenchOptimizer("lvradam", "VRAdam + Laplacian",
                   lambda lr, c2, impl=None, **_: _vradam.vradam(
                       lr, c2=c2, impl=impl), "vradam"),
    # Chi-Anneal on the learning rate (the package's ChiAnnealScheduler):
    # a 2 x 2 design separates the schedule's effect from the Laplacian's.
    BenchOptimizer("adam-chi", "Adam, Chi-Anneal lr",
                   lambda lr, c2, impl=None, total_steps=None: optax.adam(
                       _chi(lr, total_steps)), "adam"),
    BenchOptimizer("ladam-chi", "LAdam (floor eps), Chi-Anneal lr",
                   lambda lr, c2, impl=None, total_steps=None: _ladam_eps(
                       _chi(lr, total_steps), c2, impl), "adam-chi",
                   diagnostics=_ladam_diagnostics),
    BenchOptimizer("ladam-floor0-chi", "LAdam (floor 0), Chi-Anneal lr",
                   lambda lr, c2, impl=None, total_steps=None: ladam_jax.ladam(
                       _chi(lr, total_steps), c2=c2, variance_floor=0.0,
                       impl=impl), "adam-chi",
                   diagnostics=_floor0_diagnostics),
    # Chi-Anneal on c2 (the workshop paper's formula), constant lr.
    BenchOptimizer("ladam-c2chi", "LAdam (floor eps), Chi-Anneal c2",
                   lambda lr, c2, impl=None, total_steps=None: _ladam_eps(
                       lr, _chi(c2, total_steps), impl), "adam"),
    BenchOptimizer("ladam-floor0-c2chi", "LAdam (floor 0), Chi-Anneal c2",
                   lambda lr, c2, impl=None, total_steps=None: ladam_jax.ladam(
                       lr, c2=_chi(c2, total_steps), variance_floor=0.0,
                       impl=impl), "adam"),
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
