"""Types of the public signatures: the string options as ``Literal``s.

Real (not string) annotations, so that ``inspect.signature`` and type
checkers read them, as Optax's own test helpers do (e.g. they look for
``optax.ScalarOrSchedule`` on ``learning_rate``).
"""

from typing import Literal, Union

import jax

__all__ = ["Mode", "Stencil", "VarianceFloor", "Velocity",
           "SmoothingMethod", "SmoothingTarget"]

#: ``mode`` of :func:`ladam_jax.ladam`.
Mode = Literal["variance_lap", "update_lap", "weight_lap", "wave_variance"]
#: The discrete Laplacian's stencil.
Stencil = Literal["9point", "5point"]
#: The floor of the smoothed variance: a number >= 0, or ``'eps'``.
VarianceFloor = Union[Literal["eps"], float, jax.typing.ArrayLike]
#: ``velocity`` of :func:`ladam_jax.vradam`.
Velocity = Literal["momentum", "gradient"]
#: ``method`` of the implicit Laplacian smoothing.
SmoothingMethod = Literal["fft", "dft"]
#: ``target`` of :func:`ladam_jax.lsadam`.
SmoothingTarget = Literal["grad", "nu"]
