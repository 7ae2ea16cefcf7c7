"""``python -m ladam_jax.experiments``: the same as the ``ladam-bench`` command."""

import sys

from ladam_jax.experiments._cli import main

if __name__ == "__main__":
  sys.exit(main())
