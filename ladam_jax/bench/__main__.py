"""``python -m ladam_jax.bench``: the same as the ``ladam-bench`` command."""

import sys

from ladam_jax.bench._cli import main

if __name__ == "__main__":
  sys.exit(main())
