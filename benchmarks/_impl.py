"""``--impl`` for the benchmark scripts: the Laplacian implementation of the
``ladam_jax`` optimizers they build.

The library picks the implementation itself; these developer tools compare
them by building each optimizer inside :func:`using` (the implementation is
read when an optimizer is built, so it may be jitted and run afterwards)::

    parser = argparse.ArgumentParser()
    _impl.add_argument(parser)
    args = parser.parse_args()
    with _impl.using(args.impl):
      tx = ladam_jax.ladam(1e-3, c2=1e-4)
"""

from __future__ import annotations

import argparse
from typing import Optional

from ladam_jax import _laplacian

__all__ = ["IMPLS", "add_argument", "using", "parse_list"]

IMPLS = _laplacian.IMPLS


def add_argument(parser: argparse.ArgumentParser) -> None:
  """``--impl``, one of :data:`IMPLS` (default: the library's choice)."""
  parser.add_argument(
      "--impl", choices=IMPLS, default=None,
      help="Laplacian implementation of the ladam_jax optimizers (default: "
      "the library's choice for the platform in use)")


def using(impl: Optional[str]):
  """The context in which the optimizers built use ``impl`` (None: the
  library's choice)."""
  return _laplacian.using_impl(impl)


def parse_list(text: str) -> list[str]:
  """``'flat,shift'`` → the names, each one of :data:`IMPLS`."""
  names = [s.strip() for s in text.split(",") if s.strip()]
  bad = [n for n in names if n not in IMPLS]
  if bad:
    raise argparse.ArgumentTypeError(
        f"unknown implementation(s) {bad}: choose from {', '.join(IMPLS)}")
  return names
