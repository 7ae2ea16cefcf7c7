"""``ladam-bench``: the reference's experiments (ladam 0.4.1), Adam vs LAdam.

Running a task needs the ``bench`` extra (Flax, SciPy, scikit-learn,
MNIST-1D, Matplotlib, tqdm): ``pip install "ladam-jax[bench]"``; the task
list (``ladam-bench --list``) and the help do not. See ``ladam-bench
--help``.
"""

from ladam_jax.experiments._cli import main
from ladam_jax.experiments._tasks import TASKS

__all__ = ["main", "TASKS"]
