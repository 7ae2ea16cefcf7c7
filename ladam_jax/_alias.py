"""What the optimizer aliases share: the learning rate and weight decay.

Every alias is an ``optax.chain`` that ends in ``optax.scale_by_learning_rate``
(so the learning rate may be a float or an Optax schedule, and every numeric
argument survives ``optax.inject_hyperparams``).
"""

from typing import Any, Sequence

import optax

from ladam_jax import _tree_specs
from ladam_jax import _validation

__all__ = ["check_learning_rate", "decayed_weights", "with_decay_and_lr"]


def check_learning_rate(learning_rate) -> None:
  """A float learning rate must be >= 0 (schedules are checked by Optax)."""
  if not callable(learning_rate):
    _validation.check_non_negative("learning_rate", learning_rate)


def decayed_weights(weight_decay, mask: Any = None
                    ) -> list[optax.GradientTransformation]:
  """``[optax.add_decayed_weights(weight_decay, mask)]``, or ``[]`` for None.

  As in Optax, only None leaves the weight decay out: a number (also 0, also
  an array from ``optax.inject_hyperparams``) adds it, so the state's
  structure never depends on how the value was spelled.
  """
  _validation.check_non_negative("weight_decay", weight_decay)
  if weight_decay is None:
    return []
  return [optax.add_decayed_weights(weight_decay, _tree_specs.as_mask(mask))]


def with_decay_and_lr(
    parts: Sequence[optax.GradientTransformation], learning_rate,
    weight_decay, mask: Any = None, *,
    after_lr: Sequence[optax.GradientTransformation] = (),
) -> optax.GradientTransformation:
  """``chain(*parts, add_decayed_weights, scale_by_learning_rate, *after_lr)``
  (the weight decay as :func:`decayed_weights` gives it)."""
  return optax.chain(*parts, *decayed_weights(weight_decay, mask),
                     optax.scale_by_learning_rate(learning_rate), *after_lr)
