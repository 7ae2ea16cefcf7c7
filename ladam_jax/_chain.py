"""Shared pieces of the optimizer aliases: learning rate and weight decay.

Every alias is an ``optax.chain`` that ends in ``optax.scale_by_learning_rate``
(so the learning rate may be a float or an Optax schedule, and every numeric
argument survives ``optax.inject_hyperparams``).
"""

import optax

from ladam_jax import _tree_specs
from ladam_jax import _validation

__all__ = ["check_learning_rate", "decay_and_lr"]


def check_learning_rate(learning_rate) -> None:
  """A float learning rate must be >= 0 (schedules are checked by Optax)."""
  if not callable(learning_rate):
    _validation.check_non_negative("learning_rate", learning_rate)


def decay_and_lr(parts, learning_rate, weight_decay, mask=None):
  """Appends decoupled weight decay (unless None) and the learning rate.

  As in Optax, only None leaves a stage out: a number (also 0, also an
  array from ``optax.inject_hyperparams``) adds it, so the state's
  structure never depends on how the value was spelled.
  """
  _validation.check_non_negative("weight_decay", weight_decay)
  if weight_decay is not None:
    parts.append(optax.add_decayed_weights(
        weight_decay, _tree_specs.as_mask(mask)))
  parts.append(optax.scale_by_learning_rate(learning_rate))
  return optax.chain(*parts)
