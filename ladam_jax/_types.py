"""Types of the public signatures: the string options as ``Literal``s.

Real (not string) annotations, so that ``inspect.signature`` and type
checkers read them, as Optax's own test helpers do (e.g. they look for
``optax.ScalarOrSchedule`` on ``learning_rate``).
"""

from typing import Any, Callable, Literal, Optional, Union

import jax

from ladam_jax._layout import LaplacianLayout

__all__ = ["Mode", "ScaleMode", "Stencil", "Impl", "LayoutLike",
           "VarianceFloor", "Velocity", "SmoothingMethod", "SmoothingTarget",
           "PerLeafLike"]

#: ``mode`` of :func:`ladam_jax.ladam`.
Mode = Literal["variance_lap", "update_lap", "weight_lap", "wave_variance"]
#: ``mode`` of :func:`ladam_jax.scale_by_laplacian_adam`.
ScaleMode = Literal["variance_lap", "update_lap", "wave_variance"]
#: The discrete Laplacian's stencil.
Stencil = Literal["9point", "5point"]
#: The Laplacian's implementation; None picks one for the backend.
Impl = Optional[Literal["conv", "shift", "flat", "pallas", "pallas_interpret"]]
#: How a leaf is seen as a field: a name, a layout, None (no field), a pytree
#: (prefix) of these, or a params function returning one.
LayoutLike = Union[Literal["auto", "flax", "torch"], LaplacianLayout, None,
                   Any, Callable[[Any], Any]]
#: The floor of the smoothed variance: a number >= 0, or ``'eps'``.
VarianceFloor = Union[Literal["eps"], float, jax.typing.ArrayLike]
#: ``velocity`` of :func:`ladam_jax.vradam`.
Velocity = Literal["momentum", "gradient"]
#: ``method`` of the implicit Laplacian smoothing.
SmoothingMethod = Literal["fft", "dft"]
#: ``target`` of :func:`ladam_jax.lsadam`.
SmoothingTarget = Literal["grad", "nu"]
#: A per-leaf argument: a value, a pytree (prefix) of values, or a params
#: function marked with :func:`ladam_jax.per_leaf`.
PerLeafLike = Any
