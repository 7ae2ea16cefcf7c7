"""``ladam-bench``: the reference's experiments (ladam 0.4.1), Adam vs LAdam.

Needs the ``examples`` extra (Flax, tqdm, matplotlib, scikit-learn, SciPy):
``pip install 'ladam-jax[examples]'``. See ``ladam-bench --help``.
"""

from ladam_jax.experiments._cli import main
from ladam_jax.experiments._tasks import TASKS

__all__ = ["main", "TASKS"]
